// `npm run prebuild`: an N-API prebuild in prebuilds/<platform>-<arch>/ (prebuildify driven through the
// cmake-js shim), then a check that it loads with build/ out of the way. libtorch itself is never bundled:
// at run time the loader finds it through libtorch.json (or the RPATH of the machine that built it).
import { execFileSync } from 'node:child_process';
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
execFileSync(process.execPath, [join(PACKAGE_ROOT, 'scripts', 'load-check.mjs'), '--prebuild-only'], {
  cwd: PACKAGE_ROOT,
  stdio: 'inherit',
});
