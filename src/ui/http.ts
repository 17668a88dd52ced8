// HTTP plumbing of the dashboard server: JSON answers, errors with a status, bounded JSON bodies, Server-Sent Events.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SftkitError } from '../errors.ts';

/** An error with the HTTP status it is answered with (`{"error": message}`). */
export class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}

/**
 * The status an error is answered with: HttpError's own; 400 for what the request asked wrongly (bad arguments,
 * bad data, a directory that is not a model); 500 for a failure of the native engine or of this server.
 */
export function statusOf(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof SftkitError) return e.code === 'SFTKIT_NATIVE' ? 500 : 400;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 404;
  if (code === 'EACCES' || code === 'EPERM') return 403;
  return 500;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendError(res: ServerResponse, e: unknown): void {
  const status = statusOf(e);
  const message = e instanceof Error ? e.message : String(e);
  if (res.headersSent) {
    // Inside a stream: say it as an event, then end.
    if (!res.writableEnded) res.end(`event: error\ndata: ${JSON.stringify({ error: message, status })}\n\n`);
    return;
  }
  sendJson(res, status, { error: message, status });
}

export function sendBody(res: ServerResponse, status: number, contentType: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

/** Reads a JSON object body of at most `limit` bytes sent as application/json. */
export async function readJsonBody(req: IncomingMessage, limit = 1 << 20): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'the body must be sent as content-type application/json');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, `the body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, `the body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** A Server-Sent Events stream on `res`: named or unnamed events, comments as keep-alives, ended with the request. */
export interface EventStream {
  send(data: unknown, options?: { event?: string; id?: number }): void;
  comment(text: string): void;
  readonly closed: boolean;
  /** Called once when the client goes away or end() is called. */
  onClose(fn: () => void): void;
  end(): void;
}

export function openEventStream(req: IncomingMessage, res: ServerResponse, keepAliveMs = 15_000): EventStream {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': 'text/event-stream; charset=utf-8',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  let closed = false;
  const closers: (() => void)[] = [];
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(timer);
    for (const fn of closers.splice(0)) fn();
  };
  const timer = setInterval(() => {
    if (!closed) res.write(': keep-alive\n\n');
  }, keepAliveMs);
  timer.unref();
  req.on('close', close);
  res.on('close', close);
  return {
    send(data, options = {}) {
      if (closed) return;
      let frame = '';
      if (options.event) frame += `event: ${options.event}\n`;
      if (options.id !== undefined) frame += `id: ${options.id}\n`;
      frame += `data: ${JSON.stringify(data)}\n\n`;
      res.write(frame);
    },
    comment(text) {
      if (!closed) res.write(`: ${text.replace(/\n/g, ' ')}\n\n`);
    },
    get closed() {
      return closed;
    },
    onClose(fn) {
      if (closed) fn();
      else closers.push(fn);
    },
    end() {
      if (!res.writableEnded) res.end();
      close();
    },
  };
}

/** Query parameters read strictly: unknown or repeated names are 400s, values are checked and named in errors. */
export class Query {
  private readonly params: URLSearchParams;

  constructor(params: URLSearchParams, allowed: readonly string[]) {
    this.params = params;
    const seen = new Set<string>();
    for (const key of params.keys()) {
      if (!allowed.includes(key)) throw new HttpError(400, `unknown query parameter "${key}" (expected: ${allowed.join(', ') || 'none'})`);
      if (seen.has(key)) throw new HttpError(400, `query parameter "${key}" is given more than once`);
      seen.add(key);
    }
  }

  string(name: string): string | undefined {
    const v = this.params.get(name);
    return v === null || v === '' ? undefined : v;
  }

  required(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw new HttpError(400, `query parameter "${name}" is required`);
    return v;
  }

  int(name: string, min: number, max: number): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new HttpError(400, `query parameter "${name}" must be an integer in [${min}, ${max}], not ${JSON.stringify(v)}`);
    }
    return n;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (!(values as readonly string[]).includes(v)) throw new HttpError(400, `query parameter "${name}" must be one of ${values.join(', ')}, not ${JSON.stringify(v)}`);
    return v as T;
  }

  bool(name: string): boolean | undefined {
    const v = this.oneOf(name, ['1', '0', 'true', 'false'] as const);
    return v === undefined ? undefined : v === '1' || v === 'true';
  }
}
