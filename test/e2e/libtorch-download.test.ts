// libtorch obtained by Node itself (scripts/libtorch.mjs -> libtorch-download.mjs), the real code in child processes
// against a loopback mirror laid out like the PyTorch wheel index (/whl/cpu/torch/, a link carrying #sha256=, the
// wheel beside it, Range requests honoured). pip's configuration is removed from the children's environment
// (PIP_CONFIG_FILE=/dev/null, no PIP_* variables, so no wheel folder) and their Python has no torch to import, so that
// only the download can succeed: pip still runs as the last resort in the failing cases, and fails.
//
// The served wheel is this machine's torch 2.13.0+cpu wheel (a PIP_FIND_LINKS folder, else `pip download`): whole in
// the fresh-download case; for the other cases a small wheel made from its members: the headers and CMake files that
// inspection reads, real small libraries (libtorch.so, libc10.so, ...) and the first 8 MiB of libtorch_cpu.so (415 MiB
// whole; only its presence is checked, nothing here loads it), plus members outside lib/include/share that must not be
// unpacked. Without a wheel the small one is made from the libtorch recorded in libtorch.json; without both the
// tests are skipped and say so.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync, type Stats } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import yauzl from 'yauzl';
import { inspectLibtorchDir, type LibtorchRecord } from '../../scripts/libtorch.mjs';
import {
  WHEEL_NAME,
  findLocalWheel,
  membersFromLibtorchDir,
  readZipMembers,
  sha256Of,
  smallWheelPick,
  startMirror,
  startProxy,
  writeZip,
  type Mirror,
  type ZipMember,
} from './libtorch-mirror.ts';

const root = join(import.meta.dirname, '..', '..');
// The caches of these tests hold ~0.7 GB at a time (the real wheel unpacked, its download): in memory (/dev/shm)
// when it has room, since writing and deleting that on a disk mounted with `discard` took up to a minute here.
const roomy = (dir: string) => {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize > 4 * 2 ** 30;
  } catch {
    return false;
  }
};
const scratch = mkdtempSync(join(roomy('/dev/shm') ? '/dev/shm' : tmpdir(), 'sftkit-libtorch-dl-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

// The wheels to serve.
mkdirSync(join(scratch, 'pip'));
const realWheel = findLocalWheel(join(scratch, 'pip'));
let smallMembers: ZipMember[] | null = null;
if (realWheel) smallMembers = await readZipMembers(realWheel, smallWheelPick);
else {
  const recorded = join(root, 'libtorch.json');
  const dir = existsSync(recorded) ? (JSON.parse(readFileSync(recorded, 'utf8')) as { path?: string }).path : undefined;
  if (dir && existsSync(join(dir, 'lib'))) smallMembers = membersFromLibtorchDir(dir);
}
const smallWheel = join(scratch, WHEEL_NAME);
if (smallMembers) writeZip(smallWheel, smallMembers);
const skip = smallMembers
  ? false
  : 'no torch 2.13.0+cpu wheel (PIP_FIND_LINKS, pip download) and no libtorch recorded in libtorch.json to build one from';

let mirror: Mirror;
before(async () => {
  if (!skip) mirror = await startMirror(smallWheel);
});
after(async () => mirror?.close());

/** Serves `file` as the wheel from now on, no faults. */
function serve(file: string, faults: Partial<Mirror['state']> = {}): void {
  Object.assign(
    mirror.state,
    { file, size: statSync(file).size, sha256: sha256Of(file), indexSha256: null, wheelStatus: null, cutAfter: null, holdAfter: null, ignoreRange: false },
    faults,
  );
}

// Python for the children: nothing to import (so no Python torch), but the real pip for `-m pip`.
const python = join(scratch, 'python');
writeFileSync(python, '#!/bin/sh\nif [ "$1" = "-m" ]; then exec python3 "$@"; fi\nexit 1\n', { mode: 0o755 });
// No Python at all (pip fails at once), where pip's failure was shown already.
const noPython = join(scratch, 'no-python');
writeFileSync(noPython, '#!/bin/sh\nexit 1\n', { mode: 0o755 });

function childEnv(cache: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(PIP_|SFTKIT_)/.test(k) || k === 'LIBTORCH' || /^(https?|no|all)_proxy$/i.test(k)) continue;
    env[k] = v;
  }
  return {
    ...env,
    PIP_CONFIG_FILE: '/dev/null',
    PIP_NO_CACHE_DIR: '1',
    PYTHON: python,
    SFTKIT_CACHE_DIR: cache,
    SFTKIT_TORCH_INDEX_URL: `${mirror.base}/whl/cpu`,
    SFTKIT_TORCH_VARIANT: 'cpu',
    ...extra,
  };
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  record?: LibtorchRecord;
}

