// The train options schema: flags, config files (JSON/YAML), defaults, unknown keys, bad values, rules between options.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  TRAIN_OPTION_KEYS,
  TRAIN_OPTION_TABLE,
  formatTrainOptionsHelp,
  loadConfigFile,
  parseTrainArgs,
  trainOptions,
  validateTrainOptions,
} from '../../../src/training/options.ts';
import { flagName } from '../../../src/options/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sftkit-options-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const req = ['--model', 'm', '--data', 'd.json', '--out', 'o'];
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

test('defaults: every key of the issue is in the schema, with the documented defaults', () => {
  const o = parseTrainArgs(req);
  assert.equal(o.model, 'm');
  assert.equal(o.epochs, 1);
  assert.equal(o.maxSteps, undefined);
  assert.equal(o.batchSize, 8);
  assert.equal(o.gradAccum, 1);
  assert.equal(o.lr, 5e-5);
  assert.equal(o.schedule, 'linear');
  assert.equal(o.saveTotalLimit, 2);
  assert.equal(o.valSplit, 0.05);
  assert.equal(o.testSplit, 0.1);
  assert.equal(o.dtype, 'float32');
  assert.equal(o.packing, undefined); // decided by the mask: on for pretraining
  assert.equal(o.kdAlpha, 0.5);
  assert.equal(o.kdTemperature, 1);
  assert.equal(o.teacher, undefined);
  assert.equal(o.resume, false);
  assert.equal(o.maxLength, undefined);
  const issueKeys = 'model data out format template mask maxLength epochs maxSteps batchSize gradAccum lr schedule warmup weightDecay maxGradNorm packing valSplit testSplit evalEvery saveEvery saveTotalLimit seed threads resume logEvery addSpecialTokens valData testData fieldMap nproc dtype groupByLength dropLast gradientCheckpointing device autocast loraR loraAlpha loraDropout loraTargets baseDtype doubleQuant teacher kdAlpha kdTemperature'.split(' ');
  assert.deepEqual([...TRAIN_OPTION_KEYS].sort(), [...issueKeys].sort());
});

test('flags are kebab-case, typed and converted', () => {
  const o = parseTrainArgs([
    ...req, '--max-length', '256', '--max-steps', '30', '--batch-size', '4', '--grad-accum', '2', '--lr', '1e-4',
    '--schedule', 'cosine', '--warmup', '0.1', '--weight-decay', '0.1', '--max-grad-norm=0.5', '--packing',
    '--seed', '7', '--dtype', 'bfloat16', '--group-by-length', '--drop-last', '--resume', '--val-data', 'v.jsonl',
  ]);
  assert.equal(o.maxLength, 256);
  assert.equal(o.maxSteps, 30);
  assert.equal(o.epochs, undefined);
  assert.equal(o.lr, 1e-4);
  assert.equal(o.schedule, 'cosine');
  assert.equal(o.warmup, 0.1);
  assert.equal(o.maxGradNorm, 0.5);
  assert.equal(o.packing, true);
  assert.equal(o.groupByLength, true);
  assert.equal(o.valData, 'v.jsonl');
  assert.equal(o.valSplit, 0, 'a separate val file means no val split');
  assert.equal(flagName('addSpecialTokens'), 'add-special-tokens');
});

