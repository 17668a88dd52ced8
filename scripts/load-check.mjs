// Loads the addon the way src/native/binding.ts does (MKL dispatch library + libtorch preload + node-gyp-build) and
// prints its torch version and MKL dispatch. --prebuild-only ignores build/ (node-gyp-build then picks prebuilds/).
// Exit 0 = loads.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT, RECORD_PATH } from './libtorch.mjs';

const require = createRequire(import.meta.url);
const preload = (file) => {
  if (!existsSync(file)) return;
  try {
    process.dlopen({ exports: {} }, file, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL);
  } catch {}
};
let addonFile;
if (process.argv.includes('--prebuild-only')) {
  // What node-gyp-build picks when build/ is absent: the prebuild for this platform.
  const dir = join(PACKAGE_ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.node')) : undefined;
  if (!file) {
    console.error(`no prebuild in ${dir}`);
    process.exit(1);
  }
  addonFile = join(dir, file);
} else {
  addonFile = require('node-gyp-build').resolve(PACKAGE_ROOT);
}
if (process.env.SFTKIT_MKL_DISPATCH !== 'vendor') preload(join(dirname(addonFile), 'libsftkit_mkl_dispatch.so'));
if (existsSync(RECORD_PATH)) {
  const record = JSON.parse(readFileSync(RECORD_PATH, 'utf8'));
  for (const name of ['libc10.so', 'libtorch_cpu.so', 'libtorch.so']) preload(join(record.lib, name));
}
const info = require(addonFile).info();
console.log(`sftkit addon loads: torch ${info.torchVersion}, MKL dispatch ${info.mkl.dispatch} (code path ${info.mkl.codePath})`);
