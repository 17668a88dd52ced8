// `sftkit convert`: imports a foreign checkpoint as a Hugging Face model directory. Sources: llama2.c.
import { parseArgs } from 'node:util';
import { convertLlama2c } from '../convert/llama2c.ts';
import type { CliIo, Command } from './command.ts';

const HELP = `Usage: sftkit convert --from llama2c --checkpoint FILE --tokenizer FILE --out DIR

Converts a foreign checkpoint into a Hugging Face model directory (config.json, model.safetensors,
generation_config.json, tokenizer.json, tokenizer_config.json) that sftkit and transformers load as is.

Options:
  --from llama2c       source format: a llama2.c legacy export (e.g. stories260K.bin)
  --checkpoint FILE    the checkpoint file
  --tokenizer FILE     the llama2.c tokenizer file (e.g. tok512.bin)
  --out DIR            output directory (created; existing files of the same names are replaced)
  -h, --help           this text
`;

const SOURCES = ['llama2c'] as const;
type Source = (typeof SOURCES)[number];

export const convertCommand: Command = {
  name: 'convert',
  summary: 'Import a llama2.c checkpoint + tokenizer as a Hugging Face model directory',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        from: { type: 'string' },
        checkpoint: { type: 'string' },
        tokenizer: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.stdout.write(HELP);
      return 0;
    }
    const missing = (['from', 'checkpoint', 'tokenizer', 'out'] as const).filter((k) => !values[k]);
    if (missing.length > 0) {
      io.stderr.write(`sftkit convert: missing ${missing.map((k) => `--${k}`).join(', ')}\n\n${HELP}`);
      return 2;
    }
    if (!SOURCES.includes(values.from as Source)) {
      io.stderr.write(`sftkit convert: unknown --from "${values.from}" (supported: ${SOURCES.join(', ')})\n`);
      return 2;
    }
    const result = await convertLlama2c({ checkpoint: values.checkpoint!, tokenizer: values.tokenizer!, out: values.out! });
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
};
