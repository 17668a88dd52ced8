// The option system (src/options): one zod schema per command -> flags, coercion, help, config keys, validation.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SftkitError } from '../../../src/errors.ts';
import { commandOptions, common, dataSelection, flagName, modelLoad, opt, parseNumberText, sampling, samplingOf, selectionOf } from '../../../src/options/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'sftkit-option-layer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const demo = commandOptions({
  command: 'demo',
  shape: {
    model: opt.string('model directory', { placeholder: 'DIR' }),
    steps: opt.int('optimizer steps', { min: 1, max: 100 }).default(10),
    lr: opt.number('learning rate', { gt: 0 }).default(1e-3),
    split: opt.number('held-out fraction', { min: 0, lt: 1 }).optional(),
    mode: opt.enum(['fast', 'slow'], 'how').default('fast'),
    verbose: opt.boolean('say more').default(false),
    tag: opt.list('a tag (repeatable)', { placeholder: 'T' }).default([]),
  },
});

const badArgument = (re: RegExp) => (e: unknown) => e instanceof SftkitError && e.code === 'SFTKIT_BAD_ARGUMENT' && re.test(e.message);

test('flags: kebab-case from the camelCase keys; the types come from the schema', () => {
  assert.equal(flagName('maxNewTokens'), 'max-new-tokens');
  const o = demo.parseArgs(['--model', 'm', '--steps', '5', '--lr', '2e-4', '--mode', 'slow', '--verbose', '--tag', 'a', '--tag', 'b']);
  assert.deepEqual(o, { model: 'm', steps: 5, lr: 2e-4, mode: 'slow', verbose: true, tag: ['a', 'b'] });
  // Defaults apply; absent optional options stay absent.
  const d = demo.parseArgs(['--model', 'm']);
  assert.deepEqual(d, { model: 'm', steps: 10, lr: 1e-3, mode: 'fast', verbose: false, tag: [] });
  assert.equal('split' in d, false);
});

test('one number rule: decimal or exponent notation; integers are whole; ranges from the field', () => {
  assert.equal(parseNumberText('1e3'), 1000);
  assert.equal(parseNumberText('.5'), 0.5);
  for (const bad of ['', ' ', '0x10', 'Infinity', 'NaN', '1,5', 'ten']) assert.equal(parseNumberText(bad), undefined, bad);
  assert.equal(demo.parseArgs(['--model', 'm', '--steps', '1e1']).steps, 10);
  assert.throws(() => demo.parseArgs(['--model', 'm', '--steps', '2.5']), badArgument(/^Expected an integer in \[1, 100\] for --steps but received "2\.5" \(string\)$/));
  assert.throws(() => demo.parseArgs(['--model', 'm', '--steps', '101']), badArgument(/an integer in \[1, 100\] for --steps/));
  assert.throws(() => demo.parseArgs(['--model', 'm', '--steps', '0x10']), badArgument(/for --steps but received "0x10"/));
  assert.throws(() => demo.parseArgs(['--model', 'm', '--lr', '0']), badArgument(/^Expected a finite number > 0 for --lr but received "0"/));
  assert.throws(() => demo.parseArgs(['--model', 'm', '--split', '1']), badArgument(/^Expected a number in \[0, 1\) for --split/));
  assert.equal(demo.parseArgs(['--model', 'm', '--split', '0']).split, 0);
  assert.throws(() => demo.parseArgs(['--model', 'm', '--mode', 'medium']), badArgument(/^Expected one of 'fast', 'slow' for --mode but received "medium"/));
  assert.throws(() => demo.parseArgs(['--model', '']), badArgument(/a non-empty string for --model/));
});

