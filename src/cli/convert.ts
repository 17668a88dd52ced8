// `sftkit convert`: imports a foreign checkpoint as a Hugging Face model directory. Sources: llama2.c.
import { convertLlama2c } from '../convert/index.ts';
import { commandOptions, opt } from '../options/index.ts';
import { optionsCommand } from './command.ts';

const convertOptions = commandOptions({
  command: 'convert',
  shape: {
    from: opt.enum(['llama2c'], 'source format: a llama2.c legacy export (e.g. stories260K.bin)'),
    checkpoint: opt.string('the checkpoint file', { placeholder: 'FILE' }),
    tokenizer: opt.string('the llama2.c tokenizer file (e.g. tok512.bin)', { placeholder: 'FILE' }),
    out: opt.string('output directory (created; existing files of the same names are replaced)', { placeholder: 'DIR' }),
  },
});

export const convertCommand = optionsCommand({
  options: convertOptions,
  summary: 'Import a llama2.c checkpoint + tokenizer as a Hugging Face model directory',
  about: `Usage: sftkit convert --from llama2c --checkpoint FILE --tokenizer FILE --out DIR

Converts a foreign checkpoint into a Hugging Face model directory (config.json, model.safetensors,
generation_config.json, tokenizer.json, tokenizer_config.json) that sftkit and transformers load as is.

Options:
`,
  async run(values, io) {
    const result = await convertLlama2c({ checkpoint: values.checkpoint, tokenizer: values.tokenizer, out: values.out });
    const c = result.config;
    io.stdout.write(
      [
        `converted ${values.checkpoint} (llama2.c) -> ${values.out}`,
        `  llama: hidden ${c.dim}, intermediate ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads (${c.nKvHeads} kv), vocab ${c.vocabSize}, context ${c.seqLen}, ${c.tied ? 'tied' : 'untied'} embeddings`,
        `  ${result.numParameters.toLocaleString('en-US')} parameters; wrote ${result.files.join(', ')}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
});