test('bad flag values name the flag and the value', () => {
  assert.throws(() => parseTrainArgs([...req, '--batch-size', '0']), /Expected an integer >= 1 for --batch-size but received "0"/);
  assert.throws(() => parseTrainArgs([...req, '--batch-size', '2.5']), /--batch-size but received "2.5"/);
  assert.throws(() => parseTrainArgs([...req, '--lr', 'fast']), /for --lr but received "fast"/);
  assert.throws(() => parseTrainArgs([...req, '--lr', '0']), /a finite number > 0 for --lr/);
  assert.throws(() => parseTrainArgs([...req, '--lr', '0x10']), /--lr/);
  assert.throws(() => parseTrainArgs([...req, '--schedule', 'exp']), /one of 'constant', 'linear', 'cosine' for --schedule but received "exp"/);
  assert.throws(() => parseTrainArgs([...req, '--warmup', '2.5']), /integer step count >= 1 for --warmup but received "2.5"/);
  assert.throws(() => parseTrainArgs([...req, '--val-split', '1']), /\[0, 1\) for --val-split/);
  assert.throws(() => parseTrainArgs([...req, '--dtype', 'fp16']), /--dtype but received "fp16"/);
  assert.throws(() => parseTrainArgs([...req, '--val-split', '0.5', '--test-split', '0.5']), /sum below 1/);
  assert.throws(() => parseTrainArgs([...req, '--out', '']), /non-empty string for --out/);
  for (const e of [() => parseTrainArgs(req.slice(2)), () => parseTrainArgs(['--model', 'm', '--data', 'd'])]) {
    assert.throws(e, (err: Error & { code?: string }) => err.code === 'SFTKIT_BAD_ARGUMENT' && /Missing required train option --(model|data|out)\/(model|data|out)/.test(err.message));
  }
});

