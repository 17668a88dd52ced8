// The dashboard's HTTP API on a real server over a temp runs tree: the contract routes (/api/runs, metrics,
// events), run status (running, finished, stale pid, unknown), live events with partial lines and resets, the
// inspector (same numbers as `sftkit inspect`), responses, and the refusals: traversal, NUL, encoded `..`,
// symlinks out of the roots, URLs, foreign Host headers, cross-origin POSTs, malformed requests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inspectCommand } from '../../../src/cli/inspect.ts';
import { startUiServer, type UiServer } from '../../../src/ui/server.ts';
import { EventReader, jsonl, request, trainRecords, writeRun } from './helpers.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
const GPT2 = join(fixtures, 'tokenizers', 'gpt2');
const TINYSTORIES = join(fixtures, 'tokenizers', 'tinystories-656k');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-ui-api-'));
const DATA_DIR = join(scratch, 'data');
const DATA = join(DATA_DIR, 'instructions.json');
const RUNS = join(scratch, 'runs');
const OUTSIDE = join(scratch, 'outside');
const deadPid = spawnSync(process.execPath, ['-e', '']).pid as number;

let server: UiServer;
let base = '';
const get = (path: string, headers: Record<string, string> = {}) => request(base, path, { headers });

before(async () => {
  mkdirSync(OUTSIDE, { recursive: true });
  mkdirSync(join(DATA_DIR, 'no-data'), { recursive: true });
  for (const f of ['alpaca.jsonl', 'alpaca-snappy.parquet', 'alpaca.csv']) copyFileSync(join(fixtures, 'data', 'tabular', f), join(DATA_DIR, f));
  cpSync(join(fixtures, 'data', 'tabular', 'hf-dataset'), join(DATA_DIR, 'hf-dataset'), { recursive: true });
  const all = JSON.parse(readFileSync(join(fixtures, 'data', 'instruction-data.json'), 'utf8')) as unknown[];
  writeFileSync(DATA, JSON.stringify(all.slice(0, 120), null, 1));
  writeFileSync(join(OUTSIDE, 'secret.json'), '[{"instruction":"x","output":"y"}]');
  const val = { type: 'val', step: 3, tokensSeen: 300, loss: 1.25 };
  writeRun(RUNS, 'alive', [...trainRecords(3), val, { type: 'val', step: 3, tokensSeen: 300, loss: 1.5 }], { status: 'running', pid: process.pid, options: { lr: 0.001, model: 'm' }, updatedAt: '2030-01-03T00:00:00Z' });
  writeRun(RUNS, 'done', [...trainRecords(5), { type: 'event', step: 5, message: 'finished' }], { status: 'finished', pid: deadPid, result: { steps: 5 }, updatedAt: '2030-01-02T00:00:00Z' });
  writeRun(RUNS, 'crashed', trainRecords(2), { status: 'running', pid: deadPid, updatedAt: '2030-01-01T00:00:00Z' });
  // The lock of a running run (this process holds it) and one left by a process that is gone.
  const lock = { pid: process.pid, host: hostname(), startedAt: '2030-01-03T00:00:00.000Z', command: 'train', token: 'a' };
  writeFileSync(join(RUNS, 'alive', 'sftkit.lock'), JSON.stringify(lock));
  writeFileSync(join(RUNS, 'crashed', 'sftkit.lock'), JSON.stringify({ ...lock, pid: deadPid }));
  writeRun(RUNS, 'group/nested', trainRecords(4));
  writeRun(RUNS, 'broken', trainRecords(1));
  writeFileSync(join(RUNS, 'broken', 'sftkit_run.json'), '{not json');
  // A partial (still being written) last line and a bad line in the middle.
  const partial = writeRun(RUNS, 'partial', trainRecords(2));
  appendFileSync(join(partial, 'metrics.jsonl'), 'oops\n' + jsonl(trainRecords(1, 3)) + '{"type":"train","step":4,"lo');
  // A run directory that is a symlink out of the tree, and a metrics file that links out.
  writeRun(OUTSIDE, 'foreign', trainRecords(2));
  symlinkSync(join(OUTSIDE, 'foreign'), join(RUNS, 'linked-dir'));
  mkdirSync(join(RUNS, 'linked-file'));
  symlinkSync(join(OUTSIDE, 'foreign', 'metrics.jsonl'), join(RUNS, 'linked-file', 'metrics.jsonl'));
  symlinkSync(OUTSIDE, join(RUNS, 'escape'));
  server = await startUiServer({ runs: RUNS, allow: [GPT2, TINYSTORIES, DATA_DIR], pollMs: 50, keepAliveMs: 60_000 });
  base = server.url.replace(/\/$/, '');
});