/**
 * Runs `node scripts/libtorch.mjs --resolve-only` (or `args`) in a child; `killWhen` is polled every 20 ms and the
 * child gets SIGKILL once it returns true.
 */
function runChild(env: Record<string, string>, { args = ['scripts/libtorch.mjs', '--resolve-only'], killWhen }: { args?: string[]; killWhen?: (out: { stdout: string }) => boolean } = {}): Promise<Run> {
  const t0 = Date.now();
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let timer: NodeJS.Timeout | undefined;
  if (killWhen) {
    timer = setInterval(() => {
      if (killWhen({ stdout })) {
        clearInterval(timer);
        child.kill('SIGKILL');
      }
    }, 20);
  }
  const limit = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((ok) => {
    child.on('close', (code, signal) => {
      clearInterval(timer);
      clearTimeout(limit);
      const last = stdout.trim().split('\n').pop() ?? '';
      const run: Run = { code, signal, stdout, stderr, ms: Date.now() - t0 };
      if (code === 0) run.record = JSON.parse(last) as LibtorchRecord;
      ok(run);
    });
  });
}

const fail = (r: Run) => `exit ${r.code} ${r.signal ?? ''}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`;
const wheelRequests = () => mirror.ours().filter((r) => r.path.endsWith('.whl'));
const cacheEntry = (cache: string) => join(cache, 'libtorch-2.13.0-cpu');
const leftovers = (cache: string) => (existsSync(cache) ? readdirSync(cache).filter((n) => n.startsWith('.')) : []);
const downloads = (cache: string) => (existsSync(join(cache, 'downloads')) ? readdirSync(join(cache, 'downloads')) : []);

/** Name -> { size, mode } of the members of a zip. */
function zipListing(file: string): Promise<Map<string, { size: number; mode: number }>> {
  return new Promise((ok, fail) => {
    yauzl.open(file, { lazyEntries: true, autoClose: true }, (err, zip) => {
      if (err || !zip) return fail(err);
      const out = new Map<string, { size: number; mode: number }>();
      zip.on('entry', (e: yauzl.Entry) => {
        if (!e.fileName.endsWith('/')) out.set(e.fileName, { size: e.uncompressedSize, mode: (e.externalFileAttributes >>> 16) & 0o777 });
        zip.readEntry();
      });
      zip.on('end', () => ok(out));
      zip.on('error', fail);
      zip.readEntry();
    });
  });
}

/**
 * The cache entry is complete and is exactly the wheel's torch/lib, torch/include and torch/share: every member there
 * with its size and mode, nothing else (no torch/__init__.py, no bin/), the marker present, inspection passing.
 */
