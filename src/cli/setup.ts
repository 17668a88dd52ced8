// `sftkit setup`: the package's install step on demand (scripts/install.mjs: obtain libtorch, record it, use the
// prebuilt addon or build one) for when the package manager skipped it, or to redo it after changing LIBTORCH.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../native/index.ts';
import { commandOptions, opt } from '../options/index.ts';
import { optionsCommand } from './command.ts';

const setupOptions = commandOptions({
  command: 'setup',
  shape: { build: opt.boolean('build the addon from source even when the prebuilt one loads (SFTKIT_FORCE_BUILD=1)').default(false) },
});

export const setupCommand = optionsCommand({
  options: setupOptions,
  summary: 'obtain libtorch and the native addon (what the install script does, when npm skipped it)',
  about: `Usage: sftkit setup [--build]

Runs sftkit's install step: finds or downloads libtorch (LIBTORCH, a Python torch of the pinned version, the
sftkit cache, the PyTorch download site, pip; see the README's install section), records it in libtorch.json, then
loads the prebuilt addon or builds one with cmake-js. npm >= 11, pnpm and bun skip a dependency's install script
until the project approves it (\`npm install-scripts approve sftkit\`); sftkit then runs this step on first use, and
\`sftkit setup\` runs it ahead of time. Progress goes to stderr.

`,
  async run(values, io) {
    const script = join(packageRoot, 'scripts', 'install.mjs');
    if (!existsSync(script)) {
      io.stderr.write(`sftkit setup: ${script} is missing (a damaged install: reinstall sftkit)\n`);
      return 1;
    }
    const env = { ...process.env, ...(values.build ? { SFTKIT_FORCE_BUILD: '1' } : {}) };
    const child = spawn(process.execPath, [script], { cwd: packageRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => io.stderr.write(d));
    child.stderr.on('data', (d: Buffer) => io.stderr.write(d));
    const code = await new Promise<number>((resolve) => {
      child.on('error', (e) => {
        io.stderr.write(`sftkit setup: ${e.message}\n`);
        resolve(1);
      });
      child.on('close', (c) => resolve(c ?? 1));
    });
    if (code === 0) io.stdout.write('sftkit setup: done (`sftkit doctor` shows what was found)\n');
    return code;
  },
});
