// `sftkit ui` in a real browser (Debian's chromium driven by playwright-core): the runs table and a loss curve with
// the right number of points, the curve growing when a metric line is appended, two runs overlaid, the mask
// inspector on the shipped TinyStories-656K with highlighted spans, a streamed playground reply, the responses
// view; screenshots go to test-artifacts/ui/. Skipped, saying why, only when chromium is not installed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const root = join(import.meta.dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');
const ARTIFACTS = join(root, 'test-artifacts', 'ui');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-ui-e2e-'));
const RUNS = join(scratch, 'runs');
const DATA_DIR = join(scratch, 'data');
const DATA = join(DATA_DIR, 'instructions.json');
const haveChromium = existsSync(CHROMIUM);
const skip = haveChromium ? false : `${CHROMIUM} is not installed (apt-get install -y chromium; .ci/run installs it when run as root)`;
if (skip) process.stdout.write(`# ui-browser: skipped: ${skip}\n`);

let child: ChildProcess | undefined;
let url = '';
let context: BrowserContext | undefined;
let page: Page;

function record(step: number, extra: object = {}): string {
  return `${JSON.stringify({ type: 'train', step, epoch: step / 10, tokensSeen: step * 128, loss: 4 / (1 + step / 3), lr: 0.002 * Math.min(1, step / 2), gradNorm: 2 / step, tokensPerSec: 900, ...extra })}\n`;
}
const val = (step: number, loss: number) => `${JSON.stringify({ type: 'val', step, tokensSeen: step * 128, loss })}\n`;

before(async () => {
  if (skip) return;
  mkdirSync(join(RUNS, 'live-run'), { recursive: true });
  mkdirSync(join(RUNS, 'baseline'), { recursive: true });
  mkdirSync(DATA_DIR, { recursive: true });
  mkdirSync(ARTIFACTS, { recursive: true });
  const live = [1, 2, 3, 4, 5, 6].map((s) => record(s)).join('') + val(3, 2.1) + val(6, 1.8);
  writeFileSync(join(RUNS, 'live-run', 'metrics.jsonl'), live);
  writeFileSync(join(RUNS, 'live-run', 'sftkit_run.json'), JSON.stringify({ status: 'running', pid: process.pid, startedAt: new Date().toISOString(), updatedAt: new Date().toISOString(), options: { model: MODEL, lr: 0.002, batchSize: 8 } }));
  writeFileSync(join(RUNS, 'baseline', 'metrics.jsonl'), [1, 2, 3, 4].map((s) => record(s, { loss: 5 / (1 + s / 4) })).join('') + `${JSON.stringify({ type: 'event', step: 4, message: 'finished' })}\n`);
  writeFileSync(join(RUNS, 'baseline', 'sftkit_run.json'), JSON.stringify({ status: 'finished', pid: 1, updatedAt: '2020-01-01T00:00:00Z', options: { lr: 0.001 } }));
  const records = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'data', 'instruction-data.json'), 'utf8')) as object[];
  writeFileSync(DATA, JSON.stringify(records.slice(0, 60)));
  const scores = [92, 85, 40, 12, 77, null];
  writeFileSync(join(RUNS, 'baseline', 'test-responses.json'), JSON.stringify(records.slice(0, 6).map((r, i) => ({ ...r, model_response: `answer ${i}`, score: scores[i] }))));

  child = spawn(process.execPath, [join(root, 'bin', 'sftkit.js'), 'ui', '--runs', RUNS, '--port', '0', '--models', MODEL, '--data', DATA_DIR, '--threads', '1'], { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += String(d)));
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sftkit ui did not start: ${out}${err}`)), 30_000);
    child!.stdout!.on('data', (d) => {
      out += String(d);
      const m = /sftkit ui: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child!.on('exit', (code) => reject(new Error(`sftkit ui exited with ${code}: ${out}${err}`)));
  });
  const { chromium } = await import('playwright-core');
  context = await chromium.launchPersistentContext(join(scratch, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
});

after(async () => {
  await context?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
  }
  rmSync(scratch, { recursive: true, force: true });
});

/** The chart's series -> point counts, as the page exposes them. */
async function points(chart: string): Promise<Record<string, number>> {
  return JSON.parse((await page.getAttribute(`figure[data-chart="${chart}"]`, 'data-points')) ?? '{}') as Record<string, number>;
}

/** Polls `check` (the page's CSP forbids evaluating strings, and the DOM is not typed here). */
async function until(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForPoints(chart: string, series: string, n: number): Promise<void> {
  await until(async () => (await points(chart))[series] === n, `${chart}: ${series} with ${n} points`);
}

test('runs: the table shows the run, a loss curve with the right number of points, and it grows live', { skip }, async () => {
  await page.goto(url);
  const row = page.locator('tr[data-run="live-run"]');
  await row.waitFor();
  assert.equal((await row.locator('.status').textContent())?.trim(), 'running');
  assert.equal((await page.locator('tr[data-run="baseline"] .status').textContent())?.trim(), 'finished');
  assert.match((await row.textContent()) ?? '', /1\.8000/, 'best val loss');
  await waitForPoints('loss', 'live-run train', 6);
  assert.equal((await points('loss'))['live-run val'], 2);
  assert.equal((await points('lr'))['live-run train'], 6);
  await page.locator('figure[data-chart="loss"] canvas').first().waitFor();
  await page.screenshot({ path: join(ARTIFACTS, 'runs.png'), fullPage: true });

  // The trainer appends: the page follows without reloading (a half line first, then the rest and a val record).
  const file = join(RUNS, 'live-run', 'metrics.jsonl');
  const line = record(7);
  appendFileSync(file, line.slice(0, 25));
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await points('loss'))['live-run train'], 6, 'a half-written line is not plotted');
  appendFileSync(file, line.slice(25) + record(8) + val(8, 1.5));
  await waitForPoints('loss', 'live-run train', 8);
  await waitForPoints('loss', 'live-run val', 3);

  // Two runs overlaid, against tokens seen.
  await page.locator('tr[data-run="baseline"] input[type=checkbox]').check();
  await waitForPoints('loss', 'baseline train', 4);
  await page.selectOption('select[name=axis]', 'tokens');
  await page.waitForSelector('figure[data-chart="loss"][data-x="tokens"]');
  assert.equal((await points('loss'))['live-run train'], 8);
  await page.screenshot({ path: join(ARTIFACTS, 'runs-overlay.png'), fullPage: true });
});

test('inspector: the shipped model and data, trained tokens highlighted, masked dimmed, ids on hover, counts', { skip }, async () => {
  await page.goto(`${url}#inspect`);
  await page.fill('#view-inspect input[name=model]', MODEL);
  await page.fill('#view-inspect input[name=data]', DATA);
  await page.click('#view-inspect button[type=submit]');
  await page.waitForSelector('#view-inspect .examples .tok.trained');
  const trained = await page.locator('#view-inspect .examples .tok.trained').count();
  const masked = await page.locator('#view-inspect .examples .tok.masked').count();
  assert.ok(trained > 20 && masked > trained, `${trained} trained, ${masked} masked spans`);
  assert.equal(await page.locator('#view-inspect .examples article').count(), 10);
  assert.equal(await page.textContent('[data-count="examples"]'), '60');
  assert.equal(await page.textContent('[data-count="kept"]'), '60');
  const first = page.locator('#view-inspect .examples .tok.trained').first();
  assert.match((await first.getAttribute('title')) ?? '', /^token ids? \d+/);
  await first.hover();
  assert.match((await page.textContent('.tooltip')) ?? '', /trained · id \d+/);
  // The first example's trained text is the reference answer of record 0.
  const answer = (JSON.parse(readFileSync(DATA, 'utf8')) as { output: string }[])[0]!.output;
  const trainedText = (await page.locator('#view-inspect .examples article').first().locator('.tok.trained').allTextContents()).join('');
  assert.ok(trainedText.includes(answer.slice(0, 20)), trainedText);
  await page.screenshot({ path: join(ARTIFACTS, 'inspector.png') });
  await page.click('#view-inspect .pager button:has-text("next")');
  await page.waitForSelector('#view-inspect .examples article[data-index="10"]');
});