async function assertUnpackedFrom(record: LibtorchRecord | undefined, wheel: string, cache: string): Promise<void> {
  assert.ok(record);
  const dir = record.path;
  assert.equal(dir, cacheEntry(cache));
  const found = inspectLibtorchDir(dir, 'download');
  assert.ok(found.ok, found.ok ? '' : found.reason);
  assert.equal(found.record.version, '2.13.0');
  assert.equal(found.record.cuda, false);
  assert.ok(existsSync(join(dir, '.sftkit-complete')));
  const members = await zipListing(wheel);
  const expected = [...members.keys()].filter((n) => /^torch\/(lib|include|share)\//.test(n)).sort();
  const got: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n !== '.sftkit-complete') got.push(`torch/${relative(dir, p)}`);
    }
  };
  walk(dir);
  assert.deepEqual(got.sort(), expected);
  for (const name of ['torch/lib/libc10.so', 'torch/lib/libtorch_cpu.so', 'torch/include/torch/headeronly/version.h']) {
    const st: Stats = statSync(join(dir, name.slice('torch/'.length)));
    assert.equal(st.size, members.get(name)?.size, name);
    assert.equal(st.mode & 0o777, members.get(name)?.mode, `${name} mode`);
  }
  assert.equal((statSync(join(dir, 'lib', 'libc10.so')).mode & 0o111) !== 0, true, 'libraries stay executable');
  assert.deepEqual(leftovers(cache), [], 'no staging or temp folders left');
  assert.deepEqual(downloads(cache), [], 'the download is deleted once unpacked');
}

const countFiles = (d: string): number =>
  readdirSync(d).reduce((n, name) => n + (statSync(join(d, name)).isDirectory() ? countFiles(join(d, name)) : 1), 0);
const freshCache = () => mkdtempSync(join(scratch, 'cache-'));
const sharedCache = join(scratch, 'cache-shared');
const served = () => (realWheel ? realWheel : smallWheel);

test('fresh download: the index link is followed, the wheel verified and unpacked (lib, include, share) and marked complete', { skip }, async () => {
  serve(served());
  const before = mirror.requests.length;
  const r = await runChild(childEnv(sharedCache));
  assert.equal(r.code, 0, fail(r));
  assert.equal(r.record?.source, 'download');
  await assertUnpackedFrom(r.record, served(), sharedCache);
  const reqs = mirror.requests.slice(before);
  assert.deepEqual(reqs.map((q) => [q.path, q.range, q.status]), [
    ['/whl/cpu/torch/', null, 200],
    [`/whl/cpu/${WHEEL_NAME}`, null, 200],
  ]);
  assert.match(r.stderr, /libtorch variant cpu \(SFTKIT_TORCH_VARIANT=cpu\); SFTKIT_TORCH_VARIANT=cpu\|cu126\|cu128\|cu130 chooses another/);
  // Not a TTY: plain progress lines, the last at 100%.
  const esc = WHEEL_NAME.replace(/[.+]/g, '\\$&');
  assert.match(r.stderr, new RegExp(`sftkit: downloaded ${esc}: [\\d.]+ MiB / [\\d.]+ MiB \\(100%\\), [\\d.]+ MiB/s\\n`));
  assert.match(r.stderr, new RegExp(`sftkit: unpacked ${esc}: (\\d+) / \\1 entries`));
  console.log(`fresh download of ${realWheel ? 'the real' : 'the small'} wheel (${(statSync(served()).size / 2 ** 20).toFixed(0)} MiB): ${r.ms} ms`);
});

test('cache hit: a second install takes the cache and no request reaches the mirror', { skip }, async () => {
  assert.ok(existsSync(join(cacheEntry(sharedCache), '.sftkit-complete')), 'needs the previous test');
  const before = mirror.requests.length;
  const r = await runChild(childEnv(sharedCache));
  assert.equal(r.code, 0, fail(r));
  assert.equal(r.record?.source, 'cache');
  assert.equal(r.record?.path, cacheEntry(sharedCache));
  assert.equal(mirror.requests.length, before);
  assert.match(r.stderr, /reusing cached libtorch 2\.13\.0/);
});

