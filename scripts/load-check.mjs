// Loads the addon the way src/native/binding.ts does (libtorch preload + node-gyp-build) and prints its
// torch version. --prebuild-only ignores build/ (node-gyp-build then picks prebuilds/). Exit 0 = loads.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT, RECORD_PATH } from './libtorch.mjs';

const require = createRequire(import.meta.url);
if (existsSync(RECORD_PATH)) {
  const record = JSON.parse(readFileSync(RECORD_PATH, 'utf8'));
  for (const name of ['libc10.so', 'libtorch_cpu.so', 'libtorch.so']) {
    const file = join(record.lib, name);
    if (!existsSync(file)) continue;
    try {
      process.dlopen({ exports: {} }, file, constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL);
    } catch {}
  }
}
let addon;
if (process.argv.includes('--prebuild-only')) {
  // What node-gyp-build picks when build/ is absent: the prebuild for this platform.
  const dir = join(PACKAGE_ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.node')) : undefined;
  if (!file) {
    console.error(`no prebuild in ${dir}`);
    process.exit(1);
  }
  addon = require(join(dir, file));
} else {
  addon = require('node-gyp-build')(PACKAGE_ROOT);
}
console.log(`sftkit addon loads: torch ${addon.info().torchVersion}`);
