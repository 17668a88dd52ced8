// A run directory has one owner: two `sftkit train` runs on the same --out at once; the second exits non-zero naming
// the first (pid, host, since) and writes nothing, the first finishes, the dashboard's run index shows the holder
// meanwhile, and no lock is left behind for --resume.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RunIndex } from '../../src/ui/runs.ts';

const root = join(import.meta.dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-lock-e2e-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const DATA = join(scratch, 'data.json');
writeFileSync(DATA, JSON.stringify(JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'data', 'instruction-data.json'), 'utf8')).slice(0, 60)));
const OUT = join(scratch, 'runs', 'shared');
const trainArgs = (steps: number) => [join(root, 'bin', 'sftkit.js'), 'train', '--model', MODEL, '--data', DATA, '--out', OUT, '--max-steps', String(steps), '--batch-size', '4', '--max-length', '128', '--log-every', '1'];

test('a second `sftkit train` on the same --out is refused naming the first, which goes on; the dashboard shows the holder', async () => {
  // The first run is long enough never to end by itself while the second starts (a short one could finish first and
  // free the directory): it is stopped with SIGINT once the second has been refused.
  const first = spawn(process.execPath, trainArgs(100_000), { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
  let err1 = '';
  let out1 = '';
  first.stdout.on('data', (d) => (out1 += String(d)));
  const started = new Promise<void>((resolve) => {
    first.stderr.on('data', (d) => {
      err1 += String(d);
      if (/step 1\//.test(err1)) resolve();
    });
  });
  const firstExit = new Promise<number | null>((r) => first.on('exit', r));
  await Promise.race([started, firstExit]);
  assert.match(err1, /step 1\//, `the first run did not start training:\n${err1}`);

  // The dashboard (its run index) reports who holds the directory.
  const index = new RunIndex(join(scratch, 'runs'));
  const listed = (await index.list()).find((r) => r.name === 'shared');
  index.close();
  assert.equal(listed?.status, 'running');
  assert.equal(listed?.holder?.pid, first.pid);
  assert.equal(listed?.holder?.host, hostname());
  assert.equal(listed?.holder?.command, 'train');

  const second = spawnSync(process.execPath, trainArgs(2), { cwd: scratch, encoding: 'utf8', timeout: 120_000 });
  assert.notEqual(second.status, 0, `the second run was not refused:\n${second.stderr}`);
  assert.match(second.stderr, new RegExp(`${OUT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by another run: pid ${first.pid} on host ${hostname()} since \\S+ \\(sftkit train\\)`));
  assert.equal(second.stdout, '', 'no result line from the refused run');

  assert.equal(first.exitCode, null, 'the first run is still training');
  first.kill('SIGINT');
  const code = await firstExit;
  assert.equal(code, 130, err1);
  const result = JSON.parse(out1.trim().split('\n').pop() as string);
  assert.equal(result.stopped, 'interrupted');
  const run = JSON.parse(readFileSync(join(OUT, 'sftkit_run.json'), 'utf8'));
  assert.equal(run.status, 'interrupted');
  assert.equal(run.pid, first.pid, 'the refused run did not touch the run file');
  assert.equal(existsSync(join(OUT, 'sftkit.lock')), false, 'the lock is released at the end');

  // The directory is free again: --resume continues from the first run's checkpoint.
  const saved = readdirSync(OUT).map((n) => /^checkpoint-(\d+)$/.exec(n)?.[1]).filter((n) => n !== undefined).map(Number);
  const at = Math.max(...saved);
  assert.equal(result.lastCheckpoint, join(OUT, `checkpoint-${at}`), 'the interrupted run left its checkpoint');
  const resumed = spawnSync(process.execPath, [...trainArgs(at + 2), '--resume'], { cwd: scratch, encoding: 'utf8', timeout: 120_000 });
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(JSON.parse(resumed.stdout.trim().split('\n').pop() as string).steps, at + 2);
  assert.match(resumed.stderr, /resumed from .*checkpoint-\d+/);
  assert.doesNotMatch(resumed.stderr, /taking over/);
  assert.equal(existsSync(join(OUT, 'sftkit.lock')), false);
});
