// `npm run build:cuda-check`: proves that the addon builds and links against a CUDA libtorch. It takes the CUDA
// torch wheel (torch==2.14.1, a cu130 build) and the CUDA 13 runtime libraries it depends on from the configured pip
// index, unpacks them once into ~/.cache/sftkit/cuda-check, assembles a CUDA toolkit root from the local nvcc's
// toolkit plus those libraries, and builds into build-cuda/. No GPU is needed (nor used): the check ends with the
// link and a look at what the addon links: the CUDA libraries, and ProcessGroupNCCL (nccl.h comes from the
// nvidia-nccl-cu13 wheel, fetched beside the others). `--fetch-only` stops after the wheels. Not part of CI (about
// 1.7 GB of wheels).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { assembleToolkit } from './cuda-toolkit.mjs';
import { PACKAGE_ROOT, cacheRoot, inspectLibtorchDir } from './libtorch.mjs';

const require = createRequire(import.meta.url);
const TORCH = process.env.SFTKIT_CUDA_TORCH ?? 'torch==2.14.1';
const CUDA_LIBS = process.env.SFTKIT_CUDA_LIBS ?? 'cuda-toolkit[cublas,cudart,cufft,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3';
// nccl.h for ProcessGroupNCCL's header (CMakeLists.txt finds it beside torch/: site/nvidia/nccl/include).
const NCCL = process.env.SFTKIT_CUDA_NCCL ?? 'nvidia-nccl-cu13==2.30.7';
const root = join(cacheRoot(), 'cuda-check');
const site = join(root, 'site');
const python = process.env.PYTHON || 'python3';

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', ...opts });
}

function findNvcc() {
  const candidates = [process.env.CUDACXX, process.env.CUDA_HOME && join(process.env.CUDA_HOME, 'bin', 'nvcc'), '/usr/local/cuda/bin/nvcc'];
  for (const c of candidates) if (c && existsSync(c)) return realpathSync(c);
  try {
    return realpathSync(sh('sh', ['-c', 'command -v nvcc']).trim());
  } catch {
    throw new Error('build:cuda-check needs nvcc (CUDA 13 toolkit): set CUDA_HOME or put nvcc on PATH');
  }
}

// 1. Wheels -> site/{torch,nvidia} (kept: torch's RPATHs point from torch/lib to ../../nvidia/...).
const UNPACK = [
  'import sys, zipfile, os, glob',
  'dl, out = sys.argv[1], sys.argv[2]',
  'for w in glob.glob(os.path.join(dl, "*.whl")):',
  '    z = zipfile.ZipFile(w)',
  '    for i in z.infolist():',
  '        n = i.filename',
  '        keep = n.startswith(("torch/lib/", "torch/include/", "torch/share/")) or (n.startswith("nvidia/") and ("/lib/" in n or "/include/" in n))',
  '        if not keep or i.is_dir(): continue',
  '        z.extract(i, out)',
  '        m = (i.external_attr >> 16) & 0o777',
  '        if m: os.chmod(os.path.join(out, n), m)',
].join('\n');
function fetchWheels(downloads) {
  const dl = join(root, 'wheels');
  rmSync(dl, { recursive: true, force: true });
  mkdirSync(dl, { recursive: true });
  for (const [spec, ...flags] of downloads) {
    console.error(`cuda-check: pip download ${spec} (once)`);
    sh(python, ['-m', 'pip', 'download', spec, ...flags, '-d', dl], { stdio: 'inherit' });
  }
  mkdirSync(site, { recursive: true });
  sh(python, ['-c', UNPACK, dl, site], { stdio: 'inherit' });
  rmSync(dl, { recursive: true, force: true });
}
const ncclHeader = join(site, 'nvidia', 'nccl', 'include', 'nccl.h');
if (!existsSync(join(site, '.complete'))) {
  rmSync(site, { recursive: true, force: true });
  fetchWheels([[TORCH, '--no-deps'], [CUDA_LIBS], [NCCL, '--no-deps']]);
  writeFileSync(join(site, '.complete'), `${TORCH}\n${CUDA_LIBS}\n${NCCL}\n`);
} else if (!existsSync(ncclHeader)) {
  // A cache from before NCCL was wired: add the NCCL wheel alone.
  fetchWheels([[NCCL, '--no-deps']]);
  writeFileSync(join(site, '.complete'), `${readFileSync(join(site, '.complete'), 'utf8').trimEnd()}\n${NCCL}\n`);
}
if (!existsSync(ncclHeader)) throw new Error(`cuda-check: ${NCCL} gave no ${ncclHeader}`);
if (process.argv.includes('--fetch-only')) {
  console.log(`cuda-check: wheels in ${site}`);
  process.exit(0);
}
const torchDir = join(site, 'torch');
const found = inspectLibtorchDir(torchDir, 'env');
if (!found.ok || !found.record.cuda) throw new Error(`cuda-check: ${torchDir} is not a CUDA libtorch (${found.ok ? 'no libtorch_cuda.so' : found.reason})`);