after(async () => {
  await server.close();
  rmSync(scratch, { recursive: true, force: true });
});

test('GET /api/runs lists every run directory with the contract keys, newest first', async () => {
  const r = await get('/api/runs');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /application\/json/);
  const runs = r.json() as Record<string, unknown>[];
  const names = runs.map((x) => x.name);
  assert.deepEqual([...names].sort(), ['alive', 'broken', 'crashed', 'done', 'group/nested', 'partial']);
  assert.deepEqual(names.slice(0, 3), ['alive', 'done', 'crashed']);
  for (const run of runs) for (const k of ['name', 'status', 'steps', 'bestValLoss', 'tokens']) assert.ok(k in run, `${String(run.name)} lacks ${k}`);
  const by = Object.fromEntries(runs.map((x) => [x.name, x])) as Record<string, Record<string, unknown>>;
  assert.deepEqual([by.alive!.status, by.alive!.steps, by.alive!.bestValLoss, by.alive!.tokens, by.alive!.tokensPerSec], ['running', 3, 1.25, 300, 1003]);
  assert.equal(by.done!.status, 'finished');
  assert.equal(by.crashed!.status, 'failed');
  assert.equal(by.crashed!.stale, true);
  assert.match(String(by.crashed!.statusDetail), new RegExp(`process ${deadPid} is not alive`));
  assert.equal(by['group/nested']!.status, 'unknown');
  assert.equal(by['group/nested']!.bestValLoss, null);
  assert.equal(by.broken!.status, 'unknown');
  assert.match(String(by.broken!.statusDetail), /sftkit_run\.json is not valid JSON/);
  assert.equal(by.partial!.steps, 3);
  assert.deepEqual(by.partial!.problems, [{ line: 3, error: 'not a JSON object' }]);
});

test('the holder of a run directory (its lock: pid, host, since) is reported for a running run, not for a stale lock', async () => {
  const runs = (await get('/api/runs')).json() as Record<string, unknown>[];
  const by = Object.fromEntries(runs.map((x) => [x.name, x])) as Record<string, Record<string, unknown>>;
  assert.deepEqual(by.alive!.holder, { pid: process.pid, host: hostname(), since: '2030-01-03T00:00:00.000Z', command: 'train' });
  assert.equal(by.crashed!.holder, null, 'a dead holder on this host is no holder');
  assert.equal(by.done!.holder, null);
  const detail = (await get('/api/runs/alive')).json() as Record<string, unknown>;
  assert.deepEqual(detail.holder, by.alive!.holder);
  assert.ok(!JSON.stringify(runs).includes('"token"'), 'the lock token stays in the lock');
  // the lock file is no run and no problem for the listing
  assert.equal(by.alive!.status, 'running');
  assert.deepEqual(by.alive!.problems, []);
});

test('GET /api/runs/:name/metrics returns the records; complete lines only; nested names are one encoded segment', async () => {
  const r = await get('/api/runs/alive/metrics');
  assert.equal(r.status, 200);
  assert.equal(r.json().length, 5);
  assert.deepEqual(r.json()[0], trainRecords(1)[0]);
  const p = await get('/api/runs/partial/metrics');
  assert.deepEqual(p.json().map((x: { step: number }) => x.step), [1, 2, 3]);
  const nested = await get(`/api/runs/${encodeURIComponent('group/nested')}/metrics`);
  assert.equal(nested.status, 200);
  assert.equal(nested.json().length, 4);
  const detail = (await get('/api/runs/alive')).json();
  assert.deepEqual(detail.config, { lr: 0.001, model: 'm' });
  const done = (await get('/api/runs/done')).json();
  assert.deepEqual(done.events, [{ step: 5, message: 'finished' }]);
  assert.deepEqual(done.result, { steps: 5 });
});

