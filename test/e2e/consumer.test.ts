// sftkit as a dependency of someone else's project: `npm pack` (prepack builds the linux-x64 prebuild, prepare
// compiles dist/), the tarball installed into a fresh project in a temporary directory, and used there as a user
// would: plain ESM JavaScript and strict TypeScript (module/moduleResolution nodenext) import it, type-check and
// train 3 steps on the shipped model; `npx sftkit --help` and `npx sftkit quickstart` run; an install whose script
// was skipped (as npm >= 11, pnpm and bun do until approved) sets itself up on first use.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

const root = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-consumer-'));
const consumer = join(scratch, 'consumer');
const installed = join(consumer, 'node_modules', 'sftkit');
const rootPackage = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};

/** The environment a user's shell would have: no npm_* variables of the `npm test` that runs this file. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, timeoutMs = 600_000, extraEnv: Record<string, string> = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: userEnv(extraEnv), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): SpawnSyncReturns<string> {
  assert.equal(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return r;
}

interface PackResult {
  filename: string;
  size: number;
  files: { path: string; size: number }[];
}
let pack: PackResult;
let tarball = '';
let installLog = '';

before(() => {
  const packed = ok(run('npm', ['pack', '--json', '--pack-destination', scratch], root), 'npm pack');
  // Lifecycle output (prebuildify, cmake-js, tsc) comes first on stdout; the JSON array is last.
  const json = /^\[\s*\{/m.exec(packed.stdout);
  assert.ok(json, `npm pack printed no JSON:\n${packed.stdout.slice(-2000)}`);
  pack = (JSON.parse(packed.stdout.slice(json.index)) as PackResult[])[0]!;
  tarball = join(scratch, pack.filename);
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), `${JSON.stringify({ name: 'sftkit-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`);
  const t0 = Date.now();
  const install = ok(
    run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts', tarball, `typescript@${rootPackage.devDependencies.typescript}`, `@types/node@${rootPackage.devDependencies['@types/node']}`],
      consumer,
    ),
    'npm install of the tarball',
  );
  installLog = install.stdout + install.stderr;
  process.stderr.write(`consumer install: ${((Date.now() - t0) / 1000).toFixed(1)} s, tarball ${(pack.size / 1e6).toFixed(2)} MB\n`);
});

after(() => rmSync(scratch, { recursive: true, force: true }));

test('the tarball carries dist/, the linux-x64 prebuild and the quick start assets, and no build output', () => {
  assert.equal(pack.filename, `sftkit-${rootPackage.version}.tgz`);
  const paths = new Set(pack.files.map((f) => f.path));
  for (const needed of [
    'package.json',
    'bin/sftkit.js',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/cli/main.js',
    'dist/ui/web/app.js',
    'scripts/install.mjs',
    'scripts/libtorch.mjs',
    'CMakeLists.txt',
    'prebuilds/linux-x64/sftkit.node',
    'prebuilds/linux-x64/libsftkit_mkl_dispatch.so',
    'test/fixtures/models/tinystories-656k/model.safetensors',
    'test/fixtures/models/tinystories-656k/tokenizer.json',
    'test/fixtures/models/tinystories-656k/SOURCE.md',
    'test/fixtures/data/instruction-data.json',
  ]) {
    assert.ok(paths.has(needed), `the tarball lacks ${needed}`);
  }
  for (const p of paths) {
    assert.ok(!/^(build|node_modules|src|runs)\//.test(p) && p !== 'libtorch.json', `the tarball should not carry ${p}`);
    assert.ok(!p.startsWith('scripts/gen-fixtures/'), `the tarball should not carry the fixture generator (${p})`);
    assert.ok(!p.startsWith('test/') || p.startsWith('test/fixtures/models/tinystories-656k/') || p.startsWith('test/fixtures/data/'), `unexpected test file ${p}`);
  }
  assert.ok(pack.size < 20e6, `tarball ${pack.size} bytes`);
});

test('the consumer install uses the prebuild and compiles nothing', () => {
  assert.match(installLog, /using the prebuilt addon/, installLog.slice(-3000));
  assert.ok(!existsSync(join(installed, 'build')), 'the install built the addon (node_modules/sftkit/build exists)');
  const record = JSON.parse(readFileSync(join(installed, 'libtorch.json'), 'utf8')) as { version: string };
  assert.match(record.version, /^2\.13\./);
});

const JS = `import { train, loadModel, shippedModelDir, shippedDataFile } from 'sftkit';
const result = await train({
  model: shippedModelDir, data: shippedDataFile, out: process.argv[2],
  maxSteps: 3, batchSize: 4, maxLength: 128, lr: 2e-3, valSplit: 0.02, testSplit: 0, logEvery: 1, seed: 1,
});
const model = await loadModel(result.out, { threads: 1 });
const [ids] = await model.generate([[1, 2, 3]], { maxNewTokens: 4 });
await model.dispose();
console.log(JSON.stringify({ steps: result.steps, loss: result.lastTrainLoss, val: result.lastValLoss, generated: Array.from(ids) }));
`;

function checkRun(stdout: string, out: string): void {
  const line = stdout.trim().split('\n').pop()!;
  const r = JSON.parse(line) as { steps: number; loss: number; val: number; generated: number[] };
  assert.equal(r.steps, 3);
  assert.ok(Number.isFinite(r.loss) && r.loss > 0, line);
  assert.ok(Number.isFinite(r.val) && r.val > 0, line);
  assert.equal(r.generated.length > 0 && r.generated.length <= 4, true, line);
  assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'config.json')), 'no saved model');
  const trainLines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; step: number })
    .filter((m) => m.type === 'train');
  assert.deepEqual(trainLines.map((m) => m.step), [1, 2, 3]);
}

test('plain ESM JavaScript imports sftkit, trains 3 steps on the shipped model and generates', () => {
  writeFileSync(join(consumer, 'train.mjs'), JS);
  const out = join(consumer, 'run-js');
  const r = ok(run(process.execPath, ['train.mjs', out], consumer), 'node train.mjs');
  checkRun(r.stdout, out);
});

test('strict TypeScript with module/moduleResolution nodenext type-checks against the shipped types and runs', () => {
  writeFileSync(
    join(consumer, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          skipLibCheck: false,
          outDir: 'out',
          types: ['node'],
        },
        include: ['train.ts'],
      },
      null,
      2,
    )}\n`,
  );
  writeFileSync(
    join(consumer, 'train.ts'),
    `import { train, loadModel, shippedModelDir, shippedDataFile, type Model, type TrainResult } from 'sftkit';
const result: TrainResult = await train({
  model: shippedModelDir, data: shippedDataFile, out: process.argv[2],
  maxSteps: 3, batchSize: 4, maxLength: 128, lr: 2e-3, valSplit: 0.02, testSplit: 0, logEvery: 1, seed: 1,
});
const model: Model = await loadModel(result.out, { threads: 1 });
const generated: Int32Array[] = await model.generate([[1, 2, 3]], { maxNewTokens: 4 });
await model.dispose();
const steps: number = result.steps;
console.log(JSON.stringify({ steps, loss: result.lastTrainLoss, val: result.lastValLoss, generated: Array.from(generated[0] ?? []) }));
`,
  );
  ok(run(process.execPath, [join(consumer, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], consumer), 'tsc -p . (strict, nodenext)');
  // A type error must fail: the same check on a file that misuses the API.
  writeFileSync(join(consumer, 'bad.ts'), `import { loadModel } from 'sftkit';\nconst m = await loadModel('x');\nconst n: string = m.generate;\n`);
  const badCheck = run(
    process.execPath,
    [join(consumer, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', 'bad.ts'],
    consumer,
  );
  assert.notEqual(badCheck.status, 0, 'a misuse of the API should not type-check');
  assert.match(badCheck.stdout, /bad\.ts.*TS2322/);
  const out = join(consumer, 'run-ts');
  const r = ok(run(process.execPath, [join(consumer, 'out', 'train.js'), out], consumer), 'node out/train.js');
  checkRun(r.stdout, out);
});

test('npx sftkit --help and npx sftkit quickstart run in the consumer project', () => {
  const help = ok(run('npx', ['--no-install', 'sftkit', '--help'], consumer, 60_000), 'npx sftkit --help');
  assert.match(help.stdout, /Usage: sftkit <command>/);
  assert.match(help.stdout, /quickstart/);
  const qs = ok(run('npx', ['--no-install', 'sftkit', 'quickstart', '--out', 'runs/qs', '--answers', '2'], consumer), 'npx sftkit quickstart');
  const out = join(consumer, 'runs', 'qs');
  for (const f of ['model.safetensors', 'metrics.jsonl', 'loss.svg', 'loss.png']) assert.ok(existsSync(join(out, f)), `quickstart wrote no ${f}`);
  assert.ok(statSync(join(out, 'loss.png')).size > 1000);
  assert.match(qs.stdout + qs.stderr, /val/i);
});

test('an install whose script was skipped sets itself up on first use (prebuild, no compile)', () => {
  rmSync(join(installed, 'libtorch.json'));
  const r = ok(run('npx', ['--no-install', 'sftkit', 'doctor', '--json'], consumer, 300_000), 'npx sftkit doctor --json after a skipped install script');
  assert.match(r.stderr, /first use: the install step has not run here/);
  assert.match(r.stderr, /using the prebuilt addon/);
  const report = JSON.parse(r.stdout) as { ok: boolean; libtorch: { recorded: boolean; version?: string } };
  assert.equal(report.ok, true);
  assert.equal(report.libtorch.recorded, true);
  assert.ok(existsSync(join(installed, 'libtorch.json')));
  assert.ok(!existsSync(join(installed, 'build')));
  // SFTKIT_AUTO_SETUP=0: no setup, the load error says what to run.
  rmSync(join(installed, 'libtorch.json'));
  const off = run('npx', ['--no-install', 'sftkit', 'doctor', '--json'], consumer, 120_000, { SFTKIT_AUTO_SETUP: '0' });
  assert.doesNotMatch(off.stderr, /first use/);
  assert.ok(!existsSync(join(installed, 'libtorch.json')));
  const setup = ok(run('npx', ['--no-install', 'sftkit', 'setup'], consumer, 300_000), 'npx sftkit setup');
  assert.match(setup.stdout, /sftkit setup: done/);
  assert.ok(existsSync(join(installed, 'libtorch.json')));
  assert.deepEqual(readdirSync(join(installed, 'prebuilds', 'linux-x64')).sort(), ['libsftkit_mkl_dispatch.so', 'sftkit.node']);
});
