// The dashboard's playground on the real TinyStories-656K: POST /api/chat streams the greedy reply (the same text
// as model.generate), two models answer side by side, closing the connection cancels and frees the model, and
// closing the server disposes the loaded models.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promptIds, stopIdsFor } from '../../src/generate/prompt.ts';
import { replyText } from '../../src/generate/stream-text.ts';
import { loadModel } from '../../src/native/model.ts';
import { loadTokenizer } from '../../src/tokenize/tokenizer.ts';
import { startUiServer, type UiServer } from '../../src/ui/server.ts';

const MODEL = join(import.meta.dirname, '..', 'fixtures', 'models', 'tinystories-656k');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-ui-play-'));
const COPY = join(scratch, 'models', 'tinystories-copy');
let server: UiServer;

before(async () => {
  cpSync(MODEL, COPY, { recursive: true });
  server = await startUiServer({ runs: scratch, allow: [MODEL], threads: 1 });
});
after(async () => {
  await server.close();
  rmSync(scratch, { recursive: true, force: true });
});

interface Frame {
  event: string;
  data: Record<string, unknown>;
}

async function chat(body: object, options: { stopAfter?: number; signal?: AbortSignal } = {}): Promise<{ status: number; frames: Frame[] }> {
  const res = await fetch(`${server.url}api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(options.signal ? { signal: options.signal } : {}) });
  if (res.status !== 200) return { status: res.status, frames: [{ event: 'error', data: (await res.json()) as Record<string, unknown> }] };
  const frames: Frame[] = [];
  let buffer = '';
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(frame)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(frame)?.[1];
        if (data) frames.push({ event, data: JSON.parse(data) as Record<string, unknown> });
        if (options.stopAfter !== undefined && frames.length >= options.stopAfter) return { status: 200, frames };
      }
    }
  } catch (e) {
    if ((e as Error).name !== 'AbortError') throw e;
  }
  return { status: 200, frames };
}

const text = (frames: Frame[]) => frames.filter((f) => f.event === 'message').map((f) => f.data.text).join('');

test('POST /api/chat streams the greedy reply: start, one event per text delta, done; the text of model.generate', async () => {
  const messages = [{ role: 'user', content: 'Once upon a time, there was a little girl' }];
  const r = await chat({ model: MODEL, messages, template: 'none', sampling: { maxNewTokens: 24, temperature: 0 } });
  assert.equal(r.status, 200);
  assert.equal(r.frames[0]?.event, 'start');
  assert.equal(r.frames[0]?.data.template, 'none');
  const done = r.frames.at(-1)!;
  assert.equal(done.event, 'done');
  assert.ok(r.frames.filter((f) => f.event === 'message').length > 3, 'streamed in several events');
  assert.equal(done.data.text, text(r.frames));
  // The same reply through the library directly.
  const tok = await loadTokenizer(MODEL);
  const model = await loadModel(MODEL, { threads: 1 });
  try {
    const ids = promptIds([{ role: 'user', content: messages[0]!.content, trained: false }], tok, undefined);
    assert.equal(r.frames[0]?.data.promptTokens, ids.length);
    const stopIds = stopIdsFor(tok, model.spec.eosTokenIds);
    const [out] = await model.generate([ids], { maxNewTokens: 24, temperature: 0, stopIds });
    assert.equal(String(done.data.text).trim(), replyText(tok, out!, stopIds));
  } finally {
    await model.dispose();
  }
});

test('a base and a second model answer the same conversation side by side (default template: alpaca here)', async () => {
  const body = (model: string) => ({ model, messages: [{ role: 'user', content: 'Tell me a story about a cat.' }], sampling: { maxNewTokens: 12, temperature: 0 } });
  const [a, b] = await Promise.all([chat(body(MODEL)), chat(body(join(scratch, 'models', 'tinystories-copy')))]);
  for (const r of [a, b]) {
    assert.equal(r.status, 200, JSON.stringify(r.frames));
    assert.equal(r.frames[0]?.data.template, 'alpaca');
    assert.equal(r.frames.at(-1)?.event, 'done');
  }
  assert.equal(text(a.frames), text(b.frames), 'the same weights answer the same');
  const cfg = (await (await fetch(`${server.url}api/config`)).json()) as { loadedModels: string[] };
  assert.equal(cfg.loadedModels.length, 2);
});

test('leaving mid-reply cancels the generation and frees the model for the next request', async () => {
  const abort = new AbortController();
  const long = await chat({ model: MODEL, messages: [{ role: 'user', content: 'Once' }], template: 'none', sampling: { maxNewTokens: 4000, temperature: 1, seed: 1 } }, { stopAfter: 3, signal: abort.signal });
  abort.abort();
  assert.equal(long.frames.length, 3);
  const t0 = Date.now();
  const next = await chat({ model: MODEL, messages: [{ role: 'user', content: 'One day' }], template: 'none', sampling: { maxNewTokens: 5 } });
  assert.equal(next.frames.at(-1)?.event, 'done');
  assert.ok(Date.now() - t0 < 20_000, 'the cancelled reply did not run to 4000 tokens first');
});

test('a directory that is not a model, or a template the tokenizer cannot render, is a 400 naming it', async () => {
  const notModel = await chat({ model: scratch, messages: [{ role: 'user', content: 'x' }] });
  assert.equal(notModel.status, 400);
  assert.match(String(notModel.frames[0]?.data.error), /no tokenizer\.json/);
  const chatml = await chat({ model: MODEL, messages: [{ role: 'user', content: 'x' }], template: 'chatml' });
  assert.equal(chatml.status, 400);
  assert.match(String(chatml.frames[0]?.data.error), /<\|im_start\|>/);
});