test('strict: unknown flags, positionals and unknown keys are refused by name; a missing option is named', () => {
  assert.throws(() => demo.parseArgs(['--model', 'm', '--stpes', '3']), (e: Error & { code?: string }) => e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && e.message.includes('--stpes'));
  assert.throws(() => demo.parseArgs(['--model', 'm', 'extra']), (e: Error & { code?: string }) => e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL');
  assert.throws(() => demo.parseArgs(['--model', 'm', '--no-verbose']), (e: Error & { code?: string }) => e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION', 'no --no- forms without --config');
  assert.throws(() => demo.parseArgs([]), badArgument(/^Missing required demo option --model: model directory$/));
  const pair = commandOptions({ command: 'pair', shape: { a: opt.string('first'), b: opt.string('second') } });
  assert.throws(() => pair.parseArgs([]), badArgument(/^Missing required pair options --a, --b$/));
  // The library API: the same schema, keys named as written.
  assert.deepEqual(demo.validate({ model: 'm', steps: 3 }), { model: 'm', steps: 3, lr: 1e-3, mode: 'fast', verbose: false, tag: [] });
  assert.throws(() => demo.validate({ model: 'm', stpes: 3 }), badArgument(/^Unknown demo option "stpes" \(did you mean "steps"\?\)$/));
  assert.throws(() => demo.validate({ model: 'm', steps: '3' }), badArgument(/^Expected an integer in \[1, 100\] for steps but received "3" \(string\)$/));
  assert.throws(() => demo.validate({ model: 'm', verbose: 'yes' }), badArgument(/true or false for verbose/));
  assert.throws(() => demo.validate('m'), badArgument(/an object of options for demo options/));
  const valid = demo.validate({ model: 'm' });
  assert.deepEqual(demo.validate(valid), valid, 'validated options validate again');
});

test('--config: camelCase keys checked against the schema, kebab-case keys get a hint; flags win; exclusive pairs', () => {
  const cfg = commandOptions({
    command: 'cfg',
    config: true,
    shape: {
      maxSteps: opt.int('steps', { min: 1 }).optional(),
      epochs: opt.int('epochs', { min: 1 }).optional(),
      packing: opt.boolean('pack').optional(),
      lr: opt.number('lr', { gt: 0 }).default(1),
    },
    exclusive: [['epochs', 'maxSteps']],
  });
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const yaml = file('c.yaml', 'maxSteps: 4\npacking: true\nlr: 0.5\n');
  assert.deepEqual(cfg.parseArgs(['--config', yaml]), { maxSteps: 4, packing: true, lr: 0.5 });
  assert.deepEqual(cfg.parseArgs(['--config', yaml, '--lr', '2', '--no-packing']), { maxSteps: 4, packing: false, lr: 2 });
  assert.deepEqual(cfg.parseArgs(['--config', yaml, '--epochs', '2']), { epochs: 2, packing: true, lr: 0.5 }, 'a flag for one of a pair drops the other from the file');
  assert.throws(() => cfg.parseArgs(['--epochs', '1', '--max-steps', '2']), badArgument(/--epochs\/epochs and --max-steps\/maxSteps are mutually exclusive \(received 1 and 2\)/));
  assert.throws(() => cfg.parseArgs(['--packing', '--no-packing']), badArgument(/contradict/));
  const kebab = file('k.json', '{"max-steps": 3}');
  assert.throws(() => cfg.parseArgs(['--config', kebab]), badArgument(/^Unknown cfg option "max-steps" in .*k\.json \(config keys are camelCase: did you mean "maxSteps"\?\)$/));
  assert.throws(() => cfg.loadConfigFile(file('v.json', '{"lr": "fast"}')), badArgument(/^Expected a finite number > 0 for lr in .*v\.json but received "fast" \(string\)$/));
  assert.match(cfg.formatHelp(), /--packing, --no-packing +pack\n/);
  assert.match(cfg.formatHelp(), /--config FILE +JSON or YAML file/);
  assert.doesNotMatch(demo.formatHelp(), /--config/);
});

test('--help is generated from the schema: placeholders, defaults, required options, continuation lines', () => {
  const help = demo.formatHelp();
  assert.equal(
    help,
    [
      '  --model DIR       model directory (required)',
      '  --steps N         optimizer steps (default: 10)',
      '  --lr X            learning rate (default: 0.001)',
      '  --split X         held-out fraction',
      '  --mode fast|slow  how (default: fast)',
      '  --verbose         say more',
      '  --tag T           a tag (repeatable)',
      '',
    ].join('\n'),
  );
  assert.deepEqual(demo.table.find((r) => r.key === 'steps'), { key: 'steps', flag: '--steps', type: 'N', default: '10', description: 'optimizer steps' });
  const two = commandOptions({ command: 'two', shape: { a: opt.string('first line\nsecond line').optional() } });
  assert.equal(two.formatHelp(), '  --a STR  first line\n           second line\n');
});

test('shared fragments: one declaration spread into several commands, same flags and rules in each', () => {
  const one = commandOptions({ command: 'one', shape: { data: opt.string('data'), ...dataSelection, ...sampling } });
  const two = commandOptions({ command: 'two', shape: { data: opt.string('data'), ...dataSelection, ...modelLoad, json: common.json } });
  for (const c of [one, two]) {
    assert.throws(() => c.parseArgs(['--data', 'd', '--max-length', '0']), badArgument(/an integer >= 1 for --max-length but received "0"/));
    assert.throws(() => c.parseArgs(['--data', 'd', '--mask', 'some']), badArgument(/one of 'auto', 'completion'.* for --mask/));
    const o = c.parseArgs(['--data', 'd', '--field-map', 'instruction=q', '--limit', '2']);
    assert.deepEqual(selectionOf(o), { data: 'd', format: 'auto', limit: 2, addSpecialTokens: false, fieldMap: { instruction: 'q' } }, "'auto' template and mask: by format");
  }
  assert.deepEqual(samplingOf(one.parseArgs(['--data', 'd', '--top-p', '0.9', '--seed', '3'])), { topP: 0.9, seed: 3 });
  assert.throws(() => one.parseArgs(['--data', 'd', '--top-p', '1.5']), badArgument(/a number in \[0, 1\] for --top-p/));
  assert.deepEqual(Object.keys(two.parseArgs(['--data', 'd'])).sort(), ['addSpecialTokens', 'baseDtype', 'data', 'device', 'doubleQuant', 'format', 'json', 'mask', 'template', 'threads'].sort());
});

test('rules between options name the options as the user wrote them', () => {
  const r = commandOptions({
    command: 'r',
    shape: { url: opt.string('url').optional(), name: opt.string('name').optional() },
    rules({ given, name }) {
      if (given.url !== undefined && given.name === undefined) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name('url')} needs ${name('name')}`);
    },
  });
  assert.throws(() => r.parseArgs(['--url', 'u']), badArgument(/^--url needs --name$/));
  assert.throws(() => r.validate({ url: 'u' }), badArgument(/^url needs name$/));
});
