// The page's side of the API: JSON fetches that turn error answers into Errors with the server's message, and a
// reader of the Server-Sent Events a POST answers with (EventSource only does GET).
import type { Candidate, CandidateKind } from '../files.ts';

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: string };
    if (body.error) message = body.error;
  } catch {
    // not JSON
  }
  return new ApiError(res.status, message);
}

export async function getJson<T>(path: string, params: Record<string, string | number | boolean | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const res = await fetch(q.size ? `${path}?${q}` : path);
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export async function listFiles(kind: CandidateKind): Promise<string[]> {
  const r = await getJson<{ files: Candidate[] }>('/api/files', { kind });
  return r.files.map((f) => f.path);
}

export interface ServerEvent {
  event: string;
  data: unknown;
}

/** POSTs JSON and yields the events of the text/event-stream answer. Aborting the signal ends the request. */
export async function* postEvents(path: string, body: unknown, signal?: AbortSignal): AsyncGenerator<ServerEvent> {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) });
  if (!res.ok || !res.body) throw await errorOf(res);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of frame.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
        }
        if (data.length) yield { event, data: JSON.parse(data.join('\n')) as unknown };
      }
    }
  } finally {
    reader.releaseLock();
  }
}
