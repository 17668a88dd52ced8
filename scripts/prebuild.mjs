// `npm run prebuild` (and `prepack`, so every `npm pack` tarball carries one): an N-API prebuild in
// prebuilds/<platform>-<arch>/ (prebuildify driven through the cmake-js shim), then a check that it loads with build/
// out of the way. Only a CPU build against the pinned libtorch version is packed, since that is what a consumer's
// install obtains. libtorch itself is never bundled: at run time the loader finds it through libtorch.json (or the
// RPATH of the machine that built it).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT, PINNED_TORCH, RECORD_PATH } from './libtorch.mjs';

const require = createRequire(import.meta.url);
if (existsSync(RECORD_PATH)) {
  const record = JSON.parse(readFileSync(RECORD_PATH, 'utf8'));
  if (record.version !== PINNED_TORCH.version || record.cuda) {
    console.error(
      `prebuild: the addon here is built against libtorch ${record.version} (${record.cuda ? 'CUDA' : 'CPU'}); a packed ` +
        `prebuild must be a CPU build against the pinned ${PINNED_TORCH.version}, which is what consumers obtain. ` +
        'Reinstall without LIBTORCH / SFTKIT_LIBTORCH_USE_PYTORCH first.',
    );
    process.exit(1);
  }
}
// prebuildify moves build/Release/sftkit.node into prebuilds/ (and strips it there); keep the checkout's own build
// where it was, so that packing leaves the working tree as it found it.
const built = join(PACKAGE_ROOT, 'build', 'Release', 'sftkit.node');
const kept = `${built}.prebuild-keep`;
if (existsSync(built)) copyFileSync(built, kept);
process.on('exit', () => {
  if (existsSync(kept)) {
    if (existsSync(built)) rmSync(kept);
    else renameSync(kept, built);
  }
});
const prebuildify = join(dirname(require.resolve('prebuildify/package.json')), 'bin.js');
execFileSync(process.execPath, [prebuildify, '--napi', '--strip', '--target', process.versions.node], {
  cwd: PACKAGE_ROOT,
  stdio: 'inherit',
  env: { ...process.env, PREBUILD_NODE_GYP: join(PACKAGE_ROOT, 'scripts', 'node-gyp-shim.mjs') },
});
// prebuildify takes only the .node file; the MKL dispatch library (native/preload/) goes beside it, where the
// loader looks for it.
const shim = join(PACKAGE_ROOT, 'build', 'Release', 'libsftkit_mkl_dispatch.so');
if (existsSync(shim)) copyFileSync(shim, join(PACKAGE_ROOT, 'prebuilds', `${process.platform}-${process.arch}`, 'libsftkit_mkl_dispatch.so'));
execFileSync(process.execPath, [join(PACKAGE_ROOT, 'scripts', 'load-check.mjs'), '--prebuild-only'], {
  cwd: PACKAGE_ROOT,
  stdio: 'inherit',
});
