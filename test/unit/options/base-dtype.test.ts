// Issue 24's options: --base-dtype and --double-quant on train, dpo (and --eval-only), eval, generate, chat and bench
// train; the rules between them (LoRA for training over a frozen low-precision base, double quantisation with nf4
// only, float32 compute); the library's loadModel checks (before any addon is loaded); what reaches the load options.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { benchCommand } from '../../../src/cli/bench.ts';
import { chatCommand } from '../../../src/cli/chat.ts';
import { dpoCommand } from '../../../src/cli/dpo.ts';
import { evalCommand } from '../../../src/cli/eval.ts';
import { generateCommand } from '../../../src/cli/generate.ts';
import { SftkitError } from '../../../src/errors.ts';
import { checkBaseDtypeOptions, loadModel } from '../../../src/native/model.ts';
import { baseStoreOf, loadOptionsOf, modelLoad, commandOptions } from '../../../src/options/index.ts';
import { checkLoraResume } from '../../../src/training/lora.ts';
import { dpoOptions, formatTrainOptionsHelp, parseTrainArgs, validateDpoOptions, validateTrainOptions } from '../../../src/training/options.ts';

const bad = (re: RegExp, code = 'SFTKIT_BAD_ARGUMENT') => (e: unknown) => e instanceof SftkitError && e.code === code && re.test(e.message);
const req = ['--model', 'm', '--data', 'd.json', '--out', 'o'];
const lib = { model: 'm', data: 'd.json', out: 'o' };
const io = { stdout: { write: () => true }, stderr: { write: () => true } } as never;

test('train: --base-dtype defaults to float32; the four formats parse; the help says what it does', () => {
  const o = parseTrainArgs(req);
  assert.equal(o.baseDtype, 'float32');
  assert.equal(o.doubleQuant, false);
  for (const d of ['bfloat16', 'int8', 'nf4'] as const) assert.equal(parseTrainArgs([...req, '--lora-r', '8', '--base-dtype', d]).baseDtype, d);
  assert.equal(parseTrainArgs([...req, '--base-dtype', 'float32']).loraR, 0, 'float32 is the full-precision base: full fine-tuning stays');
  const nf4 = parseTrainArgs([...req, '--lora-r', '8', '--base-dtype', 'nf4', '--double-quant']);
  assert.deepEqual([nf4.baseDtype, nf4.doubleQuant], ['nf4', true]);
  assert.throws(() => parseTrainArgs([...req, '--lora-r', '8', '--base-dtype', 'fp4']), bad(/one of 'float32', 'bfloat16', 'int8', 'nf4' for --base-dtype but received "fp4"/));
  const help = formatTrainOptionsHelp();
  assert.match(help, /--base-dtype float32\|bfloat16\|int8\|nf4/);
  assert.match(help, /dequantises its weights just in time/);
  assert.match(help, /needs --lora-r/);
  assert.match(help, /--double-quant, --no-double-quant/);
});

test('train and dpo: a base other than float32 needs LoRA (full fine-tuning is refused), from flags, config keys and objects', () => {
  for (const d of ['bfloat16', 'int8', 'nf4']) {
    assert.throws(() => parseTrainArgs([...req, '--base-dtype', d]), bad(new RegExp(`--base-dtype/baseDtype ${d} keeps the base weights frozen.*add --lora-r/loraR R.*--base-dtype/baseDtype float32 for full fine-tuning`)));
    assert.throws(() => parseTrainArgs([...req, '--base-dtype', d, '--lora-r', '0']), bad(/only LoRA adapters train/));
    assert.throws(() => validateTrainOptions({ ...lib, baseDtype: d }), bad(/^baseDtype .* add loraR R/));
    assert.throws(() => dpoOptions.parseArgs([...req, '--base-dtype', d]), bad(/only LoRA adapters train over them/));
    assert.throws(() => validateDpoOptions({ ...lib, baseDtype: d }), bad(/add loraR R/));
  }
  // Validated options validate again to themselves (the --nproc workers and resume read them back).
  const o = validateTrainOptions({ ...lib, loraR: 4, baseDtype: 'int8' });
  assert.deepEqual(validateTrainOptions(JSON.parse(JSON.stringify(o))), o);
  const p = validateDpoOptions({ ...lib, loraR: 4, baseDtype: 'nf4', doubleQuant: true });
  assert.deepEqual([p.baseDtype, p.doubleQuant], ['nf4', true]);
});

