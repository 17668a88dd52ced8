// `npm run prebuild`: an N-API prebuild in prebuilds/<platform>-<arch>/ (prebuildify driven through the
// cmake-js shim), then a check that it loads with build/ out of the way. libtorch itself is never bundled:
// at run time the loader finds it through libtorch.json (or the RPATH of the machine that built it).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from './libtorch.mjs';

const require = createRequire(import.meta.url);
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
