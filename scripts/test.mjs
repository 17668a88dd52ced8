// Runs the test suites with node:test through tsx. Node 20's --test does not expand globs, so the files are
// collected here. Usage: node scripts/test.mjs [unit|native|parity|e2e ...] (default: all suites).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PACKAGE_ROOT } from './libtorch.mjs';

const ALL = ['unit', 'native', 'parity', 'e2e'];
const suites = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passthrough = process.argv.slice(2).filter((a) => a.startsWith('-'));

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

const files = (suites.length ? suites : ALL).flatMap((s) => {
  if (!ALL.includes(s)) {
    console.error(`unknown suite ${s}; expected one of ${ALL.join(', ')}`);
    process.exit(2);
  }
  return collect(join(PACKAGE_ROOT, 'test', s));
});
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
process.exit(r.status ?? 1);