test('GET /api/runs/:name/events streams one data line per new record, partial lines when complete', async () => {
  const dir = writeRun(RUNS, 'live', trainRecords(2));
  const file = join(dir, 'metrics.jsonl');
  const ev = await EventReader.open(`${base}/api/runs/live/events`);
  try {
    assert.equal(ev.status, 200);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ev.frames.length, 0, 'records already there are not new');
    appendFileSync(file, jsonl(trainRecords(1, 3)));
    await ev.waitFor(1);
    const half = JSON.stringify(trainRecords(1, 4)[0]);
    appendFileSync(file, half.slice(0, 20));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(ev.frames.length, 1, 'a half-written line is not sent');
    appendFileSync(file, `${half.slice(20)}\n${JSON.stringify(trainRecords(1, 5)[0])}\n`);
    await ev.waitFor(3);
    assert.deepEqual(ev.frames.map((f) => [f.event, f.id, f.data.step]), [['message', '3', 3], ['message', '4', 4], ['message', '5', 5]]);
  } finally {
    ev.close();
  }
  // Catch-up from a known count, by ?after= or by Last-Event-ID (an EventSource reconnecting).
  const after = await EventReader.open(`${base}/api/runs/live/events?after=3`);
  const resumed = await EventReader.open(`${base}/api/runs/live/events`, { 'last-event-id': '4' });
  try {
    await after.waitFor(2);
    await resumed.waitFor(1);
    assert.deepEqual(after.frames.map((f) => f.data.step), [4, 5]);
    assert.deepEqual(resumed.frames.map((f) => f.data.step), [5]);
  } finally {
    after.close();
    resumed.close();
  }
});

test('records are held for the runs asked for, the last few: asking for many runs still answers each right', async () => {
  for (let i = 0; i < 12; i++) writeRun(RUNS, `many/r${i}`, trainRecords(i + 1));
  const ev = await EventReader.open(`${base}/api/runs/${encodeURIComponent('many/r0')}/events`);
  try {
    for (let i = 0; i < 12; i++) {
      const r = await get(`/api/runs/${encodeURIComponent(`many/r${i}`)}/metrics`);
      assert.equal(r.json().length, i + 1);
    }
    // The watched run kept its log: it still streams.
    appendFileSync(join(RUNS, 'many', 'r0', 'metrics.jsonl'), jsonl(trainRecords(1, 2)));
    await ev.waitFor(1);
    assert.equal(ev.frames[0]!.data.step, 2);
    assert.equal((await get(`/api/runs/${encodeURIComponent('many/r0')}/metrics`)).json().length, 2);
  } finally {
    ev.close();
    rmSync(join(RUNS, 'many'), { recursive: true, force: true });
  }
});

test('a metrics file replaced or cut back (a resume) sends a reset and then every record', async () => {
  const dir = writeRun(RUNS, 'resumed', trainRecords(4));
  const ev = await EventReader.open(`${base}/api/runs/resumed/events`);
  try {
    await new Promise((r) => setTimeout(r, 100));
    const tmp = join(dir, 'metrics.jsonl.tmp');
    writeFileSync(tmp, jsonl(trainRecords(2)));
    renameSync(tmp, join(dir, 'metrics.jsonl'));
    await ev.waitFor(3);
    assert.deepEqual(ev.frames.map((f) => f.event), ['reset', 'message', 'message']);
    assert.deepEqual(ev.frames[0]!.data, { records: 2 });
    assert.deepEqual(ev.frames.slice(1).map((f) => [f.id, f.data.step]), [['1', 1], ['2', 2]]);
  } finally {
    ev.close();
  }
});

test('run names are looked up, never joined: traversal, symlinks out of the tree and bad encodings are refused', async () => {
  for (const path of [
    '/api/runs/..%2F..%2Fetc%2Fpasswd/metrics',
    '/api/runs/%2e%2e%2foutside%2fforeign/metrics',
    '/api/runs/..%252Foutside/metrics',
    '/api/runs/linked-dir/metrics',
    '/api/runs/linked-file/metrics',
    '/api/runs/escape%2Fforeign/metrics',
    '/api/runs/nope/events',
    '/api/runs/%E0%A4%A/metrics',
    '/api/runs/../../../etc/passwd',
  ]) {
    const r = await get(path);
    assert.ok(r.status >= 400 && r.status < 500, `${path}: ${r.status}`);
    assert.equal(typeof r.json().error, 'string', path);
  }
  assert.equal((await get('/api/runs/nope/metrics')).status, 404);
  assert.equal((await get('/api/runs/%00/metrics')).status, 400);
});

