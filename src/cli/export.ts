// `sftkit export --format gguf`: a model (optionally with a LoRA adapter merged) -> one GGUF file for llama.cpp,
// node-llama-cpp, Ollama and LM Studio, and optionally an Ollama Modelfile beside it.
import { exportGguf } from '../export/index.ts';
import { commandOptions, common, opt } from '../options/index.ts';
import type { CliIo, Command } from './command.ts';

const exportOptions = commandOptions({
  command: 'export',
  shape: {
    format: opt.enum(['gguf'], 'the output format'),
    model: opt.string('the model directory (a Hugging Face directory, e.g. the --out of sftkit train)', { placeholder: 'DIR' }),
    out: opt.string('the file to write', { placeholder: 'FILE.gguf' }),
    adapter: opt.string('a LoRA adapter merged into the model first', { placeholder: 'DIR' }).optional(),
    type: opt.enum(['f32', 'f16', 'bf16', 'q8_0'], 'the type of the 2-D weights (norms and 1-D tensors stay f32)').default('f32'),
    modelfile: opt.boolean('also write an Ollama Modelfile beside the file (ollama create NAME -f Modelfile)').default(false),
    template: opt.enum(['plain', 'alpaca', 'chatml', 'phi3'], "the Modelfile's prompt TEMPLATE (default: the run's --template, else the chat template's family)").optional(),
    name: opt.string('general.name inside the file (default: the model directory name)', { placeholder: 'NAME' }).optional(),
    threads: common.threads,
  },
});

const HELP = `Usage: sftkit export --format gguf --model DIR --out FILE.gguf [--adapter DIR] [--type f32|f16|bf16|q8_0] [--modelfile]

Writes the model as one GGUF file that llama.cpp, node-llama-cpp, Ollama and LM Studio load: llama.cpp's tensor
names and metadata for gpt2, llama, qwen2 and qwen3, the tokenizer and its chat template inside. --type q8_0
quantises 2-D weights in llama.cpp's Q8_0 blocks (rows not a multiple of 32 values fall back to f16). The file is
streamed and written atomically. --modelfile writes an Ollama Modelfile beside it (FROM, TEMPLATE, stop tokens,
PARAMETER defaults): \`ollama create NAME -f Modelfile\`.

${exportOptions.formatHelp()}`;

export const exportCommand: Command = {
  name: 'export',
  summary: 'export a model to GGUF (llama.cpp, node-llama-cpp, Ollama, LM Studio)',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const o = exportOptions.parseArgs(argv);
    const started = Date.now();
    const r = await exportGguf(o.model, o.out, {
      type: o.type,
      modelfile: o.modelfile,
      ...(o.adapter !== undefined ? { adapter: o.adapter } : {}),
      ...(o.template !== undefined ? { template: o.template } : {}),
      ...(o.name !== undefined ? { name: o.name } : {}),
      ...(o.threads ? { threads: o.threads } : {}),
    });
    io.stdout.write(
      `sftkit export: ${o.model}${o.adapter ? ` + ${o.adapter}` : ''} -> ${r.out} (${r.arch}, ${r.type}, ${r.tensors} tensors, ` +
        `${(r.bytes / 1e6).toFixed(2)} MB, ${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
    );
    if (r.modelfile !== undefined) io.stdout.write(`Modelfile: ${r.modelfile} (ollama create NAME -f ${r.modelfile})\n`);
    return 0;
  },
};
