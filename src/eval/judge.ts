// Judge scoring as in LLMs-from-scratch ch. 7: a larger model scores each response 0-100 through an OpenAI-compatible
// chat completions API (Ollama, llama.cpp server, vLLM...), with timeout, retries with backoff and errors that name
// the URL and the status. The judge is an interface, so a local sftkit model can be plugged in instead.
import { SftkitError, invalidParameterError } from '../errors.ts';

/** Anything that answers a prompt with text. */
export interface Judge {
  score(prompt: string): Promise<string>;
}

/** A saved response record (see responses.ts). `input` may be empty. */
export interface ResponseRecord {
  instruction: string;
  input?: string;
  output: string;
  model_response: string;
  /** The judge's 0-100 score, when scored (null: the reply held no score). */
  score?: number | null;
}

/** The ch. 7 `format_input`: the Alpaca instruction block, with `### Input:` only when the input is non-empty. */
export function alpacaInput(record: Pick<ResponseRecord, 'instruction' | 'input'>): string {
  const text =
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.' +
    `\n\n### Instruction:\n${record.instruction}`;
  return record.input ? `${text}\n\n### Input:\n${record.input}` : text;
}

/** The ch. 7 judge prompt. `formatInput` renders the example's prompt (default: the Alpaca block). */
export function judgePrompt(record: ResponseRecord, formatInput: (r: ResponseRecord) => string = alpacaInput): string {
  return (
    `Given the input \`${formatInput(record)}\` ` +
    `and correct output \`${record.output}\`, ` +
    `score the model response \`${record.model_response}\`` +
    ' on a scale from 0 to 100, where 100 is the best score. Respond with the integer number only.'
  );
}

/**
 * The first integer in 0..100 in a judge's reply, or null. The scale itself ("0 to 100", "0-100", "/100",
 * "out of 100") is ignored so "On a scale from 0 to 100 I give 85" is 85; a decimal like 87.5 rounds to 88.
 */
export function parseScore(reply: string): number | null {
  const cleaned = reply
    .replace(/\b0\s*(?:-|–|to)\s*100\b/gi, ' ')
    .replace(/\/\s*100\b/g, ' ')
    .replace(/\bout of\s+100\b/gi, ' ');
  for (const m of cleaned.matchAll(/(?<![\d.])-?\d+(?:\.\d+)?/g)) {
    const n = Number(m[0]);
    if (n < 0) continue;
    const v = Math.round(n);
    if (v >= 0 && v <= 100) return v;
  }
  return null;
}

export interface OpenAiJudgeOptions {
  /** Base URL (`http://127.0.0.1:11434`, `.../v1`) or the full `.../chat/completions` URL. */
  url: string;
  model: string;
  /** Per attempt. Default 120 s (a local judge on CPU is slow). */
  timeoutMs?: number;
  /** Extra attempts after the first on network errors, timeouts, HTTP 429 and 5xx. Default 3. */
  retries?: number;
  /** First backoff; doubles each retry. Default 500 ms. */
  backoffMs?: number;
  /** Sent as `Authorization: Bearer ...` when set. */
  apiKey?: string;
  /** Extra body fields (e.g. `{ seed: 123 }` or Ollama `options`). */
  extraBody?: Record<string, unknown>;
}

/** `.../chat/completions` as given; else `<base>/v1/chat/completions` (or `<base>/chat/completions` for a /v1 base). */
export function chatCompletionsUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalidParameterError('judge url', 'an http(s) URL', url);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalidParameterError('judge url', 'an http(s) URL', url);
  const path = u.pathname.replace(/\/+$/, '');
  if (path.endsWith('/chat/completions')) return u.toString();
  u.pathname = path.endsWith('/v1') ? `${path}/chat/completions` : `${path}/v1/chat/completions`;
  return u.toString();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A judge behind an OpenAI-compatible `POST /v1/chat/completions` with `temperature: 0`. */
