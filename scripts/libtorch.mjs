// Finds or obtains libtorch for sftkit's native addon and records the choice in libtorch.json.
// Order (first that works wins):
//   1. LIBTORCH=<dir>                         an unpacked libtorch (CPU or CUDA build)
//   2. SFTKIT_LIBTORCH_USE_PYTORCH=1, or an importable Python torch of the pinned major.minor
//   3. the sftkit cache: <cache>/libtorch-<version>-<variant> with its completion marker
//   4. a download done by Node (libtorch-download.mjs): the pinned wheel from the PyTorch wheel index (macOS: PyPI),
//      or for CUDA variants the libtorch archive; lib, include and share unpacked into the cache
//   5. `python3 -m pip download` of the pinned wheel (last resort: a configured index or wheel folder), unpacked alike
// The variant (cpu, cu126, cu128, cu130) is SFTKIT_TORCH_VARIANT, by default chosen from nvidia-smi
// (libtorch-source.mjs). SFTKIT_SKIP_LIBTORCH_VERSION_CHECK=1 accepts any major.minor (for experts).
// `node scripts/libtorch.mjs --resolve-only` resolves and prints the record as JSON without writing libtorch.json.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CACHE_MARKER, SourceError, TORCH_VARIANTS, cacheDirName, chooseVariant, pipDownloadArgs, torchSource } from './libtorch-source.mjs';

/** The pinned torch version; `variant` is the one packed prebuilds are built against (downloads choose their own). */
export const PINNED_TORCH = { version: '2.13.0', variant: 'cpu' };
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const RECORD_PATH = join(PACKAGE_ROOT, 'libtorch.json');

/** Nothing usable was found; the message lists why each tried source failed and every way to provide libtorch. */
export class LibtorchError extends Error {
  /** @param {string | string[]} reasons */
  constructor(reasons) {
    super(helpText(reasons));
    this.name = 'LibtorchError';
    this.code = 'SFTKIT_LIBTORCH';
  }
}

function helpText(reasons) {
  const [major, minor] = PINNED_TORCH.version.split('.');
  const list = Array.isArray(reasons) ? reasons : [reasons];
  const head =
    list.length === 1
      ? [`sftkit: could not find a usable libtorch: ${list[0]}`]
      : ['sftkit: could not find a usable libtorch. Tried:', ...list.map((r) => `  - ${r}`)];
  return [
    ...head,
    '',
    `sftkit needs libtorch ${major}.${minor}.x. Provide it in one of these ways:`,
    '  1. LIBTORCH=/path/to/libtorch npm install',
    '       an unpacked libtorch directory containing lib/, include/ and share/cmake/Torch (CPU or CUDA build)',
    '  2. SFTKIT_LIBTORCH_USE_PYTORCH=1 npm install',
    `       use the libtorch inside an installed Python torch ${major}.${minor} (python3 -c "import torch")`,
    '  3. let sftkit download it (no Python needed): it needs HTTPS access to download.pytorch.org (macOS: pypi.org);',
    '       behind a proxy set HTTPS_PROXY (NO_PROXY is honoured); from a mirror set SFTKIT_TORCH_INDEX_URL to a PEP 503',
    '       index root that holds torch/ (default https://download.pytorch.org/whl/<variant>), or SFTKIT_LIBTORCH_URL to a',
    '       libtorch zip (append #sha256=<hex> to verify it); SFTKIT_TORCH_VARIANT=cpu|cu126|cu128|cu130 picks the build',
    `  4. make \`python3 -m pip download torch==${PINNED_TORCH.version}+${PINNED_TORCH.variant} --no-deps\` work`,
    '       (pip configured with an index or wheel folder that has the wheel; extra pip arguments via SFTKIT_TORCH_PIP_ARGS)',
    `Downloads are unpacked once into ${cacheRoot()} (SFTKIT_CACHE_DIR moves it) and reused.`,
    'Set SFTKIT_SKIP_LIBTORCH_VERSION_CHECK=1 to accept another major.minor version at your own risk.',
  ].join('\n');
}

/**
 * $SFTKIT_CACHE_DIR, else $XDG_CACHE_HOME/sftkit, else ~/.cache/sftkit: the same rule as src/shared/cache-root.ts
 * (this install-time script cannot import src; test/unit/shared/cache-root.test.ts checks the two agree).
 */
export function cacheRoot(env = process.env) {
  if (env.SFTKIT_CACHE_DIR) return resolve(env.SFTKIT_CACHE_DIR);
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'sftkit');
}

