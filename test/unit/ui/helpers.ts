// Shared by the dashboard tests: raw HTTP requests (any Host header, any body), a run directory writer and an
// event-stream reader.
import { request as httpRequest } from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): any;
}

export function request(base: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) }));
    });
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

export function trainRecords(steps: number, from = 1): object[] {
  const out: object[] = [];
  for (let s = from; s < from + steps; s++) {
    out.push({ type: 'train', step: s, epoch: s / 10, tokensSeen: s * 100, loss: 3 / s, lr: 0.001, gradNorm: 1 / s, tokensPerSec: 1000 + s, time: 1_700_000_000 + s });
  }
  return out;
}

export const jsonl = (records: object[]): string => records.map((r) => `${JSON.stringify(r)}\n`).join('');

/** A run directory with metrics.jsonl and, when given, sftkit_run.json. */
export function writeRun(root: string, name: string, records: object[], run?: object): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'metrics.jsonl'), jsonl(records));
  if (run) writeFileSync(join(dir, 'sftkit_run.json'), JSON.stringify(run));
  return dir;
}

/** Reads a text/event-stream answer frame by frame. */
export class EventReader {
  readonly frames: { event: string; id?: string; data: any }[] = [];
  readonly comments: string[] = [];
  status = 0;
  private buffer = '';
  private waiters: (() => void)[] = [];
  private readonly abort = new AbortController();

  static async open(url: string, headers: Record<string, string> = {}): Promise<EventReader> {
    const r = new EventReader();
    const res = await fetch(url, { headers, signal: r.abort.signal });
    r.status = res.status;
    if (!res.body) return r;
    void (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) r.push(decoder.decode(chunk, { stream: true }));
      } catch {
        // aborted
      }
    })();
    return r;
  }

  private push(text: string): void {
    this.buffer += text;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const frame = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) this.frames.push({ event, ...(id !== undefined ? { id } : {}), data: JSON.parse(data.join('\n')) });
    }
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `n` data frames have arrived (or fails after `ms`). */
  async waitFor(n: number, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.frames.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} events, got ${this.frames.length}: ${JSON.stringify(this.frames)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  close(): void {
    this.abort.abort();
  }
}
