// The dashboard's JSON API (the page uses it; other tools may too). The contract kept exactly:
//   GET /api/runs                  -> [{name, status, steps, bestValLoss, tokens, ...}]
//   GET /api/runs/:name/metrics    -> the metric records
//   GET /api/runs/:name/events     -> Server-Sent Events, one `data:` line per new metric record
// and besides: GET /api/runs/:name (config, result, events), GET /api/files?kind=model|data|responses,
// GET /api/inspect?model=&data=&..., POST /api/chat (SSE of the streamed reply), GET /api/responses?file=,
// GET /api/config. Run names are looked up among the discovered runs, never joined to a path; every other path
// goes through access.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Message, parseFieldMap, RECORD_FORMATS, type RecordFormat } from '../data/index.ts';
import { readResponsesFile } from '../eval/index.ts';
import { chatPrompter, RAW_TEMPLATE, streamReply } from '../generate/index.ts';
import { MASK_MODES, TRUNCATIONS } from '../mask/index.ts';
import type { GenerateOptions } from '../native/index.ts';
import { TEMPLATE_NAMES } from '../template/index.ts';
import { checkPathText, resolveAllowed, type AccessRoots } from './access.ts';
import { CANDIDATE_KINDS, listCandidates } from './files.ts';
import { HttpError, openEventStream, Query, readJsonBody, sendJson } from './http.ts';
import type { Inspector } from './inspector.ts';
import type { ModelCache } from './model-cache.ts';
import { scoreStats } from './responses.ts';
import type { RunIndex } from './runs.ts';

export interface ApiContext {
  runs: RunIndex;
  access: AccessRoots;
  inspector: Inspector;
  models: ModelCache;
  /** Keep-alive comment interval of event streams. */
  keepAliveMs?: number;
}

type Handler = (ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL, params: string[]) => Promise<void>;

interface Route {
  method: 'GET' | 'POST';
  /** Path segments after /api; `:` marks a parameter (one segment, percent-decoded). */
  pattern: string[];
  handler: Handler;
}

function runName(raw: string): string {
  let name: string;
  try {
    name = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'the run name is not valid percent-encoding');
  }
  checkPathText('run name', name);
  return name;
}

async function findRun(ctx: ApiContext, raw: string) {
  const name = runName(raw);
  const run = await ctx.runs.find(name);
  if (!run) throw new HttpError(404, `no run called ${JSON.stringify(name)} under ${ctx.runs.root}`);
  return { name, ...run };
}

const listRuns: Handler = async (ctx, _req, res, url) => {
  new Query(url.searchParams, []);
  sendJson(res, 200, await ctx.runs.list());
};

const runDetail: Handler = async (ctx, _req, res, url, [raw]) => {
  new Query(url.searchParams, []);
  const { name } = await findRun(ctx, raw!);
  sendJson(res, 200, await ctx.runs.detail(name));
};

const runMetrics: Handler = async (ctx, _req, res, url, [raw]) => {
  new Query(url.searchParams, []);
  const { log } = await findRun(ctx, raw!);
  log.refresh();
  sendJson(res, 200, log.records);
};

/**
 * New records as they are appended. `?after=N` (or the Last-Event-ID an EventSource sends when it reconnects)
 * first sends the records from index N on, so a page that fetched N records misses none; each event's id is the
 * count of records up to it. A file cut back or replaced (a resume) sends `event: reset` and then every record.
 */
const runEvents: Handler = async (ctx, req, res, url, [raw]) => {
  const q = new Query(url.searchParams, ['after']);
  const { log } = await findRun(ctx, raw!);
  log.refresh();
  const lastId = req.headers['last-event-id'];
  let cursor = q.int('after', 0, Number.MAX_SAFE_INTEGER) ?? (typeof lastId === 'string' && /^\d+$/.test(lastId) ? Number(lastId) : log.records.length);
  const stream = openEventStream(req, res, ctx.keepAliveMs);
  stream.comment(`${log.records.length} records so far`);
  const flush = (reset: boolean) => {
    if (reset || cursor > log.records.length) {
      stream.send({ records: log.records.length }, { event: 'reset' });
      cursor = 0;
    }
    while (cursor < log.records.length) {
      stream.send(log.records[cursor], { id: cursor + 1 });
      cursor++;
    }
  };
  flush(false);
  stream.onClose(log.subscribe((change) => flush(change.reset)));
};

const listFiles: Handler = async (ctx, _req, res, url) => {
  const q = new Query(url.searchParams, ['kind']);
  const kind = q.oneOf('kind', CANDIDATE_KINDS);
  if (kind === undefined) throw new HttpError(400, `query parameter "kind" is required (${CANDIDATE_KINDS.join(', ')})`);
  sendJson(res, 200, { kind, files: await listCandidates(ctx.access.roots, kind) });
};