test('playground: a reply streams in from the model', { skip }, async () => {
  await page.goto(`${url}#playground`);
  await page.fill('#view-playground .column input[name=model] >> nth=0', MODEL);
  await page.selectOption('#view-playground select[name=template]', 'none');
  await page.fill('#view-playground input[name=temperature]', '0');
  await page.fill('#view-playground input[name=maxNewTokens]', '24');
  await page.fill('#view-playground textarea[name=prompt]', 'Once upon a time');
  await page.click('#view-playground button[type=submit]');
  await until(async () => /tokens\/s/.test((await page.locator('#view-playground .stats').first().textContent()) ?? ''), 'the reply to finish', 20_000);
  const reply = (await page.locator('#view-playground .msg.assistant').first().textContent()) ?? '';
  assert.ok(reply.trim().length > 10, reply);
  await page.screenshot({ path: join(ARTIFACTS, 'playground.png') });
});

test('responses: the table and the distribution of judge scores', { skip }, async () => {
  await page.goto(`${url}#responses`);
  await page.fill('#view-responses input[name=file]', join(RUNS, 'baseline', 'test-responses.json'));
  await page.click('#view-responses button[type=submit]');
  await page.waitForSelector('#view-responses tbody tr');
  assert.equal(await page.locator('#view-responses tbody tr').count(), 6);
  const counts = await page.locator('#view-responses .histogram .bar').evaluateAll((bars) => bars.map((b) => Number(b.getAttribute('data-count'))));
  assert.deepEqual(counts, [0, 1, 0, 0, 1, 0, 0, 1, 1, 1]);
  assert.match((await page.textContent('#view-responses .summary')) ?? '', /5 scored · mean 61\.2/);
  await page.screenshot({ path: join(ARTIFACTS, 'responses.png'), fullPage: true });
});

test('sftkit ui stops cleanly on SIGINT', { skip }, async () => {
  await context?.close();
  context = undefined;
  const code = await new Promise<number | null>((resolve) => {
    child!.once('exit', (c) => resolve(c));
    child!.kill('SIGINT');
  });
  assert.equal(code, 0);
});
