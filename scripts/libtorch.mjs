// Finds or obtains libtorch for sftkit's native addon and records the choice in libtorch.json.
// Order (first that works wins):
//   1. LIBTORCH=<dir>                         an unpacked libtorch (CPU or CUDA build)
//   2. SFTKIT_LIBTORCH_USE_PYTORCH=1, or an importable Python torch of the pinned major.minor
//   3. the pinned torch wheel via `python3 -m pip download`, unpacked (lib, include, share only) into
//      ~/.cache/sftkit/libtorch-<version>-<variant> and reused next time.
// SFTKIT_SKIP_LIBTORCH_VERSION_CHECK=1 accepts any major.minor (for experts).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PINNED_TORCH = { version: '2.13.0', variant: 'cpu' };
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const RECORD_PATH = join(PACKAGE_ROOT, 'libtorch.json');

export class LibtorchError extends Error {
  constructor(reason) {
    super(helpText(reason));
    this.name = 'LibtorchError';
    this.code = 'SFTKIT_LIBTORCH';
  }
}

function helpText(reason) {
  const [major, minor] = PINNED_TORCH.version.split('.');
  return [
    `sftkit: could not find a usable libtorch: ${reason}`,
    '',
    `sftkit needs libtorch ${major}.${minor}.x. Provide it in one of these ways:`,
    '  1. LIBTORCH=/path/to/libtorch npm install',
    '       an unpacked libtorch directory containing lib/, include/ and share/cmake/Torch (CPU or CUDA build)',
    '  2. SFTKIT_LIBTORCH_USE_PYTORCH=1 npm install',
    `       use the libtorch inside an installed Python torch ${major}.${minor} (python3 -c "import torch")`,
    `  3. make \`python3 -m pip download torch==${PINNED_TORCH.version}+${PINNED_TORCH.variant} --no-deps\` work`,
    '       (pip configured with an index that has the wheel; extra pip arguments via SFTKIT_TORCH_PIP_ARGS);',
    `       sftkit unpacks it once into ${cacheRoot()}`,
    'Set SFTKIT_SKIP_LIBTORCH_VERSION_CHECK=1 to accept another major.minor version at your own risk.',
  ].join('\n');
}

export function cacheRoot() {
  if (process.env.SFTKIT_CACHE_DIR) return resolve(process.env.SFTKIT_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME ? resolve(process.env.XDG_CACHE_HOME) : join(homedir(), '.cache');
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

function pipDownloadAndUnpack(log) {
  const spec = `torch==${PINNED_TORCH.version}+${PINNED_TORCH.variant}`;
  const target = join(cacheRoot(), `libtorch-${PINNED_TORCH.version}-${PINNED_TORCH.variant}`);
  const marker = join(target, '.sftkit-complete');
  if (existsSync(marker)) return { dir: target, cached: true };
  mkdirSync(cacheRoot(), { recursive: true });
  const work = mkdtempSync(join(cacheRoot(), '.download-'));
  try {
    log(`sftkit: downloading ${spec} with pip (once; unpacked into ${target})`);
    const extra = (process.env.SFTKIT_TORCH_PIP_ARGS || '').split(/\s+/).filter(Boolean);
    try {
      execFileSync(
        process.env.PYTHON || 'python3',
        ['-m', 'pip', 'download', spec, '--no-deps', '--only-binary=:all:', '-d', work, ...extra],
        { stdio: ['ignore', 'inherit', 'inherit'], timeout: 1_800_000 },
      );
    } catch (e) {
      throw new LibtorchError(`\`python3 -m pip download ${spec} --no-deps\` failed (${e.message.split('\n')[0]})`);
    }
    const wheel = readdirSync(work).find((f) => f.startsWith('torch-') && f.endsWith('.whl'));
    if (!wheel) throw new LibtorchError(`pip download of ${spec} produced no wheel`);
    const staging = join(work, 'unpacked');
    // Unzip with Python's zipfile: python3 is there (pip just ran) and unzip may not be.
    const unpack = [
      'import sys, zipfile, os',
      'wheel, out = sys.argv[1], sys.argv[2]',
      'keep = ("torch/lib/", "torch/include/", "torch/share/")',
      'with zipfile.ZipFile(wheel) as z:',
      '    for info in z.infolist():',
      '        if info.filename.startswith(keep) and not info.is_dir():',
      '            rel = info.filename[len("torch/"):]',
      '            dest = os.path.join(out, rel)',
      '            os.makedirs(os.path.dirname(dest), exist_ok=True)',
      '            with z.open(info) as src, open(dest, "wb") as dst:',
      '                while True:',
      '                    chunk = src.read(1 << 20)',
      '                    if not chunk: break',
      '                    dst.write(chunk)',
      '            mode = (info.external_attr >> 16) & 0o777',
      '            if mode: os.chmod(dest, mode)',
    ].join('\n');
    execFileSync(process.env.PYTHON || 'python3', ['-c', unpack, join(work, wheel), staging], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const check = inspectLibtorchDir(staging, 'wheel');
    if (!check.ok) throw new LibtorchError(`the wheel ${wheel} is not a complete libtorch: ${check.reason}`);
    writeFileSync(join(staging, '.sftkit-complete'), `${spec}\n`);
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
    return { dir: target, cached: false };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Resolves libtorch by the documented order; throws LibtorchError with the three ways when nothing works. */
export function resolveLibtorch({ log = (m) => console.error(m) } = {}) {
  const env = process.env;
  if (env.LIBTORCH) {
    return checkedOrThrow(inspectLibtorchDir(env.LIBTORCH, 'env'), `LIBTORCH=${env.LIBTORCH}`);
  }
  const forcePython = env.SFTKIT_LIBTORCH_USE_PYTORCH === '1';
  const pyDir = pythonTorchDir();
  if (forcePython) {
    if (!pyDir) throw new LibtorchError('SFTKIT_LIBTORCH_USE_PYTORCH=1 but `python3 -c "import torch"` fails');
    return checkedOrThrow(inspectLibtorchDir(pyDir, 'python'), `the Python torch at ${pyDir}`);
  }
  if (pyDir) {
    const found = inspectLibtorchDir(pyDir, 'python');
    if (found.ok && versionMatches(found.record.version)) return found.record;
    log(`sftkit: ignoring the Python torch at ${pyDir} (${found.ok ? `version ${found.record.version}` : found.reason})`);
  }
  const { dir, cached } = pipDownloadAndUnpack(log);
  const record = checkedOrThrow(inspectLibtorchDir(dir, 'wheel'), `the unpacked wheel at ${dir}`);
  if (cached) log(`sftkit: reusing cached libtorch ${record.version} at ${dir}`);
  return record;
}

export function writeRecord(record) {
  writeFileSync(RECORD_PATH, `${JSON.stringify({ ...record, recordedAt: new Date().toISOString() }, null, 2)}\n`);
}