test('the inspector gives the counts of `sftkit inspect` and pages of text pieces that read as the whole decode', async () => {
  const q = (extra: string) => `/api/inspect?model=${encodeURIComponent(GPT2)}&data=${encodeURIComponent(DATA)}${extra}`;
  const r = await get(q('&limit=3&offset=2'));
  assert.equal(r.status, 200, r.body);
  const page = r.json();
  assert.equal(page.format, 'alpaca');
  assert.equal(page.template, 'alpaca');
  assert.deepEqual(page.examples.map((e: { index: number }) => e.index), [2, 3, 4]);
  const out: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) > 0 }, stderr: { write: () => true } } as never;
  assert.equal(await inspectCommand.run(['--model', GPT2, '--data', DATA], io), 0);
  const cli = /kept (\d+)\/(\d+), dropped (\d+).*trained (\d+) \/ masked (\d+) tokens/.exec(out.join(''));
  assert.ok(cli);
  const s = page.summary;
  assert.deepEqual([s.kept, s.examples, s.droppedTotal, s.trainedTokens, s.maskedTokens].map(String), cli.slice(1));
  const ex = page.examples[0];
  assert.equal(ex.pieces.reduce((n: number, p: { ids: number[] }) => n + p.ids.length, 0), ex.tokens);
  const text = ex.pieces.map((p: { text: string }) => p.text).join('');
  assert.match(text, /### Response:\n/);
  const trained = ex.pieces.filter((p: { trained: boolean }) => p.trained).map((p: { text: string }) => p.text).join('');
  assert.ok(trained.endsWith('<|endoftext|>'), trained);
  assert.ok(!trained.includes('### Response'), 'the prompt is masked');
  // The second page comes from the cached counts and the same numbers.
  const again = (await get(q('&limit=2&offset=118'))).json();
  assert.deepEqual(again.summary, s);
  assert.deepEqual(again.examples.map((e: { index: number }) => e.index), [118, 119]);
  assert.deepEqual(page.warnings, []);
  // Alpaca's `###` is <unk> to the TinyStories tokenizer: the page says so, in the words of `sftkit inspect`.
  const unk = (await get(`/api/inspect?model=${encodeURIComponent(TINYSTORIES)}&data=${encodeURIComponent(DATA)}&limit=2`)).json();
  assert.equal(unk.warnings.length, 1, JSON.stringify(unk.warnings));
  assert.match(unk.warnings[0], /\d+ unknown tokens? \(<unk>\) in \d+ of 120 examples, e\.g\. "###" from the template text/);
  const dropped = (await get(q('&limit=1&maxLength=20'))).json();
  assert.equal(dropped.examples[0].kept, false);
  assert.equal(dropped.examples[0].reason, 'truncated-away');
  assert.ok(dropped.examples[0].segments.length > 0);
});

test('the inspector reads Parquet, CSV and dataset directories as it reads JSONL', async () => {
  const page = async (data: string, extra = '') => {
    const r = await get(`/api/inspect?model=${encodeURIComponent(GPT2)}&data=${encodeURIComponent(data)}&limit=4${extra}`);
    assert.equal(r.status, 200, r.body);
    return r.json() as { format: string; summary: { examples: number; tokens: number }; examples: { record: number; file: string; line: number; pieces: unknown[] }[] };
  };
  const jsonl = await page(join(DATA_DIR, 'alpaca.jsonl'));
  for (const name of ['alpaca-snappy.parquet', 'alpaca.csv']) {
    const p = await page(join(DATA_DIR, name));
    assert.equal(p.format, 'alpaca', name);
    assert.deepEqual(p.summary, jsonl.summary, name);
    assert.deepEqual(p.examples.map((e) => e.pieces), jsonl.examples.map((e) => e.pieces), name);
  }
  const csv = await page(join(DATA_DIR, 'alpaca.csv'), '&offset=20');
  assert.deepEqual(csv.examples.map((e) => [e.record, e.line]), [[20, 22], [21, 24], [22, 27], [23, 28]], 'CSV lines where records start');
  const dir = await page(join(DATA_DIR, 'hf-dataset'), '&offset=10');
  assert.equal(dir.summary.examples, 20, 'the train split');
  assert.deepEqual(dir.examples.map((e) => [e.record, e.file.slice(-28), e.line]), [
    [10, 'train-00000-of-00002.parquet', 11],
    [11, 'train-00000-of-00002.parquet', 12],
    [12, 'train-00001-of-00002.parquet', 1],
    [13, 'train-00001-of-00002.parquet', 2],
  ]);
  const files = (await get('/api/files?kind=data')).json().files.map((f: { path: string }) => f.path);
  for (const name of ['alpaca-snappy.parquet', 'alpaca.csv']) assert.ok(files.includes(join(DATA_DIR, name)), name);
});

