// Builds the native addon with cmake-js against the libtorch recorded in libtorch.json.
// Usage: node scripts/build-native.mjs [--debug] [--out DIR]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT, RECORD_PATH, resolveLibtorch, writeRecord } from './libtorch.mjs';

const require = createRequire(import.meta.url);

/** The libtorch recorded in libtorch.json; resolved (and recorded) first when there is none. */
export async function readRecord() {
  if (!existsSync(RECORD_PATH)) {
    const record = await resolveLibtorch();
    writeRecord(record);
    return record;
  }
  return JSON.parse(readFileSync(RECORD_PATH, 'utf8'));
}

export async function buildNative({ debug = false, outDir = join(PACKAGE_ROOT, 'build'), extraDefines = {} } = {}) {
  const record = await readRecord();
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  const defines = { SFTKIT_LIBTORCH_DIR: record.path, ...extraDefines };
  const args = [
    cmakeJs,
    'build',
    '--directory', PACKAGE_ROOT,
    '--out', outDir,
    '--parallel', String(Math.max(1, cpus().length)),
    ...(debug ? ['--debug'] : []),
    ...Object.entries(defines).map(([k, v]) => `--CD${k}=${v}`),
  ];
  console.error(`sftkit: building the native addon against libtorch ${record.version} (${record.source}: ${record.path})`);
  execFileSync(process.execPath, args, { cwd: PACKAGE_ROOT, stdio: 'inherit' });
}

function dirname(p) {
  return p.slice(0, p.lastIndexOf('/'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const debug = process.argv.includes('--debug');
  const outIdx = process.argv.indexOf('--out');
  await buildNative({ debug, ...(outIdx > 0 ? { outDir: process.argv[outIdx + 1] } : {}) });
}