test('--double-quant needs --base-dtype nf4; a low-precision base refuses --dtype bfloat16 with a hint to --autocast', () => {
  assert.throws(() => parseTrainArgs([...req, '--double-quant']), bad(/--double-quant\/doubleQuant quantises nf4's block scales: it needs --base-dtype\/baseDtype nf4/));
  assert.throws(() => parseTrainArgs([...req, '--lora-r', '8', '--base-dtype', 'int8', '--double-quant']), bad(/needs --base-dtype\/baseDtype nf4 \(received int8\)/));
  assert.throws(() => validateTrainOptions({ ...lib, loraR: 8, baseDtype: 'bfloat16', doubleQuant: true }), bad(/^doubleQuant .* needs baseDtype nf4/));
  // --no-double-quant (false) is no mistake.
  assert.equal(parseTrainArgs([...req, '--no-double-quant']).doubleQuant, false);
  assert.throws(
    () => parseTrainArgs([...req, '--lora-r', '8', '--base-dtype', 'nf4', '--dtype', 'bfloat16']),
    bad(/--base-dtype\/baseDtype nf4 stores the frozen base small and computes in float32: it needs --dtype\/dtype float32 \(for bf16 compute, on CUDA, add --autocast\/autocast\)/),
  );
  assert.equal(parseTrainArgs([...req, '--lora-r', '8', '--base-dtype', 'nf4', '--autocast']).autocast, true);
  assert.equal(parseTrainArgs([...req, '--base-dtype', 'float32', '--dtype', 'bfloat16']).dtype, 'bfloat16');
  assert.throws(() => dpoOptions.parseArgs([...req, '--lora-r', '8', '--base-dtype', 'bfloat16', '--dtype', 'bfloat16']), bad(/add --autocast/));
});

test('eval, generate, chat: --base-dtype without LoRA (inference), same rules for --double-quant; the load options carry them', async () => {
  const evalArgs = ['--model', 'm', '--data', 'd.json'];
  await assert.rejects(evalCommand.run([...evalArgs, '--double-quant'], io), bad(/--double-quant quantises nf4's block scales: it needs --base-dtype nf4/));
  await assert.rejects(evalCommand.run([...evalArgs, '--base-dtype', 'int4'], io), bad(/one of 'float32', 'bfloat16', 'int8', 'nf4' for --base-dtype/));
  await assert.rejects(generateCommand.run(['--model', 'm', '--prompt', 'hi', '--base-dtype', 'int8', '--double-quant'], io), bad(/needs --base-dtype nf4 \(received int8\)/));
  await assert.rejects(chatCommand.run(['--model', 'm', '--double-quant'], io), bad(/needs --base-dtype nf4/));
  for (const c of [evalCommand, generateCommand, chatCommand]) assert.match(c.help, /--base-dtype float32\|bfloat16\|int8\|nf4/);
  assert.doesNotMatch(chatCommand.help, /needs --lora-r/, 'inference needs no adapters');
  const loader = commandOptions({ command: 'loader', shape: { ...modelLoad } });
  assert.deepEqual(loadOptionsOf(loader.parseArgs([])), { device: 'auto' }, 'float32: nothing new reaches the addon');
  assert.deepEqual(loadOptionsOf(loader.parseArgs(['--base-dtype', 'nf4', '--double-quant', '--adapter', 'a'])), { device: 'auto', adapter: 'a', baseDtype: 'nf4', doubleQuant: true });
  assert.deepEqual(baseStoreOf({ baseDtype: 'int8', doubleQuant: false }), { baseDtype: 'int8' });
});

test('dpo --eval-only and bench train take --base-dtype; bench train needs --lora-r for a low-precision base', async () => {
  await assert.rejects(dpoCommand.run(['--eval-only', '--model', 'm', '--data', 'd.json', '--double-quant'], io), bad(/needs --base-dtype nf4/));
  assert.match(dpoCommand.help, /--base-dtype float32\|bfloat16\|int8\|nf4 \[--double-quant\]/);
  const bench = ['train', '--model', 'm', '--batch-size', '1', '--seq-len', '8', '--steps', '1'];
  await assert.rejects(benchCommand.run([...bench, '--base-dtype', 'nf4'], io), bad(/--base-dtype nf4 keeps the base weights frozen in nf4: only LoRA adapters train over them; add --lora-r R/));
  await assert.rejects(benchCommand.run([...bench, '--lora-r', '4', '--base-dtype', 'int8', '--double-quant'], io), bad(/needs --base-dtype nf4/));
  await assert.rejects(benchCommand.run([...bench, '--lora-r', '4', '--base-dtype', 'nf4', '--dtype', 'bfloat16'], io), bad(/needs --dtype float32/));
  assert.match(benchCommand.help, /"dequantMs" and "matmulMs"/);
});

test('loadModel checks baseDtype and doubleQuant before touching the addon', async () => {
  await assert.rejects(loadModel('no-such-dir', { baseDtype: 'fp8' as never }), bad(/Expected 'float32', 'bfloat16', 'int8' or 'nf4' for baseDtype but received "fp8"/));
  await assert.rejects(loadModel('no-such-dir', { baseDtype: 'int8', doubleQuant: true }), bad(/doubleQuant quantises nf4's block scales: it needs baseDtype nf4/));
  await assert.rejects(loadModel('no-such-dir', { doubleQuant: 1 as never }), bad(/true or false for doubleQuant/));
  await assert.rejects(loadModel('no-such-dir', { baseDtype: 'nf4', dtype: 'bfloat16' }), bad(/it needs dtype float32 \(for bf16 compute, on CUDA, add autocast\)/));
  assert.doesNotThrow(() => checkBaseDtypeOptions({ baseDtype: 'nf4', doubleQuant: true, dtype: 'float32' }));
  assert.doesNotThrow(() => checkBaseDtypeOptions({ baseDtype: 'float32', dtype: 'bfloat16' }));
});

test('resume keeps the base format the adapters were trained over', () => {
  const o = { loraR: 4, loraAlpha: 8, loraDropout: 0, seed: 1 };
  checkLoraResume(o, { ...o, baseDtype: 'float32', doubleQuant: false }, 'cp'); // a checkpoint from before issue 24
  checkLoraResume({ ...o, baseDtype: 'nf4' }, { ...o, baseDtype: 'nf4', doubleQuant: false }, 'cp');
  assert.throws(() => checkLoraResume({ ...o, baseDtype: 'nf4' }, { ...o, baseDtype: 'int8' }, 'cp'), /cp was trained with baseDtype "nf4", now "int8"/);
  assert.throws(() => checkLoraResume({ ...o, baseDtype: 'nf4', doubleQuant: true }, { ...o, baseDtype: 'nf4' }, 'cp'), /doubleQuant true, now false/);
});