test('paths outside --runs and the allowed directories are refused with 403, after realpath', async () => {
  const cases: [string, Record<string, string>, number][] = [
    ['/etc', { data: DATA }, 403],
    [GPT2, { data: '/etc/passwd' }, 403],
    [GPT2, { data: join(OUTSIDE, 'secret.json') }, 403],
    [GPT2, { data: join(RUNS, 'escape', 'secret.json') }, 403],
    [GPT2, { data: `${DATA_DIR}/../../../package.json` }, 403],
    [GPT2, { data: `${DATA_DIR}/%2e%2e/%2e%2e/package.json` }, 403],
    [GPT2, { data: `${DATA_DIR}/%252e%252e/secret.json` }, 403],
    [GPT2, { data: `${DATA}\0` }, 400],
    [GPT2, { data: 'https://example.com/data.json' }, 403],
    [GPT2, { data: DATA, template: join(OUTSIDE, 'secret.json') }, 403],
    [GPT2, { data: join(DATA_DIR, 'missing.json') }, 404],
    [GPT2, { data: join(fixtures, 'data', 'instruction-data.json') }, 403],
    [GPT2, { data: join(DATA_DIR, 'no-data') }, 400], // a directory without data files (a dataset directory is fine)
    [GPT2, { data: 'escape/secret.json' }, 403], // relative: from --runs, then realpath
    [GPT2, { data: 'nothing.json' }, 404],
  ];
  for (const [model, params, status] of cases) {
    const qs = new URLSearchParams({ model, ...params });
    const r = await get(`/api/inspect?${qs}`);
    assert.equal(r.status, status, `${JSON.stringify(params)}: ${r.body}`);
    assert.equal(typeof r.json().error, 'string');
  }
  const resp = await get(`/api/responses?file=${encodeURIComponent(join(OUTSIDE, 'secret.json'))}`);
  assert.equal(resp.status, 403);
  const chat = await request(base, '/api/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: OUTSIDE, messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(chat.status, 403);
});

test('malformed requests get 4xx JSON errors and the server keeps answering', async () => {
  const expect = async (r: Promise<Awaited<ReturnType<typeof get>>>, status: number, pattern: RegExp) => {
    const res = await r;
    assert.equal(res.status, status, res.body);
    assert.match(res.json().error, pattern);
  };
  await expect(get('/api/nothing'), 404, /no API route/);
  await expect(get('/nothing.html'), 404, /no such page/);
  await expect(request(base, '/api/runs', { method: 'DELETE' }), 405, /DELETE is not allowed/);
  await expect(request(base, '/api/chat'), 405, /GET is not allowed/);
  await expect(get('/api/runs?x=1'), 400, /unknown query parameter "x"/);
  await expect(get(`/api/inspect?model=${encodeURIComponent(GPT2)}&data=${encodeURIComponent(DATA)}&limit=ten`), 400, /"limit" must be an integer/);
  await expect(get(`/api/inspect?model=${encodeURIComponent(GPT2)}&data=${encodeURIComponent(DATA)}&mask=none`), 400, /"mask" must be one of/);
  await expect(get(`/api/inspect?model=${encodeURIComponent(GPT2)}&data=${encodeURIComponent(DATA)}&limit=1&limit=2`), 400, /more than once/);
  await expect(get('/api/inspect?data=x'), 400, /"model" is required/);
  await expect(
    get(`/api/inspect?model=${encodeURIComponent(GPT2)}&data=${encodeURIComponent(DATA)}&template=nosuch`),
    404,
    /^template nosuch: not a built-in template \(plain, alpaca, phi3, chatml, model\) and no file nosuch exists/,
  );
  await expect(get('/api/files?kind=secrets'), 400, /"kind" must be one of/);
  await expect(get('/api/runs/live/events?after=-1'), 400, /"after" must be an integer/);
  const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => request(base, '/api/chat', { method: 'POST', headers, body });
  await expect(post('{"model": '), 400, /not valid JSON/);
  await expect(post('[1]'), 400, /must be a JSON object/);
  await expect(post('{}', { 'content-type': 'text/plain' }), 415, /application\/json/);
  await expect(post(JSON.stringify({ model: GPT2, messages: [{ role: 'user', content: 'x' }], extra: 1 })), 400, /unknown key "extra"/);
  await expect(post(JSON.stringify({ model: GPT2, messages: [{ role: 'robot', content: 'x' }] })), 400, /role must be one of/);
  await expect(post(JSON.stringify({ model: GPT2, messages: [{ role: 'user', content: 'x' }], sampling: { temperature: -1 } })), 400, /temperature must be a number/);
  await expect(post(JSON.stringify({ model: GPT2, messages: [{ role: 'assistant', content: 'x' }] })), 400, /last message must be a user turn/);
  await expect(post(JSON.stringify({ model: 'x'.repeat(10), messages: [{ role: 'user', content: 'y'.repeat(1_100_000) }] })), 413, /larger than/);
  await expect(get('/api/runs', { host: 'evil.example:80' }), 403, /not this dashboard/);
  await expect(get('/api/runs', { host: `localhost:${server.port + 1}` }), 403, /not this dashboard/);
  await expect(request(base, '/api/chat', { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: '{}' }), 403, /cross-origin/);
  assert.equal((await get('/api/runs', { host: `localhost:${server.port}` })).status, 200);
  // Not even HTTP.
  const raw = await new Promise<string>((resolve) => {
    const s = connect(server.port, '127.0.0.1', () => s.end('NOT HTTP\r\n\r\n'));
    let text = '';
    s.on('data', (d) => (text += String(d)));
    s.on('close', () => resolve(text));
  });
  assert.match(raw, /^HTTP\/1\.1 400/);
  assert.equal((await get('/api/runs')).status, 200);
});

test('responses: the records and the distribution of the judge scores; a bad file names the record', async () => {
  const file = join(RUNS, 'done', 'test-responses.json');
  const rec = (score: number | null | undefined) => ({ instruction: 'i', input: '', output: 'o', model_response: 'm', ...(score !== undefined ? { score } : {}) });
  writeFileSync(file, JSON.stringify([rec(100), rec(95), rec(40), rec(0), rec(null), rec(undefined)]));
  const r = await get(`/api/responses?file=${encodeURIComponent(file)}`);
  assert.equal(r.status, 200, r.body);
  const { records, stats } = r.json();
  assert.equal(records.length, 6);
  assert.deepEqual([stats.records, stats.scored, stats.unparseable, stats.unscored, stats.mean, stats.median, stats.min, stats.max], [6, 4, 1, 1, 58.75, 67.5, 0, 100]);
  assert.deepEqual(stats.histogram.map((b: { count: number }) => b.count), [1, 0, 0, 0, 1, 0, 0, 0, 0, 2]);
  writeFileSync(file, JSON.stringify([rec(1), { instruction: 'i', output: 3, model_response: 'm' }]));
  const bad = await get(`/api/responses?file=${encodeURIComponent(file)}`);
  assert.equal(bad.status, 400);
  assert.match(bad.json().error, /record 1\) field "output"/);
  const files = (await get('/api/files?kind=responses')).json();
  assert.deepEqual(files.files.map((f: { path: string }) => f.path), [file]);
});

test('the pickers list model directories and data files below the allowed roots', async () => {
  const models = (await get('/api/files?kind=model')).json().files.map((f: { path: string }) => f.path);
  assert.deepEqual(models, []); // the gpt2 tokenizer directory has no config.json: not a model
  const data = (await get('/api/files?kind=data')).json().files.map((f: { path: string }) => f.path);
  assert.ok(data.includes(DATA));
  assert.ok(!data.some((p: string) => p.endsWith('metrics.jsonl') || p.endsWith('sftkit_run.json')));
  assert.ok(!data.some((p: string) => p.startsWith(OUTSIDE)), 'symlinks out of the roots are not followed');
});

test('the page and its script are served with a content security policy', async () => {
  const page = await get('/');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
  assert.match(page.body, /<script src="\/app\.js" defer><\/script>/);
  const js = await get('/app.js');
  assert.equal(js.status, 200);
  assert.match(String(js.headers['content-type']), /text\/javascript/);
  assert.ok(js.body.length > 20_000, 'uPlot is bundled in');
});