/** A built-in template name, or a Jinja file that must be inside the allowed roots. */
async function templateChoice(ctx: ApiContext, value: string | undefined, extra: readonly string[] = []): Promise<string | undefined> {
  if (value === undefined || value === 'auto') return undefined;
  if ((TEMPLATE_NAMES as readonly string[]).includes(value) || extra.includes(value)) return value;
  try {
    return await resolveAllowed(ctx.access, 'template', value, 'file');
  } catch (e) {
    // Most often a mistyped built-in name: say both what it is not and what does not exist (as the CLI does).
    if (e instanceof HttpError && e.status === 404) {
      throw new HttpError(
        404,
        `template ${value}: not a built-in template (${[...TEMPLATE_NAMES, ...extra].join(', ')}) and no file ${value} exists ` +
          '(a Jinja chat template file)',
      );
    }
    throw e;
  }
}

const INSPECT_PARAMS = ['model', 'data', 'format', 'template', 'mask', 'maxLength', 'truncation', 'fieldMap', 'addSpecialTokens', 'offset', 'limit'];

const inspect: Handler = async (ctx, _req, res, url) => {
  const q = new Query(url.searchParams, INSPECT_PARAMS);
  const model = await resolveAllowed(ctx.access, 'model', q.required('model'), 'directory');
  const data = await resolveAllowed(ctx.access, 'data', q.required('data'), 'any'); // a file or a dataset directory
  let fieldMap;
  try {
    fieldMap = parseFieldMap(q.string('fieldMap'));
  } catch (e) {
    throw new HttpError(400, `query parameter "fieldMap": ${(e as Error).message}`);
  }
  const page = await ctx.inspector.page({
    model,
    data,
    format: q.oneOf<RecordFormat | 'auto'>('format', ['auto', ...RECORD_FORMATS]),
    template: await templateChoice(ctx, q.string('template')),
    mask: q.oneOf('mask', MASK_MODES),
    maxLength: q.int('maxLength', 2, 1 << 20),
    truncation: q.oneOf('truncation', TRUNCATIONS),
    fieldMap,
    addSpecialTokens: q.bool('addSpecialTokens'),
    offset: q.int('offset', 0, Number.MAX_SAFE_INTEGER) ?? 0,
    limit: q.int('limit', 1, 100) ?? 10,
  });
  sendJson(res, 200, page);
};

const responses: Handler = async (ctx, _req, res, url) => {
  const q = new Query(url.searchParams, ['file']);
  const file = await resolveAllowed(ctx.access, 'file', q.required('file'), 'file');
  const records = await readResponsesFile(file);
  sendJson(res, 200, { file, records, stats: scoreStats(records) });
};

const ROLES = ['system', 'user', 'assistant'] as const;
const CHAT_KEYS = ['model', 'messages', 'template', 'sampling'];
const SAMPLING_KEYS = ['maxNewTokens', 'temperature', 'topK', 'topP', 'seed'];

function onlyKeys(where: string, value: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(value)) if (!keys.includes(k)) throw new HttpError(400, `${where}: unknown key "${k}" (expected: ${keys.join(', ')})`);
}

function numberIn(where: string, v: unknown, min: number, max: number, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new HttpError(400, `${where} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], not ${JSON.stringify(v)}`);
  }
  return v;
}

/** The chat request body, checked: `{model, messages: [{role, content}], template?, sampling?}`. */
export function parseChatBody(body: Record<string, unknown>): { model: string; messages: Message[]; template: string | undefined; sampling: GenerateOptions } {
  onlyKeys('body', body, CHAT_KEYS);
  if (typeof body.model !== 'string' || body.model === '') throw new HttpError(400, 'body.model must be a model directory path');
  if (!Array.isArray(body.messages) || body.messages.length === 0 || body.messages.length > 500) {
    throw new HttpError(400, 'body.messages must be an array of 1 to 500 {role, content} messages');
  }
  let chars = 0;
  const messages: Message[] = body.messages.map((m: unknown, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new HttpError(400, `body.messages[${i}] must be an object`);
    const msg = m as Record<string, unknown>;
    onlyKeys(`body.messages[${i}]`, msg, ['role', 'content']);
    if (!(ROLES as readonly unknown[]).includes(msg.role)) throw new HttpError(400, `body.messages[${i}].role must be one of ${ROLES.join(', ')}`);
    if (typeof msg.content !== 'string') throw new HttpError(400, `body.messages[${i}].content must be a string`);
    chars += msg.content.length;
    return { role: msg.role as Message['role'], content: msg.content, trained: false };
  });
  if (chars > 200_000) throw new HttpError(413, 'body.messages hold more than 200000 characters');
  if (body.template !== undefined && (typeof body.template !== 'string' || body.template === '')) throw new HttpError(400, 'body.template must be a template name or path');
  const template = body.template as string | undefined;
  if (template !== RAW_TEMPLATE && messages[messages.length - 1]?.role !== 'user') throw new HttpError(400, 'the last message must be a user turn');
  const s = body.sampling ?? {};
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new HttpError(400, 'body.sampling must be an object');
  const so = s as Record<string, unknown>;
  onlyKeys('body.sampling', so, SAMPLING_KEYS);
  const sampling: GenerateOptions = { maxNewTokens: numberIn('sampling.maxNewTokens', so.maxNewTokens, 1, 4096, true) ?? 128 };
  const temperature = numberIn('sampling.temperature', so.temperature, 0, 10, false);
  const topK = numberIn('sampling.topK', so.topK, 0, 100_000, true);
  const topP = numberIn('sampling.topP', so.topP, 0, 1, false);
  const seed = numberIn('sampling.seed', so.seed, 0, 2 ** 31 - 1, true);
  if (temperature !== undefined) sampling.temperature = temperature;
  if (topK !== undefined) sampling.topK = topK;
  if (topP !== undefined) {
    if (topP === 0) throw new HttpError(400, 'sampling.topP must be in (0, 1]');
    sampling.topP = topP;
  }
  if (seed !== undefined) sampling.seed = seed;
  return { model: body.model, messages, template, sampling };
}

