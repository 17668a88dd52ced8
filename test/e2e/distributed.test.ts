// Data parallelism on c10d (TCPStore + Gloo on 127.0.0.1): N processes with global batch B give the same weights as
// one process with batch B; the library API takes { distributed }; a killed rank ends the others with a clear error.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadSafetensors } from '../../src/native/safetensors.ts';
import { freePort } from '../../src/training/launch.ts';

const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'sftkit.js');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-dist-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const DATA = join(scratch, 'data.json');
writeFileSync(DATA, JSON.stringify(JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'data', 'instruction-data.json'), 'utf8')).slice(0, 40)));
const common = ['--model', MODEL, '--data', DATA, '--batch-size', '4', '--max-length', '128', '--lr', '0.003', '--val-split', '0.1', '--test-split', '0', '--threads', '1', '--seed', '5'];

async function maxWeightDiff(a: string, b: string): Promise<number> {
  const wa = await loadSafetensors(join(a, 'model.safetensors'));
  const wb = await loadSafetensors(join(b, 'model.safetensors'));
  let worst = 0;
  for (const [name, t] of Object.entries(wa)) {
    const u = wb[name];
    assert.ok(u, `${name} missing`);
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(Number(t.data[i]) - Number(u.data[i])));
  }
  return worst;
}

test('--nproc 2 (global batch 4 = 2 x 2) gives the weights of one process with batch 4', { timeout: 300_000 }, async () => {
  const one = join(scratch, 'one');
  const two = join(scratch, 'two');
  // lr 1e-4: Adam turns float-summation-order differences of near-zero gradients into updates of about lr.
  const r1 = spawnSync(process.execPath, [bin, 'train', ...common, '--lr', '1e-4', '--out', one, '--max-steps', '4'], { encoding: 'utf8' });
  assert.equal(r1.status, 0, r1.stderr);
  const r2 = spawnSync(process.execPath, [bin, 'train', ...common, '--lr', '1e-4', '--out', two, '--max-steps', '4', '--nproc', '2'], { encoding: 'utf8' });
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stderr, /data parallel, 2 processes/);
  const diff = await maxWeightDiff(one, two);
  assert.ok(diff < 1e-5, `weights differ by ${diff}`);
  // Same logged losses (global sums), and only rank 0 wrote the run.
  const losses = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((m) => m.type === 'train').map((m) => m.loss as number);
  const a = losses(one);
  const b = losses(two);
  assert.equal(b.length, 4);
  a.forEach((x, i) => assert.ok(Math.abs(x - (b[i] as number)) < 1e-5 * x, `step ${i + 1}: ${x} vs ${b[i]}`));
  assert.equal(JSON.parse(readFileSync(join(two, 'sftkit_run.json'), 'utf8')).worldSize, 2);
});

test('the library API: train({ ..., distributed: { rank, worldSize, masterAddr, masterPort } }) in two processes', { timeout: 300_000 }, async () => {
  const out = join(scratch, 'lib');
  const port = await freePort();
  const script = (rank: number) => `
    import { train } from ${JSON.stringify(join(root, 'src', 'recipes', 'sft.ts'))};
    const r = await train({ model: ${JSON.stringify(MODEL)}, data: ${JSON.stringify(DATA)}, out: ${JSON.stringify(out)}, batchSize: 4, maxLength: 128,
      maxSteps: 3, valSplit: 0, testSplit: 0, threads: 1, distributed: { rank: ${rank}, worldSize: 2, masterAddr: '127.0.0.1', masterPort: ${port} } },
      { progress: { write: () => true }, log: () => {}, handleSignals: false });
    console.log(JSON.stringify({ steps: r.steps, loss: r.lastTrainLoss }));`;
  const run = (rank: number) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(rank)], { cwd: root });
      let o = '';
      let e = '';
      c.stdout.on('data', (d) => (o += String(d)));
      c.stderr.on('data', (d) => (e += String(d)));
      c.on('exit', (code) => resolve({ code, out: o, err: e }));
    });
  const [r0, r1] = await Promise.all([run(0), run(1)]);
  assert.equal(r0.code, 0, r0.err);
  assert.equal(r1.code, 0, r1.err);
  const a = JSON.parse(r0.out.trim());
  const b = JSON.parse(r1.out.trim());
  assert.equal(a.steps, 3);
  assert.equal(a.loss, b.loss, 'every rank sees the same global loss');
  assert.ok(existsSync(join(out, 'model.safetensors')));
});

test('a killed rank ends the run: the launcher exits non-zero naming it, no half-written checkpoint', { timeout: 300_000 }, async () => {
  const out = join(scratch, 'killed');
  const child = spawn(process.execPath, [bin, 'train', ...common, '--out', out, '--max-steps', '5000', '--save-every', '3', '--log-every', '1', '--nproc', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let killedAt = 0;
  child.stderr.on('data', (d) => {
    err += String(d);
    const m = /rank 1 pid (\d+)/.exec(err);
    if (m && killedAt === 0 && /step [4-9]\//.test(err)) {
      killedAt = Date.now();
      process.kill(Number(m[1]), 'SIGKILL');
    }
  });
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.ok(killedAt > 0, `rank 1 was never killed: ${err.slice(-2000)}`);
  assert.notEqual(code, 0);
  assert.ok(Date.now() - killedAt < 60_000, 'the others ended within the timeout');
  assert.match(err, /rank 1 \(pid \d+\) was killed by SIGKILL; stopping the other ranks/);
  assert.match(err, /all-reduce failed — another rank is gone/);
  const cps = readdirSync(out).filter((n) => n.startsWith('checkpoint-'));
  assert.ok(cps.length > 0, 'a checkpoint was written before the kill');
  for (const d of cps) assert.ok(existsSync(join(out, d, 'trainer_state.json')), `${d} is complete`);
  // --resume with another world size (1 divides the global batch 4) continues from the last checkpoint.
  const resumed = spawnSync(process.execPath, [bin, 'train', ...common, '--out', out, '--max-steps', '12', '--resume'], { encoding: 'utf8' });
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from .*checkpoint-\d+ at step \d+/);
});