test('sha256 mismatch: an error naming both digests, no complete cache entry and no partial file left', { skip }, async () => {
  const wrong = 'f'.repeat(64);
  serve(smallWheel, { indexSha256: wrong });
  const actual = sha256Of(smallWheel);
  const cache = freshCache();
  const before = wheelRequests().length;
  const r = await runChild(childEnv(cache));
  assert.equal(r.code, 1, fail(r));
  assert.match(r.stderr, new RegExp(`sha256 mismatch for ${mirror.base}/whl/cpu/torch-2\\.13\\.0%2Bcpu-[^ ]+\\.whl: expected ${wrong} \\(from the index\\), the downloaded file has ${actual}`));
  // A fresh (not resumed) download that does not match is not tried again.
  assert.equal(wheelRequests().length - before, 1);
  assert.match(r.stderr, /- pip: .*pip download torch==2\.13\.0\+cpu --no-deps` failed/);
  assert.equal(existsSync(cacheEntry(cache)), false);
  assert.deepEqual(leftovers(cache), []);
  assert.deepEqual(downloads(cache), []);
});

test('HTTP 404 for the wheel, or for the index page, is a clear error naming the URL and the status', { skip }, async () => {
  serve(smallWheel, { wheelStatus: 404 });
  const cache = freshCache();
  const r = await runChild(childEnv(cache));
  assert.equal(r.code, 1, fail(r));
  assert.match(r.stderr, new RegExp(`- download: downloading ${mirror.base}/whl/cpu/torch-2\\.13\\.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64\\.whl: .* answered HTTP 404`));
  assert.doesNotMatch(r.stderr, /retrying in/);
  assert.equal(existsSync(cacheEntry(cache)), false);

  const noIndex = await runChild(childEnv(cache, { SFTKIT_TORCH_INDEX_URL: `${mirror.base}/elsewhere`, PYTHON: noPython }));
  assert.equal(noIndex.code, 1, fail(noIndex));
  assert.match(noIndex.stderr, new RegExp(`- download: fetching the index ${mirror.base}/elsewhere/torch/: ${mirror.base}/elsewhere/torch/ answered HTTP 404`));
  assert.match(noIndex.stderr, /Provide it in one of these ways/);
});

test('a connection cut mid-body is resumed with a Range request from where it stopped', { skip }, async () => {
  const N = 1 << 20;
  serve(smallWheel, { cutAfter: N });
  const cache = freshCache();
  const before = wheelRequests().length;
  const r = await runChild(childEnv(cache));
  assert.equal(r.code, 0, fail(r));
  assert.deepEqual(wheelRequests().slice(before).map((q) => [q.range, q.status]), [
    [null, 200],
    [`bytes=${N}-`, 206],
  ]);
  assert.match(r.stderr, /resuming/);
  await assertUnpackedFrom(r.record, smallWheel, cache);
});

test('a resumed partial file that does not match is discarded and downloaded afresh once', { skip }, async () => {
  serve(smallWheel);
  const cache = freshCache();
  mkdirSync(join(cache, 'downloads'), { recursive: true });
  writeFileSync(join(cache, 'downloads', `${WHEEL_NAME}.part`), Buffer.alloc(4096, 7)); // not the wheel's first bytes
  const before = wheelRequests().length;
  const r = await runChild(childEnv(cache));
  assert.equal(r.code, 0, fail(r));
  assert.deepEqual(wheelRequests().slice(before).map((q) => [q.range, q.status]), [
    ['bytes=4096-', 206],
    [null, 200],
  ]);
  assert.match(r.stderr, /the resumed download of .* does not match its sha256 .*; downloading it afresh/);
  await assertUnpackedFrom(r.record, smallWheel, cache);
});

test('resume edge cases: a complete partial file (416 to its Range) is used; a server ignoring Range (200) starts over', { skip }, async () => {
  serve(smallWheel);
  const cache = freshCache();
  const part = join(cache, 'downloads', `${WHEEL_NAME}.part`);
  mkdirSync(dirname(part), { recursive: true });
  writeFileSync(part, readFileSync(smallWheel)); // all bytes arrived, the rename did not happen
  let before = wheelRequests().length;
  const r = await runChild(childEnv(cache));
  assert.equal(r.code, 0, fail(r));
  assert.deepEqual(wheelRequests().slice(before).map((q) => [q.range, q.status]), [[`bytes=${mirror.state.size}-`, 416]]);
  await assertUnpackedFrom(r.record, smallWheel, cache);

  serve(smallWheel, { ignoreRange: true });
  const cache2 = freshCache();
  const part2 = join(cache2, 'downloads', `${WHEEL_NAME}.part`);
  mkdirSync(dirname(part2), { recursive: true });
  writeFileSync(part2, readFileSync(smallWheel).subarray(0, 1000));
  before = wheelRequests().length;
  const r2 = await runChild(childEnv(cache2));
  assert.equal(r2.code, 0, fail(r2));
  assert.deepEqual(wheelRequests().slice(before).map((q) => [q.range, q.status]), [['bytes=1000-', 200]]);
  assert.match(r2.stderr, /the server does not resume downloads \(HTTP 200 to a Range request\)/);
  await assertUnpackedFrom(r2.record, smallWheel, cache2);
});

test('killed mid-download (SIGKILL): nothing is taken as complete, the next install resumes the partial file', { skip }, async () => {
  const N = 1 << 20;
  serve(smallWheel, { holdAfter: N });
  const cache = freshCache();
  const part = join(cache, 'downloads', `${WHEEL_NAME}.part`);
  const killed = await runChild(childEnv(cache), { killWhen: () => existsSync(part) && statSync(part).size >= N });
  assert.equal(killed.signal, 'SIGKILL', fail(killed));
  assert.equal(statSync(part).size, N);
  assert.equal(existsSync(cacheEntry(cache)), false);

  mirror.state.holdAfter = null;
  const before = wheelRequests().length;
  const r = await runChild(childEnv(cache));
  assert.equal(r.code, 0, fail(r));
  assert.equal(r.record?.source, 'download');
  assert.deepEqual(wheelRequests().slice(before).map((q) => [q.range, q.status]), [[`bytes=${N}-`, 206]]);
  await assertUnpackedFrom(r.record, smallWheel, cache);
});

test('killed mid-unpack (SIGKILL): the staging folder is not taken as complete; the next install removes it and unpacks the verified download', { skip }, async () => {
  serve(smallWheel);
  const cache = freshCache();
  // The resolver in a child whose progress callback freezes it half-way through the entries, so that it is killed
  // with a half-filled staging folder.
  const script = [
    "import { writeSync } from 'node:fs';",
    `const { resolveLibtorch } = await import(${JSON.stringify(pathToFileURL(join(root, 'scripts', 'libtorch.mjs')).href)});`,
    'await resolveLibtorch({ log: (m) => process.stderr.write(`${m}\\n`), onProgress: (ev) => {',
    "  if (ev.phase === 'unpack' && ev.done >= ev.total / 2 && !ev.end) { writeSync(1, 'HOLD\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); }",
    '} });',
    "writeSync(1, 'FINISHED\\n');",
  ].join('\n');
  const killed = await runChild(childEnv(cache), { args: ['--input-type=module', '-e', script], killWhen: ({ stdout }) => stdout.includes('HOLD') });
  assert.equal(killed.signal, 'SIGKILL', fail(killed));
  assert.doesNotMatch(killed.stdout, /FINISHED/);
  const staging = leftovers(cache);
  assert.equal(staging.length, 1, `one staging folder: ${staging.join(', ')}`);
  assert.match(staging[0] ?? '', /^\.staging-\d+-[0-9a-f]+$/);
  const staged = countFiles(join(cache, staging[0] ?? ''));
  const kept = [...(await zipListing(smallWheel)).keys()].filter((n) => /^torch\/(lib|include|share)\//.test(n)).length;
  assert.ok(staged > 0 && staged < kept, `killed half-way: ${staged} of ${kept} files staged`);
  assert.equal(existsSync(cacheEntry(cache)), false);
  assert.deepEqual(downloads(cache), [WHEEL_NAME], 'the verified download stays for the next install');

  const before = mirror.ours().length;
  const r = await runChild(childEnv(cache));
  assert.equal(r.code, 0, fail(r));
  assert.equal(r.record?.source, 'download');
  assert.match(r.stderr, /removing .*\.staging-\d+-[0-9a-f]+ \(left by an interrupted install\)/);
  // Only the index was asked (for the digest): the download on disk was verified and used.
  assert.deepEqual(mirror.ours().slice(before).map((q) => q.path), ['/whl/cpu/torch/']);
  await assertUnpackedFrom(r.record, smallWheel, cache);
});

test('behind a proxy: HTTP_PROXY is used (EnvHttpProxyAgent), and NO_PROXY bypasses it', { skip }, async () => {
  serve(smallWheel);
  const proxy = await startProxy();
  try {
    const cache = freshCache();
    const r = await runChild(childEnv(cache, { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url }));
    assert.equal(r.code, 0, fail(r));
    const host = mirror.base.replace('http://', '');
    assert.ok(proxy.seen.length >= 1, 'the proxy saw the requests');
    for (const line of proxy.seen) assert.ok(line === `CONNECT ${host}` || line.startsWith(`GET ${mirror.base}/`), line);
    await assertUnpackedFrom(r.record, smallWheel, cache);

    const seen = proxy.seen.length;
    const direct = await runChild(childEnv(freshCache(), { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' }));
    assert.equal(direct.code, 0, fail(direct));
    assert.equal(proxy.seen.length, seen, 'NO_PROXY=127.0.0.1 goes around the proxy');
  } finally {
    await proxy.close();
  }
});

test('SFTKIT_LIBTORCH_URL: a libtorch zip (top folder libtorch/) is downloaded, checked against its #sha256= and unpacked', { skip }, async () => {
  assert.ok(smallMembers);
  const zip = join(scratch, 'libtorch-shared-with-deps-2.13.0+cpu.zip');
  writeZip(zip, smallMembers.map((m) => ({ ...m, name: m.name.replace(/^torch\//, 'libtorch/') })));
  mirror.files.set('/libtorch/cpu/libtorch-shared-with-deps-2.13.0+cpu.zip', zip);
  const url = `${mirror.base}/libtorch/cpu/libtorch-shared-with-deps-2.13.0%2Bcpu.zip`;
  const cache = freshCache();
  const r = await runChild(childEnv(cache, { SFTKIT_LIBTORCH_URL: `${url}#sha256=${sha256Of(zip)}` }));
  assert.equal(r.code, 0, fail(r));
  assert.equal(r.record?.source, 'download');
  assert.equal(r.record?.path, cacheEntry(cache));
  const found = inspectLibtorchDir(cacheEntry(cache), 'download');
  assert.ok(found.ok && found.record.version === '2.13.0');
  assert.equal(existsSync(join(cacheEntry(cache), '__init__.py')), false);
  assert.deepEqual(leftovers(cache), []);
  assert.deepEqual(downloads(cache), []);

  const wrong = await runChild(childEnv(freshCache(), { SFTKIT_LIBTORCH_URL: `${url}#sha256=${'0'.repeat(64)}`, PYTHON: noPython }));
  assert.equal(wrong.code, 1, fail(wrong));
  assert.match(wrong.stderr, new RegExp(`sha256 mismatch for ${url.replace(/[.+]/g, '\\$&')}: expected 0{64}`));
});

test('a mirror that refuses connections falls through to pip at once (no retries) and the error lists every way', { skip }, async () => {
  const port = await new Promise<number>((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => ok(p));
    });
  });
  const cache = freshCache();
  const r = await runChild(childEnv(cache, { SFTKIT_TORCH_INDEX_URL: `http://127.0.0.1:${port}/whl/cpu`, PYTHON: noPython }));
  assert.equal(r.code, 1, fail(r));
  assert.match(r.stderr, /- pip: .*pip download torch==2\.13\.0\+cpu --no-deps` failed/);
  assert.match(r.stderr, new RegExp(`- download: fetching the index http://127\\.0\\.0\\.1:${port}/whl/cpu/torch/: cannot reach the host: .*ECONNREFUSED`));
  assert.doesNotMatch(r.stderr, /retrying in/);
  for (const way of [/1\. LIBTORCH=/, /2\. SFTKIT_LIBTORCH_USE_PYTORCH=1/, /SFTKIT_TORCH_INDEX_URL/, /SFTKIT_LIBTORCH_URL/, /HTTPS_PROXY/, /4\. make `python3 -m pip download/]) {
    assert.match(r.stderr, way);
  }
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});
