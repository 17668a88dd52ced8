// Tells whether a prebuilt addon (prebuilds/<platform>-<arch>/*.node) loads here, in a child process so
// that a broken prebuild cannot take the installer down. Only consulted when build/ does not exist.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from './libtorch.mjs';

export function prebuildLoads() {
  if (existsSync(join(PACKAGE_ROOT, 'build', 'Release'))) return false;
  const dir = join(PACKAGE_ROOT, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!existsSync(dir) || !readdirSync(dir).some((f) => f.endsWith('.node'))) return false;
  const probe = spawnSync(process.execPath, [join(PACKAGE_ROOT, 'scripts', 'load-check.mjs')], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
  });
  return probe.status === 0;
}
