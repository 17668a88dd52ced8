// `sftkit merge`: a base model + a LoRA adapter -> one full Hugging Face model directory (W + scaling * B A).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SftkitError } from '../errors.ts';
import { loadModel, resolveModelDirs } from '../native/index.ts';
import { commandOptions, common, opt } from '../options/index.ts';
import { loadTokenizer, saveTokenizer } from '../tokenize/index.ts';
import { optionsCommand } from './command.ts';

const mergeOptions = commandOptions({
  command: 'merge',
  shape: {
    model: opt.string("the base model the adapter was trained on (default: the adapter's base_model_name_or_path)", { placeholder: 'DIR' }).optional(),
    adapter: opt.string('the LoRA adapter', { placeholder: 'DIR' }),
    out: opt.string('where to write the merged model (must not be the adapter or base directory)', { placeholder: 'DIR' }),
    dtype: opt.enum(['float32', 'bfloat16'], 'the dtype the merged weights are stored in').default('float32'),
    threads: common.threads,
  },
});

export const mergeCommand = optionsCommand({
  options: mergeOptions,
  summary: 'merge a LoRA adapter into its base model (full Hugging Face weights)',
  about: `Usage: sftkit merge --model DIR --adapter DIR --out DIR [--dtype float32|bfloat16]

Merges a LoRA adapter (PEFT directory: adapter_config.json + adapter_model.safetensors, e.g. the --out of
\`sftkit train --lora-r R\`) into its base model and writes a full Hugging Face directory (config.json,
generation_config.json, model.safetensors) that transformers loads as is: every adapted weight becomes
W + scaling * B A (computed in fp32). The tokenizer is copied from the adapter directory when it has one, else from
the base model. --model may be left out when the adapter's base_model_name_or_path is a model directory here.

`,
  async run({ model: modelDir, adapter: adapterDir, out, dtype, threads }, io) {
    const dirs = modelDir !== undefined ? resolveModelDirs(modelDir, adapterDir) : resolveModelDirs(adapterDir);
    if (dirs.adapter === undefined) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `--adapter ${adapterDir}: not a LoRA adapter directory (no adapter_config.json)`);
    }
    for (const [flag, dir] of [['--model', dirs.base], ['--adapter', adapterDir]] as const) {
      if (resolve(dir) === resolve(out)) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `--out ${out} is the ${flag} directory: write the merged model elsewhere`);
    }
    const model = await loadModel(dirs.base, { adapter: adapterDir, dtype, device: 'cpu', ...(threads ? { threads } : {}) });
    const modules = model.adapter?.modules.length ?? 0;
    try {
      await model.mergeAdapter();
      await model.save(out);
    } finally {
      await model.dispose();
    }
    const tokSource = [adapterDir, dirs.base].find((d) => existsSync(join(d, 'tokenizer.json')));
    if (tokSource !== undefined) await saveTokenizer(await loadTokenizer(tokSource), out);
    io.stdout.write(
      `sftkit merge: ${adapterDir} (${modules} modules) merged into ${dirs.base} -> ${out} (${dtype}` +
        `${tokSource !== undefined ? `, tokenizer from ${tokSource}` : ', no tokenizer found to copy'})\n`,
    );
    return 0;
  },
});