// 2. A toolkit root: the local nvcc's bin/ and headers, plus the pip CUDA libraries and headers (scripts/cuda-toolkit.mjs).
const nvcc = findNvcc();
const toolkit = assembleToolkit({ nvcc, nvidiaDirs: [join(site, 'nvidia')], out: join(root, 'toolkit') });

// 3. Build build-cuda/ against it.
const out = join(PACKAGE_ROOT, 'build-cuda');
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const env = { ...process.env, CUDA_HOME: toolkit, CUDACXX: join(toolkit, 'bin', 'nvcc'), SFTKIT_SKIP_LIBTORCH_VERSION_CHECK: '1' };
execFileSync(
  process.execPath,
  [
    cmakeJs, 'build', '--directory', PACKAGE_ROOT, '--out', out, '--parallel', String(cpus().length),
    `--CDSFTKIT_LIBTORCH_DIR=${torchDir}`,
    `--CDCUDA_TOOLKIT_ROOT_DIR=${toolkit}`,
    `--CDCUDAToolkit_ROOT=${toolkit}`,
    `--CDCMAKE_CUDA_COMPILER=${join(toolkit, 'bin', 'nvcc')}`,
    '--CDCMAKE_CUDA_ARCHITECTURES=80',
  ],
  { cwd: PACKAGE_ROOT, stdio: 'inherit', env },
);
const addon = join(out, 'Release', 'sftkit.node');
const needed = sh('readelf', ['-d', addon]).split('\n').filter((l) => /NEEDED|RUNPATH|RPATH/.test(l)).map((l) => l.trim());
console.log(needed.join('\n'));
if (!needed.some((l) => /libtorch_cuda\.so|libc10_cuda\.so/.test(l))) throw new Error('cuda-check: the addon does not link the CUDA libraries');
// 4. The NCCL path: the addon refers to ProcessGroupNCCL symbols, and libtorch_cuda.so defines every one of them.
const symbols = (file, which) =>
  sh('nm', ['-D', which, file], { maxBuffer: 1 << 30 }).split('\n').map((l) => l.trim().split(/\s+/).pop()).filter(Boolean);
const ncclRefs = symbols(addon, '--undefined-only').filter((n) => n.includes('ProcessGroupNCCL'));
if (ncclRefs.length === 0) throw new Error('cuda-check: the addon has no ProcessGroupNCCL references (NCCL path not compiled: see the "sftkit: NCCL" line above)');
const cudaDefined = new Set(symbols(join(torchDir, 'lib', 'libtorch_cuda.so'), '--defined-only'));
const missing = ncclRefs.filter((n) => !cudaDefined.has(n));
if (missing.length) throw new Error(`cuda-check: libtorch_cuda.so does not define ${missing.join(', ')}`);
const demangled = sh('c++filt', ncclRefs).trim().split('\n');
console.log(`cuda-check: NCCL: ${ncclRefs.length} ProcessGroupNCCL symbols, all defined in libtorch_cuda.so:\n  ${demangled.join('\n  ')}`);
console.log(`cuda-check: OK — ${addon} built and linked against ${found.record.version} (CUDA libtorch, ProcessGroupNCCL) with ${nvcc}`);