/** Reads TORCH_VERSION_{MAJOR,MINOR,PATCH} from the headers; null when they are missing. */
export function readTorchVersion(includeDir) {
  // torch >= 2.9 keeps the numbers in torch/headeronly/version.h; older ones in the C++ API's version.h.
  const candidates = [
    join(includeDir, 'torch', 'headeronly', 'version.h'),
    join(includeDir, 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'),
  ];
  const header = candidates.find((p) => existsSync(p) && /TORCH_VERSION_MAJOR\s+\d/.test(readFileSync(p, 'utf8')));
  if (!header) return null;
  const text = readFileSync(header, 'utf8');
  const part = (name) => {
    const m = new RegExp(`#define\\s+TORCH_VERSION_${name}\\s+(\\d+)`).exec(text);
    return m ? Number(m[1]) : null;
  };
  const major = part('MAJOR');
  const minor = part('MINOR');
  const patch = part('PATCH');
  if (major === null || minor === null || patch === null) return null;
  return `${major}.${minor}.${patch}`;
}

/** Checks a candidate directory laid out like libtorch; returns the record or a reason it is not usable. */
export function inspectLibtorchDir(dir, source) {
  const root = resolve(dir);
  if (!existsSync(root)) return { ok: false, reason: `${root} does not exist` };
  const lib = join(root, 'lib');
  const include = join(root, 'include');
  const cmake = join(root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
  for (const [what, p] of [['lib/', lib], ['include/', include], ['share/cmake/Torch/TorchConfig.cmake', cmake]]) {
    if (!existsSync(p)) return { ok: false, reason: `${root} has no ${what}` };
  }
  const libs = readdirSync(lib);
  for (const needed of ['libtorch.so', 'libtorch_cpu.so', 'libc10.so']) {
    if (!libs.includes(needed)) return { ok: false, reason: `${lib} has no ${needed}` };
  }
  const version = readTorchVersion(include);
  if (!version) return { ok: false, reason: `${include} has no torch/version.h with TORCH_VERSION_*` };
  const cuda = libs.includes('libtorch_cuda.so') || libs.includes('libc10_cuda.so');
  return {
    ok: true,
    record: {
      source,
      path: root,
      lib,
      include,
      cmakePrefix: join(root, 'share', 'cmake'),
      version,
      variant: cuda ? 'cuda' : 'cpu',
      cuda,
    },
  };
}

function versionMatches(version) {
  if (process.env.SFTKIT_SKIP_LIBTORCH_VERSION_CHECK === '1') return true;
  const [a, b] = version.split('.');
  const [x, y] = PINNED_TORCH.version.split('.');
  return a === x && b === y;
}

function checkedOrThrow(found, what) {
  if (!found.ok) throw new LibtorchError(`${what}: ${found.reason}`);
  if (!versionMatches(found.record.version)) {
    throw new LibtorchError(
      `${what} is torch ${found.record.version}, sftkit is built against ${PINNED_TORCH.version.split('.').slice(0, 2).join('.')}.x`,
    );
  }
  return found.record;
}

function pythonTorchDir() {
  try {
    const out = execFileSync(
      process.env.PYTHON || 'python3',
      ['-c', 'import os, torch; print(os.path.dirname(torch.__file__))'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 },
    );
    return out.trim().split('\n').pop() || null;
  } catch {
    return null;
  }
}

function nvidiaSmi() {
  try {
    return execFileSync('nvidia-smi', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 });
  } catch {
    return null;
  }
}

function glibcVersion() {
  if (process.platform !== 'linux') return null;
  try {
    return process.report?.getReport().header.glibcVersionRuntime ?? null;
  } catch {
    return null;
  }
}

/** The download code (undici, yauzl), loaded only when a download or unpack may happen. */
const downloadModule = () => import('./libtorch-download.mjs');

/** The complete cache entry at `dir` as a record, or null (a missing marker or a failed inspection). */
function cachedEntry(dir, log) {
  if (!existsSync(join(dir, CACHE_MARKER))) return null;
  const found = inspectLibtorchDir(dir, 'cache');
  if (found.ok && versionMatches(found.record.version)) return found.record;
  log(`sftkit: ignoring the cached ${dir} (${found.ok ? `version ${found.record.version}` : found.reason}); obtaining it again`);
  rmSync(join(dir, CACHE_MARKER), { force: true });
  return null;
}

/** Runs pip, its output shown on stderr; resolves with the last lines of its output, rejects when it fails. */
function runPip(python, args) {
  return new Promise((ok, fail) => {
    // pip's stdout goes to stderr too: stdout is the record's (--resolve-only) and npm shows stderr.
    const child = spawn(python, ['-m', 'pip', 'download', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const take = (d) => {
      process.stderr.write(d);
      tail = (tail + d.toString()).slice(-4000);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGTERM'), 1_800_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(new Error(`${python} could not be run (${e.code ?? e.message})`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return ok(tail);
      const last = tail.trim().split('\n').filter((l) => /error/i.test(l)).pop() ?? tail.trim().split('\n').pop() ?? '';
      fail(new Error(`exit ${code ?? signal}${last ? `: ${last.trim()}` : ''}`));
    });
  });
}

/** The last resort: `python3 -m pip download` of the pinned wheel, unpacked into `target` like a download. */
async function pipDownloadAndUnpack({ target, variant, log, onProgress }) {
  const { installZip, tempDirIn } = await downloadModule();
  const root = cacheRoot();
  const work = tempDirIn(root, 'tmp');
  try {
    const pip = pipDownloadArgs({ platform: process.platform, arch: process.arch, variant, version: PINNED_TORCH.version, dest: work, env: process.env });
    if (!pip) throw new Error(`not used for ${variant}: a CUDA wheel lacks the CUDA runtime libraries (the libtorch archive bundles them)`);
    const python = process.env.PYTHON || 'python3';
    log(`sftkit: trying \`${python} -m pip download ${pip.spec} --no-deps\` (once; unpacked into ${target})`);
    try {
      await runPip(python, pip.args);
    } catch (e) {
      throw new Error(`\`${python} -m pip download ${pip.spec} --no-deps\` failed (${e.message})`);
    }
    const wheel = readdirSync(work).find((f) => f.startsWith('torch-') && f.endsWith('.whl'));
    if (!wheel) throw new Error(`pip download of ${pip.spec} produced no wheel`);
    await installZip(join(work, wheel), target, {
      cacheRoot: root,
      prefix: 'torch/',
      marker: { spec: pip.spec, file: wheel, source: 'pip', at: new Date().toISOString() },
      inspect: (dir) => inspectLibtorchDir(dir, 'pip'),
      onProgress,
      label: wheel,
      log,
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Resolves libtorch by the documented order; throws LibtorchError listing why each tried source failed and every way
 * to provide libtorch when nothing works. `onProgress` receives the download and unpack progress events
 * (libtorch-download.mjs's progressPrinter by default).
 */
export async function resolveLibtorch({ log = (m) => console.error(m), onProgress } = {}) {
  const env = process.env;
  if (env.LIBTORCH) {
    return checkedOrThrow(inspectLibtorchDir(env.LIBTORCH, 'env'), `LIBTORCH=${env.LIBTORCH}`);
  }
  const tried = [];
  const forcePython = env.SFTKIT_LIBTORCH_USE_PYTORCH === '1';
  const pyDir = pythonTorchDir();
  if (forcePython) {
    if (!pyDir) throw new LibtorchError('SFTKIT_LIBTORCH_USE_PYTORCH=1 but `python3 -c "import torch"` fails');
    return checkedOrThrow(inspectLibtorchDir(pyDir, 'python'), `the Python torch at ${pyDir}`);
  }
  if (pyDir) {
    const found = inspectLibtorchDir(pyDir, 'python');
    if (found.ok && versionMatches(found.record.version)) return found.record;
    const why = found.ok ? `version ${found.record.version}` : found.reason;
    log(`sftkit: ignoring the Python torch at ${pyDir} (${why})`);
    tried.push(`Python torch at ${pyDir}: ${why}`);
  } else {
    tried.push(`Python torch: \`${env.PYTHON || 'python3'} -c "import torch"\` fails`);
  }

  const platform = process.platform;
  const arch = process.arch;
  const version = PINNED_TORCH.version;
  let chosen;
  try {
    chosen = chooseVariant({ env, platform, arch, nvidiaSmi });
  } catch (e) {
    if (e instanceof SourceError) throw new LibtorchError(e.message);
    throw e;
  }
  const { variant } = chosen;
  log(`sftkit: libtorch variant ${variant} (${chosen.why}); SFTKIT_TORCH_VARIANT=${TORCH_VARIANTS.join('|')} chooses another`);
  const root = cacheRoot();
  const target = join(root, cacheDirName(version, variant));
  const cached = cachedEntry(target, log);
  if (cached) {
    log(`sftkit: reusing cached libtorch ${cached.version} at ${target}`);
    return cached;
  }
  tried.push(`the sftkit cache: no complete ${target}`);

  let source = null;
  try {
    source = torchSource({ platform, arch, variant, version, env });
  } catch (e) {
    if (!(e instanceof SourceError)) throw e;
    tried.push(`download: ${e.message}`);
  }
  const dl = await downloadModule();
  onProgress ??= dl.progressPrinter();
  dl.cleanStale(root, log);
  if (source) {
    try {
      await dl.fetchLibtorch(source, target, {
        cacheRoot: root,
        inspect: (dir) => inspectLibtorchDir(dir, 'download'),
        log,
        onProgress,
        env,
        glibc: glibcVersion(),
      });
      return checkedOrThrow(inspectLibtorchDir(target, 'download'), `the downloaded libtorch at ${target}`);
    } catch (e) {
      if (e instanceof LibtorchError) throw e;
      tried.push(`download: ${e.message}`);
      log(`sftkit: the download failed (${e.message})`);
    }
  }

  try {
    await pipDownloadAndUnpack({ target, variant, log, onProgress });
    return checkedOrThrow(inspectLibtorchDir(target, 'pip'), `the pip-downloaded libtorch at ${target}`);
  } catch (e) {
    if (e instanceof LibtorchError) throw e;
    tried.push(`pip: ${e.message}`);
  }
  throw new LibtorchError(tried);
}

export function writeRecord(record) {
  writeFileSync(RECORD_PATH, `${JSON.stringify({ ...record, recordedAt: new Date().toISOString() }, null, 2)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href && process.argv.includes('--resolve-only')) {
  resolveLibtorch().then(
    (record) => console.log(JSON.stringify(record)),
    (e) => {
      console.error(e instanceof LibtorchError ? `\n${e.message}\n` : (e?.stack ?? String(e)));
      process.exit(1);
    },
  );
}