/**
 * Streams a reply as Server-Sent Events: `event: start` {model, template, promptTokens}, then one unnamed event
 * {text, tokens} per text delta, then `event: done` {text, tokens, ms, tokensPerSec}; a failure after the start is
 * `event: error` {error}. Closing the connection cancels the generation.
 */
const chat: Handler = async (ctx, req, res, url) => {
  new Query(url.searchParams, []);
  const body = parseChatBody(await readJsonBody(req));
  const model = await resolveAllowed(ctx.access, 'model', body.model, 'directory');
  const template = await templateChoice(ctx, body.template, [RAW_TEMPLATE]);
  let gone = false;
  res.on('close', () => (gone = true));
  const lease = await ctx.models.acquire(model);
  try {
    const prompter = await chatPrompter(lease.tokenizer, template);
    const promptTokens = prompter.promptIds(body.messages).length;
    if (gone) return;
    const stream = openEventStream(req, res, ctx.keepAliveMs);
    stream.send({ model, template: prompter.template, promptTokens }, { event: 'start' });
    const t0 = performance.now();
    let text = '';
    let tokens = 0;
    try {
      for await (const delta of streamReply(lease.model, prompter, body.messages, body.sampling)) {
        if (stream.closed) break;
        text += delta.text;
        tokens = delta.ids.length;
        stream.send({ text: delta.text, tokens });
      }
      const ms = performance.now() - t0;
      stream.send({ text, tokens, ms, tokensPerSec: ms > 0 ? (tokens * 1000) / ms : null }, { event: 'done' });
    } catch (e) {
      stream.send({ error: e instanceof Error ? e.message : String(e) }, { event: 'error' });
    } finally {
      stream.end();
    }
  } finally {
    lease.release();
  }
};

const config: Handler = async (ctx, _req, res, url) => {
  new Query(url.searchParams, []);
  sendJson(res, 200, { runs: ctx.runs.root, roots: ctx.access.roots, loadedModels: ctx.models.loaded });
};

const ROUTES: Route[] = [
  { method: 'GET', pattern: ['runs'], handler: listRuns },
  { method: 'GET', pattern: ['runs', ':name'], handler: runDetail },
  { method: 'GET', pattern: ['runs', ':name', 'metrics'], handler: runMetrics },
  { method: 'GET', pattern: ['runs', ':name', 'events'], handler: runEvents },
  { method: 'GET', pattern: ['files'], handler: listFiles },
  { method: 'GET', pattern: ['inspect'], handler: inspect },
  { method: 'GET', pattern: ['responses'], handler: responses },
  { method: 'GET', pattern: ['config'], handler: config },
  { method: 'POST', pattern: ['chat'], handler: chat },
];

function match(pattern: string[], segments: string[]): string[] | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: string[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const s = segments[i]!;
    if (p.startsWith(':')) {
      if (s === '') return undefined;
      params.push(s);
    } else if (p !== s) return undefined;
  }
  return params;
}

/** Answers a request whose path starts with /api/. Throws HttpError (or any error) for the caller to answer. */
export async function handleApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const segments = url.pathname.slice('/api/'.length).replace(/\/$/, '').split('/');
  const candidates = ROUTES.map((r) => ({ r, params: match(r.pattern, segments) })).filter((c) => c.params !== undefined);
  if (candidates.length === 0) throw new HttpError(404, `no API route ${url.pathname}`);
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const hit = candidates.find((c) => c.r.method === method);
  if (!hit) {
    res.setHeader('allow', [...new Set(candidates.map((c) => c.r.method))].join(', '));
    throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}`);
  }
  await hit.r.handler(ctx, req, res, url, hit.params!);
}
