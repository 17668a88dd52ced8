// The run directory's lock (OUT/sftkit.lock): taken atomically with pid, host and start time; a second run is refused
// naming the holder; a lock of a dead process on this host is taken over with a note; another host's lock is never
// taken over; release removes only this holder's lock; a launcher's lock is used by its worker, not refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LOCK_FILE, acquireRunLock, describeHolder, readRunLock } from '../../../src/training/lock.ts';

const scratch = mkdtempSync(join(tmpdir(), 'sftkit-lock-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => mkdtempSync(join(scratch, `out-${n++}-`));
const deadPid = spawnSync(process.execPath, ['-e', '']).pid as number;

test('acquire writes pid, host and start time; release removes the lock; a second acquire then works', async () => {
  const dir = freshDir();
  const lock = await acquireRunLock(dir, { command: 'train', log: () => assert.fail('no note expected') });
  assert.equal(lock.owned, true);
  const onDisk = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8'));
  assert.equal(onDisk.pid, process.pid);
  assert.equal(onDisk.host, hostname());
  assert.equal(onDisk.command, 'train');
  assert.ok(Math.abs(Date.parse(onDisk.startedAt) - Date.now()) < 60_000, onDisk.startedAt);
  assert.deepEqual(readRunLock(dir), lock.holder);
  lock.release();
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
  lock.release(); // idempotent
  const again = await acquireRunLock(dir, { command: 'dpo' });
  assert.equal(readRunLock(dir)?.command, 'dpo');
  again.release();
});

test('a second run on a held directory is refused with a message naming the holder', async () => {
  const dir = freshDir();
  const first = await acquireRunLock(dir, { command: 'train' });
  await assert.rejects(acquireRunLock(dir, { command: 'train', inheritedToken: '' }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'SFTKIT_BAD_ARGUMENT');
    assert.ok(e.message.includes(`pid ${process.pid} on host ${hostname()} since ${first.holder.startedAt}`), e.message);
    assert.match(e.message, /in use by another run.*another --out/);
    return true;
  });
  // the refused attempt left the holder's lock alone
  assert.deepEqual(readRunLock(dir), first.holder);
  first.release();
});

test('a stale lock (dead pid on this host) is taken over with a note', async () => {
  const dir = freshDir();
  const stale = { pid: deadPid, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z', command: 'train', token: 'old' };
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify(stale));
  const notes: string[] = [];
  const lock = await acquireRunLock(dir, { command: 'train', log: (m) => notes.push(m) });
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, new RegExp(`taking over the lock .* from pid ${deadPid} on host .* since 2026-01-01T00:00:00.000Z .*no longer running`));
  assert.equal(readRunLock(dir)?.pid, process.pid);
  assert.deepEqual(readdirSync(dir), [LOCK_FILE], 'nothing left aside');
  lock.release();
});

test("another host's lock is never taken over (its pid cannot be checked here)", async () => {
  const dir = freshDir();
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid, host: 'elsewhere', startedAt: '2026-01-01T00:00:00.000Z', command: 'train', token: 'x' }));
  await assert.rejects(acquireRunLock(dir, { command: 'train', inheritedToken: '' }), /pid \d+ on host elsewhere .*another host: if that run is gone, remove .*sftkit\.lock/);
});

test('an unreadable lock is refused, not taken over', async () => {
  const dir = freshDir();
  writeFileSync(join(dir, LOCK_FILE), '{"pid":');
  await assert.rejects(acquireRunLock(dir, { command: 'train', inheritedToken: '' }), /cannot be read; if no run uses this directory, remove/);
});

test("release leaves a lock that is not this holder's alone", async () => {
  const dir = freshDir();
  const lock = await acquireRunLock(dir, { command: 'train' });
  const other = JSON.stringify({ ...lock.holder, token: 'someone-else' });
  writeFileSync(join(dir, LOCK_FILE), other);
  lock.release();
  assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8'), other);
});

test("a launcher's lock (token in the environment) is used by its worker and left for the launcher to release", async () => {
  const dir = freshDir();
  const launcher = await acquireRunLock(dir, { command: 'train' });
  const worker = await acquireRunLock(dir, { command: 'train', inheritedToken: launcher.holder.token });
  assert.equal(worker.owned, false);
  assert.deepEqual(worker.holder, launcher.holder);
  worker.release();
  assert.ok(existsSync(join(dir, LOCK_FILE)));
  launcher.release();
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
});

test('many concurrent acquires: exactly one wins, the others name it', async () => {
  const dir = freshDir();
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => acquireRunLock(dir, { command: 'train', pid: process.pid, inheritedToken: '', log: () => {} }).then((l) => ({ l, i }))));
  const won = results.filter((r) => r.status === 'fulfilled');
  assert.equal(won.length, 1);
  for (const r of results) if (r.status === 'rejected') assert.match(String(r.reason), /in use by another run: pid/);
  (won[0] as PromiseFulfilledResult<{ l: { release(): void } }>).value.l.release();
});

test('a process that exits without releasing (process.exit) leaves no lock behind', () => {
  const dir = freshDir();
  const script = `import { acquireRunLock } from ${JSON.stringify(join(import.meta.dirname, '..', '..', '..', 'src', 'training', 'lock.ts'))};
await acquireRunLock(${JSON.stringify(dir)}, { command: 'train' });
process.exit(130);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 130, r.stderr);
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
});

test('describeHolder', () => {
  assert.equal(describeHolder({ pid: 7, host: 'h', startedAt: 't', command: 'dpo', token: 'x' }), 'pid 7 on host h since t (sftkit dpo)');
});