test('unknown flags, positionals and contradictory flags are rejected by name', () => {
  assert.throws(() => parseTrainArgs([...req, '--learning-rate', '1']), (e: Error & { code?: string }) =>
    e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && e.message.includes('--learning-rate'));
  assert.throws(() => parseTrainArgs([...req, 'extra']), (e: Error & { code?: string }) => e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL');
  assert.throws(() => parseTrainArgs([...req, '--no-lr']), /--no-lr/);
  assert.throws(() => parseTrainArgs([...req, '--packing', '--no-packing']), /contradict/);
  assert.equal(parseTrainArgs([...req, '--no-packing']).packing, false);
});

test('--epochs and --max-steps are mutually exclusive', () => {
  assert.throws(() => parseTrainArgs([...req, '--epochs', '2', '--max-steps', '5']), /mutually exclusive/);
  assert.throws(() => validateTrainOptions({ model: 'm', data: 'd', out: 'o', epochs: 1, maxSteps: 1 }), /epochs and maxSteps are mutually exclusive/);
  assert.throws(() => parseTrainArgs([...req, '--val-data', 'v', '--val-split', '0.1']), /mutually exclusive/);
});

test('config files: JSON and YAML with camelCase keys; flags win', () => {
  const json = file('a.json', JSON.stringify({ model: 'cm', data: 'cd', out: 'co', lr: 0.001, packing: true, epochs: 3 }));
  const o = parseTrainArgs(['--config', json, '--lr', '2e-3', '--out', 'flag-out']);
  assert.equal(o.model, 'cm');
  assert.equal(o.out, 'flag-out');
  assert.equal(o.lr, 2e-3);
  assert.equal(o.packing, true);
  assert.equal(o.epochs, 3);
  assert.equal(parseTrainArgs(['--config', json, '--no-packing']).packing, false);
  // A flag for one of epochs/max-steps overrides the other one from the config.
  const s = parseTrainArgs(['--config', json, '--max-steps', '9']);
  assert.equal(s.maxSteps, 9);
  assert.equal(s.epochs, undefined);
  const yaml = file('b.yaml', 'model: ym\ndata: yd\nout: yo\nlr: 1e-4\nschedule: cosine\nwarmup: 10\nmaxLength: 128\naddSpecialTokens: true\n');
  const y = parseTrainArgs(['--config', yaml]);
  assert.equal(y.lr, 1e-4);
  assert.equal(y.schedule, 'cosine');
  assert.equal(y.warmup, 10);
  assert.equal(y.maxLength, 128);
  assert.equal(y.addSpecialTokens, true);
  assert.deepEqual(loadConfigFile(yaml), { model: 'ym', data: 'yd', out: 'yo', lr: 1e-4, schedule: 'cosine', warmup: 10, maxLength: 128, addSpecialTokens: true });
  assert.deepEqual(loadConfigFile(file('empty.yml', '')), {});
});

test('config files: unknown keys, kebab-case keys and bad values are named', () => {
  assert.throws(() => loadConfigFile(file('k.yaml', 'max-length: 5\n')), /Unknown train option "max-length" in .*k\.yaml \(config keys are camelCase: did you mean "maxLength"\?\)/);
  assert.throws(() => loadConfigFile(file('t.json', '{"batchSzie": 4}')), /Unknown train option "batchSzie".*did you mean "batchSize"/);
  assert.throws(() => loadConfigFile(file('u.json', '{"wandb": true}')), /Unknown train option "wandb" in/);
  assert.throws(() => loadConfigFile(file('c.json', '{"config": "x"}')), /Unknown train option "config"/);
  assert.throws(() => loadConfigFile(file('s.json', '{"lr": "1e-4"}')), /Expected a finite number > 0 for lr in .*s\.json but received "1e-4" \(string\)/);
  assert.throws(() => loadConfigFile(file('b.json', '{"packing": "yes"}')), /true or false for packing in/);
  assert.throws(() => loadConfigFile(file('arr.json', '[1]')), /an object of options for the top level of/);
  assert.throws(() => loadConfigFile(file('bad.json', '{"lr": ')), (e: Error & { code?: string }) => e.code === 'SFTKIT_BAD_ARGUMENT' && /Cannot parse config file/.test(e.message));
  assert.throws(() => loadConfigFile(file('dup.yaml', 'lr: 1\nlr: 2\n')), /Cannot parse config file/);
  assert.throws(() => loadConfigFile(join(dir, 'missing.json')), (e: Error & { code?: string }) => e.code === 'SFTKIT_IO');
  assert.throws(() => parseTrainArgs(['--config', file('e.yaml', 'epochs: 1\nmaxSteps: 2\n'), ...req]), /mutually exclusive/);
});

test('distillation options: --teacher with --kd-alpha / --kd-temperature; without a teacher they are an error', () => {
  const o = parseTrainArgs([...req, '--teacher', 't', '--kd-alpha', '0.3', '--kd-temperature', '2']);
  assert.deepEqual([o.teacher, o.kdAlpha, o.kdTemperature], ['t', 0.3, 2]);
  assert.deepEqual(validateTrainOptions(o), o, 'validated options validate again');
  assert.deepEqual(validateTrainOptions(parseTrainArgs(req)), parseTrainArgs(req));
  assert.throws(() => parseTrainArgs([...req, '--kd-alpha', '0.3']), /--kd-alpha\/kdAlpha needs --teacher DIR/);
  assert.throws(() => parseTrainArgs([...req, '--teacher', 't', '--kd-alpha', '1.5']), /a number in \[0, 1\] for --kd-alpha/);
  assert.throws(() => parseTrainArgs([...req, '--teacher', 't', '--kd-temperature', '0']), /> 0 for --kd-temperature/);
});

test('validateTrainOptions is the same schema for the library API', () => {
  const o = validateTrainOptions({ model: 'm', data: 'd', out: 'o', maxSteps: 5 });
  assert.equal(o.maxSteps, 5);
  assert.equal(o.gradAccum, 1);
  assert.throws(() => validateTrainOptions({ model: 'm', data: 'd', out: 'o', batch_size: 2 }), /Unknown train option "batch_size"/);
  assert.throws(() => validateTrainOptions({ model: 'm', data: 'd', out: 'o', threads: -1 }), /integer >= 0 for threads but received -1/);
  assert.throws(() => validateTrainOptions(null), /an object of options/);
});

test('the help table is generated from the schema', () => {
  assert.equal(TRAIN_OPTION_TABLE.length, trainOptions.schema.keyof().options.length);
  const row = TRAIN_OPTION_TABLE.find((r) => r.key === 'saveTotalLimit')!;
  assert.deepEqual(row, { key: 'saveTotalLimit', flag: '--save-total-limit', type: 'N', default: '2', description: row.description });
  const help = formatTrainOptionsHelp();
  assert.match(help, /--max-length N +truncate .*\(default: the model's context length\)/);
  assert.match(help, /--packing, --no-packing +pack/);
  assert.match(help, /--schedule constant\|linear\|cosine/);
  assert.match(help, /--model DIR .*to fine-tune \(required\)\n/);
  assert.match(help, /--val-data FILE +separate validation file \(instead of --val-split\)\n/);
  assert.match(help, /--format auto\|.*\|preference\n {34}record format/);
  assert.ok(help.split('\n').every((l) => l.length <= 140), 'no line wider than 140 columns');
  assert.match(help, /--config FILE/);
  assert.match(help, /--format auto\|alpaca\|instruct\|/);
  assert.match(help, /--mask auto\|completion\|/);
  assert.match(help, /--template NAME\|FILE\s+prompt style: plain, alpaca, phi3, chatml, model/);
  assert.throws(() => parseTrainArgs([...req, '--format', 'csv']), /one of 'auto', 'alpaca'.* for --format but received "csv"/);
  assert.equal(parseTrainArgs([...req, '--format', 'sharegpt', '--mask', 'last-assistant']).mask, 'last-assistant');
});

test('the dpo schema: the shared training flags, its own defaults and flags, and none of SFT\'s', async () => {
  const { dpoOptions, validateDpoOptions } = await import('../../../src/training/options.ts');
  const o = dpoOptions.parseArgs([...req, '--ref', 'r', '--max-steps', '3']);
  assert.deepEqual([o.ref, o.beta, o.labelSmoothing, o.lossType, o.lr, o.format, o.maxSteps], ['r', 0.1, 0, 'sigmoid', 1e-6, 'auto', 3]);
  assert.deepEqual(validateDpoOptions(o), o);
  assert.equal(dpoOptions.parseArgs([...req, '--loss-type', 'ipo', '--beta', '0.5']).lossType, 'ipo');
  assert.throws(() => dpoOptions.parseArgs([...req, '--beta', '0']), /> 0 for --beta/);
  assert.throws(() => dpoOptions.parseArgs([...req, '--label-smoothing', '0.5']), /\[0, 0\.5\) for --label-smoothing/);
  assert.throws(() => dpoOptions.parseArgs([...req, '--loss-type', 'ipo', '--label-smoothing', '0.1']), /sigmoid loss only/);
  assert.throws(() => dpoOptions.parseArgs([...req, '--mask', 'all']), (e: Error & { code?: string }) => e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION');
  assert.throws(() => validateDpoOptions({ model: 'm', data: 'd', out: 'o', teacher: 't' }), /Unknown dpo option "teacher"/);
  assert.throws(() => dpoOptions.parseArgs([...req, '--format', 'alpaca']), /one of 'auto', 'preference' for --format/);
  const help = dpoOptions.formatHelp();
  assert.match(help, /--beta X +DPO beta .*\(default: 0\.1\)/);
  assert.ok(help.split('\n').every((l) => l.length <= 140));
});

test('LoRA options need --lora-r >= 1; options that were validated once validate again', () => {
  assert.throws(() => parseTrainArgs([...req, '--lora-alpha', '16']), /--lora-alpha\/loraAlpha needs --lora-r\/loraR >= 1 \(LoRA is off\)/);
  // From argv even the default value is a mistake without a rank (nothing there is a resolved default).
  assert.throws(() => parseTrainArgs([...req, '--lora-alpha', '8']), /--lora-alpha\/loraAlpha needs --lora-r\/loraR >= 1/);
  assert.throws(() => parseTrainArgs([...req, '--lora-dropout', '0']), /loraDropout needs .*loraR >= 1/);
  assert.throws(() => parseTrainArgs([...req, '--lora-targets', 'q_proj']), /loraTargets needs .*loraR >= 1/);
  assert.throws(() => validateTrainOptions({ model: 'm', data: 'd.json', out: 'o', loraR: 0, loraDropout: 0.1 }), /loraDropout needs loraR >= 1/);
  // A resolved set (defaults filled in, as handed to --nproc workers and kept for --resume) is accepted as is.
  const resolved = parseTrainArgs(req);
  assert.deepEqual(validateTrainOptions({ ...resolved }), resolved);
  const lora = parseTrainArgs([...req, '--lora-r', '4', '--lora-alpha', '16']);
  assert.deepEqual(validateTrainOptions({ ...lora }), lora);
});