export class OpenAiJudge implements Judge {
  readonly endpoint: string;
  private readonly o: Required<Omit<OpenAiJudgeOptions, 'apiKey' | 'extraBody'>> & Pick<OpenAiJudgeOptions, 'apiKey' | 'extraBody'>;

  constructor(options: OpenAiJudgeOptions) {
    if (typeof options.model !== 'string' || options.model === '') throw invalidParameterError('judge model', 'a non-empty string', options.model);
    this.endpoint = chatCompletionsUrl(options.url);
    this.o = { timeoutMs: 120_000, retries: 3, backoffMs: 500, ...options };
    for (const k of ['timeoutMs', 'retries', 'backoffMs'] as const) {
      const v = this.o[k];
      if (!Number.isInteger(v) || v < 0) throw invalidParameterError(k, 'an integer >= 0', v);
    }
  }

  async score(prompt: string): Promise<string> {
    const body = JSON.stringify({
      ...this.o.extraBody,
      model: this.o.model,
      messages: [{ role: 'user', content: prompt }],
      temperature: 0,
    });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.o.apiKey) headers.authorization = `Bearer ${this.o.apiKey}`;
    let lastError = '';
    const attempts = this.o.retries + 1;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(this.o.backoffMs * 2 ** (attempt - 1));
      let res: Response;
      try {
        res = await fetch(this.endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.o.timeoutMs) });
      } catch (e) {
        const err = e as Error;
        lastError = err.name === 'TimeoutError' ? `no answer within ${this.o.timeoutMs} ms` : `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}`;
        continue;
      }
      let text: string;
      try {
        text = await res.text();
      } catch (e) {
        lastError = `HTTP ${res.status}, body unreadable: ${(e as Error).message}`;
        continue;
      }
      if (!res.ok) {
        lastError = `HTTP ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`;
        if (res.status === 429 || res.status >= 500) continue;
        throw new SftkitError('SFTKIT_IO', `Judge request to ${this.endpoint} failed: ${lastError}`);
      }
      let content: unknown;
      try {
        const json = JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] };
        content = json.choices?.[0]?.message?.content;
      } catch {
        content = undefined;
      }
      if (typeof content !== 'string') {
        throw new SftkitError('SFTKIT_IO', `Judge at ${this.endpoint} answered without choices[0].message.content: ${text.slice(0, 200)}`);
      }
      return content;
    }
    throw new SftkitError('SFTKIT_IO', `Judge request to ${this.endpoint} failed after ${attempts} attempt(s): ${lastError}`);
  }
}

export interface ScoredExample {
  index: number;
  /** null when the reply held no integer in 0..100. */
  score: number | null;
  reply: string;
}

export interface ScoreSummary {
  examples: ScoredExample[];
  /** Mean over the parsed scores; null when none parsed. */
  mean: number | null;
  scored: number;
  unparseable: number;
}

export interface ScoreOptions {
  formatInput?: (r: ResponseRecord) => string;
  /** Called after each example (progress). */
  onScore?: (example: ScoredExample, done: number, total: number) => void;
}

/** Scores every record with the judge, one at a time (local judges serve one request at a time anyway). */
export async function scoreResponses(records: readonly ResponseRecord[], judge: Judge, options: ScoreOptions = {}): Promise<ScoreSummary> {
  const examples: ScoredExample[] = [];
  for (let i = 0; i < records.length; i++) {
    const reply = await judge.score(judgePrompt(records[i]!, options.formatInput));
    const ex = { index: i, score: parseScore(reply), reply };
    examples.push(ex);
    options.onScore?.(ex, i + 1, records.length);
  }
  const parsed = examples.map((e) => e.score).filter((s): s is number => s !== null);
  return {
    examples,
    mean: parsed.length ? parsed.reduce((a, b) => a + b, 0) / parsed.length : null,
    scored: parsed.length,
    unparseable: examples.length - parsed.length,
  };
}
