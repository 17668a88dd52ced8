// Atomic checkpoint directories, trainer state validation, listing/pruning/latest, crash leftovers, stop signals.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { writeFile } from 'node:fs/promises';
import {
  installStopSignals,
  latestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  readTrainerState,
  removeStaleTempDirs,
  saveCheckpoint,
  validateTrainerState,
  writeCheckpointDir,
  writeTrainerState,
  type TrainerState,
} from '../../../src/training/checkpoint.ts';
import { validateTrainOptions } from '../../../src/training/options.ts';

const root = mkdtempSync(join(tmpdir(), 'sftkit-ckpt-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `out${n++}`);

const options = validateTrainOptions({ model: 'm', data: 'd.json', out: 'o', maxSteps: 10 });
const state = (step: number): TrainerState => ({
  step,
  epoch: 0,
  batchInEpoch: step * 2,
  tokensSeen: step * 1000,
  rngState: { seed: 42, draws: [1, 2, 3] },
  optimizerFile: 'optimizer.safetensors',
  dataFingerprint: 'abc123',
  options,
});
const writeModel = (step: number) => async (dir: string) => {
  await writeFile(join(dir, 'model.safetensors'), `weights ${step}`);
  mkdirSync(join(dir, 'sub'));
  await writeFile(join(dir, 'sub', 'x.txt'), 'nested');
};

test('writeCheckpointDir renames a filled temp dir into place and leaves no temp behind', async () => {
  const out = fresh();
  let seenTmp = '';
  const path = await writeCheckpointDir(out, 'final', async (tmp) => {
    seenTmp = tmp;
    assert.match(tmp, new RegExp(`\\.tmp-final-${process.pid}$`));
    await writeFile(join(tmp, 'a.txt'), 'one');
  });
  assert.equal(path, join(out, 'final'));
  assert.equal(readFileSync(join(path, 'a.txt'), 'utf8'), 'one');
  assert.ok(!existsSync(seenTmp));
  // replacing an existing directory
  await writeCheckpointDir(out, 'final', async (tmp) => writeFile(join(tmp, 'b.txt'), 'two'));
  assert.deepEqual(readdirSync(out), ['final']);
  assert.deepEqual(readdirSync(path), ['b.txt']);
  // a failing writer changes nothing and cleans up
  await assert.rejects(writeCheckpointDir(out, 'final', async () => { throw new Error('disk full'); }), /disk full/);
  assert.deepEqual(readdirSync(out), ['final']);
  assert.deepEqual(readdirSync(path), ['b.txt']);
  await assert.rejects(writeCheckpointDir(out, '../evil', async () => {}), /for name/);
  await assert.rejects(writeCheckpointDir(out, '.hidden', async () => {}), /for name/);
});

test('trainer state round-trips and is validated field by field', async () => {
  const out = fresh();
  mkdirSync(out);
  await writeTrainerState(out, { ...state(7), bestValLoss: 1.25 });
  const back = await readTrainerState(out);
  assert.deepEqual(back, { ...state(7), bestValLoss: 1.25 });
  assert.throws(() => validateTrainerState({ ...state(1), version: 1, step: -1 }, 'ts.json'), /ts\.json field "step": expected an integer >= 0, found -1/);
  assert.throws(() => validateTrainerState({ ...state(1), version: 1, dataFingerprint: '' }), /field "dataFingerprint"/);
  assert.throws(() => validateTrainerState({ ...state(1), version: 2 }), /field "version"/);
  assert.throws(() => validateTrainerState({ ...state(1), version: 1, bestValLoss: 'x' }), /field "bestValLoss"/);
  assert.throws(() => validateTrainerState({ ...state(1), version: 1, options: null }), /field "options"/);
  await assert.rejects(writeTrainerState(out, { ...state(1), tokensSeen: 1.5 }), /field "tokensSeen"/);
  writeFileSync(join(out, 'trainer_state.json'), '{"step": ');
  await assert.rejects(readTrainerState(out), /not valid JSON/);
  await assert.rejects(readTrainerState(join(out, 'nope')), (e: Error & { code?: string }) => e.code === 'SFTKIT_IO');
});

test('listCheckpoints sorts by step and skips temp, incomplete and mismatched directories', async () => {
  const out = fresh();
  for (const s of [20, 5, 100]) await saveCheckpoint(out, state(s), writeModel(s));
  // leftovers of crashes and other clutter
  mkdirSync(join(out, '.tmp-checkpoint-200-99999'));
  await writeTrainerState(join(out, '.tmp-checkpoint-200-99999'), state(200));
  mkdirSync(join(out, 'checkpoint-300')); // no trainer_state.json: incomplete
  writeFileSync(join(out, 'checkpoint-300', 'model.safetensors'), 'partial');
  mkdirSync(join(out, 'checkpoint-400'));
  await writeTrainerState(join(out, 'checkpoint-400'), state(401)); // step mismatch
  mkdirSync(join(out, 'checkpoint-final'));
  writeFileSync(join(out, 'checkpoint-7'), 'a file, not a dir');
  const list = await listCheckpoints(out);
  assert.deepEqual(list.map((c) => c.step), [5, 20, 100]);
  assert.deepEqual(list[2], { name: 'checkpoint-100', path: join(out, 'checkpoint-100'), step: 100 });
  assert.equal((await latestCheckpoint(out))?.name, 'checkpoint-100');
  assert.equal(readFileSync(join(out, 'checkpoint-20', 'sub', 'x.txt'), 'utf8'), 'nested');
  assert.deepEqual(await listCheckpoints(join(out, 'missing')), []);
  assert.equal(await latestCheckpoint(join(out, 'missing')), undefined);
  assert.deepEqual((await removeStaleTempDirs(out)).sort(), ['.tmp-checkpoint-200-99999']);
});

test('a process killed in the middle of a checkpoint write never yields a latest checkpoint from it', async () => {
  const out = fresh();
  await saveCheckpoint(out, state(10), writeModel(10));
  const script = join(root, 'crash.mts');
  const mod = resolve('src/training/checkpoint.ts');
  writeFileSync(
    script,
    `import { saveCheckpoint } from ${JSON.stringify(mod)};
     import { writeFileSync } from 'node:fs';
     import { join } from 'node:path';
     await saveCheckpoint(${JSON.stringify(out)}, ${JSON.stringify(state(20))}, async (dir) => {
       writeFileSync(join(dir, 'model.safetensors'), 'half of the wei');
       process.kill(process.pid, 'SIGKILL');
     });`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
  assert.equal(r.signal, 'SIGKILL', r.stderr);
  assert.ok(readdirSync(out).some((d) => d.startsWith('.tmp-checkpoint-20-')), 'the crash left its temp dir');
  assert.equal((await latestCheckpoint(out))?.step, 10);
  // overwriting a checkpoint whose previous copy was half moved aside: the new one is complete
  await saveCheckpoint(out, state(10), writeModel(11));
  assert.equal(readFileSync(join(out, 'checkpoint-10', 'model.safetensors'), 'utf8'), 'weights 11');
  assert.equal((await removeStaleTempDirs(out)).length, 1);
  assert.deepEqual(readdirSync(out), ['checkpoint-10']);
});

test('pruneCheckpoints keeps the last K (and named ones), 0 keeps all', async () => {
  const out = fresh();
  for (const s of [1, 2, 3, 4, 5]) await saveCheckpoint(out, state(s), writeModel(s));
  assert.deepEqual(await pruneCheckpoints(out, 0), []);
  assert.deepEqual(await pruneCheckpoints(out, 2, ['checkpoint-2']), ['checkpoint-1', 'checkpoint-3']);
  assert.deepEqual((await listCheckpoints(out)).map((c) => c.step), [2, 4, 5]);
  assert.deepEqual(readdirSync(out).sort(), ['checkpoint-2', 'checkpoint-4', 'checkpoint-5']);
  assert.deepEqual(await pruneCheckpoints(out, 5), []);
  await assert.rejects(pruneCheckpoints(out, -1), /for keepLast/);
});

test('stop signals: first is a graceful request, second exits, uninstall removes the handlers', () => {
  const source = new EventEmitter();
  const calls: string[] = [];
  const exits: number[] = [];
  const s = installStopSignals((sig) => calls.push(sig), { source, exit: (c) => exits.push(c) });
  assert.equal(s.stopRequested, false);
  assert.equal(source.listenerCount('SIGINT'), 1);
  source.emit('SIGTERM');
  assert.equal(s.stopRequested, true);
  assert.equal(s.signal, 'SIGTERM');
  assert.deepEqual(calls, ['SIGTERM']);
  assert.deepEqual(exits, []);
  source.emit('SIGINT');
  assert.deepEqual(exits, [130]);
  assert.deepEqual(calls, ['SIGTERM'], 'onStop only once');
  s.uninstall();
  s.uninstall();
  assert.equal(source.listenerCount('SIGINT'), 0);
  assert.equal(source.listenerCount('SIGTERM'), 0);
});

test('stop signals on the real process: a SIGINT sent to this process is caught', async () => {
  const before = process.listenerCount('SIGINT');
  const s = installStopSignals(undefined, { exit: () => assert.fail('must not exit on the first signal') });
  process.kill(process.pid, 'SIGINT');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.stopRequested, true);
  s.uninstall();
  assert.equal(process.listenerCount('SIGINT'), before);
});
