// Runs the test suites. `engine` is the C++ executable over the engine (native/tests/engine_tests.cc, no Node): built
// in build/ through CMake (configured with SFTKIT_ENGINE_TESTS=ON; the engine objects are the addon's, so only what
// changed recompiles, through ccache when CMakeLists.txt finds it) and run against the golden fixtures. The others
// run with node:test through tsx; Node 20's --test does not expand globs, so the files are collected here.
// Usage: node scripts/test.mjs [engine|unit|native|parity|e2e ...] (default: all suites, engine first).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { buildNative } from './build-native.mjs';
import { PACKAGE_ROOT } from './libtorch.mjs';

const ALL = ['engine', 'unit', 'native', 'parity', 'e2e'];
const suites = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passthrough = process.argv.slice(2).filter((a) => a.startsWith('-'));
for (const s of suites) {
  if (!ALL.includes(s)) {
    console.error(`unknown suite ${s}; expected one of ${ALL.join(', ')}`);
    process.exit(2);
  }
}
const wanted = suites.length ? suites : ALL;

/** Builds (when missing or stale) and runs native/tests/engine_tests; returns its exit status. */
async function runEngineTests() {
  const build = join(PACKAGE_ROOT, 'build');
  const cache = join(build, 'CMakeCache.txt');
  const started = Date.now();
  if (!existsSync(cache)) {
    // A fresh build/: configure through cmake-js as build:native does (the addon is built too).
    await buildNative({ extraDefines: { SFTKIT_ENGINE_TESTS: 'ON' } });
  } else if (!/^SFTKIT_ENGINE_TESTS:BOOL=ON$/m.test(readFileSync(cache, 'utf8'))) {
    execFileSync('cmake', ['-S', PACKAGE_ROOT, '-B', build, '-DSFTKIT_ENGINE_TESTS=ON'], { cwd: PACKAGE_ROOT, stdio: 'inherit' });
  }
  execFileSync('cmake', ['--build', build, '--target', 'sftkit_engine_tests', '--parallel', String(Math.max(1, cpus().length))], {
    cwd: PACKAGE_ROOT,
    stdio: 'inherit',
  });
  console.error(`engine: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const r = spawnSync(join(build, 'sftkit_engine_tests'), [PACKAGE_ROOT], { cwd: PACKAGE_ROOT, stdio: 'inherit' });
  return r.status ?? 1;
}

function collect(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return collect(p);
      return name.endsWith('.test.ts') ? [relative(PACKAGE_ROOT, p)] : [];
    });
}

let engineStatus = 0;
if (wanted.includes('engine')) {
  try {
    engineStatus = await runEngineTests();
  } catch (e) {
    console.error(`engine: the tests did not build (${e.message})`);
    engineStatus = 1;
  }
}
const files = wanted.filter((s) => s !== 'engine').flatMap((s) => collect(join(PACKAGE_ROOT, 'test', s)));
if (wanted.length === 1 && wanted[0] === 'engine') process.exit(engineStatus);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const reporter = process.env.SFTKIT_TEST_REPORTER ?? 'spec';
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--expose-gc', '--test', `--test-reporter=${reporter}`, '--test-concurrency=1', ...passthrough, ...files],
  { cwd: PACKAGE_ROOT, stdio: 'inherit' },
);
process.exit(engineStatus !== 0 ? engineStatus : (r.status ?? 1));
