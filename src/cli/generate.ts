// `sftkit generate`: one prompt, streamed to stdout (or one JSON object with --json).
import { parseArgs } from 'node:util';
import { createPipeline } from '../data-api.ts';
import { promptIds, stopIdsFor } from '../generate/prompt.ts';
import { replyText, streamText } from '../generate/stream-text.ts';
import { loadModel } from '../native/model.ts';
import { loadTokenizer } from '../tokenize/tokenizer.ts';
import { MODEL_LOAD_HELP, modelLoadFlags, modelLoadOptions, requiredFlag, tokenizerDir, SAMPLING_HELP, samplingFlags, samplingOptions } from './args.ts';
import type { CliIo, Command } from './command.ts';

const HELP = `Usage: sftkit generate --model DIR --prompt TEXT [--template T] [--input TEXT] [sampling flags] [--json]

Continues TEXT with the model. With --template (plain, alpaca, phi3, chatml, model or a Jinja file) the prompt is
wrapped as the user turn / instruction exactly as in training (--input fills alpaca's ### Input: block); without
it the prompt is encoded as it is (with BOS where the tokenizer adds one).

  --model DIR            model directory
  --prompt TEXT          the prompt
  --template T           wrap the prompt with this prompt style
  --input TEXT           the optional input of an instruction (alpaca / instruct style)
  --json                 print {"text": ..., "token_ids": [...]} for the generated tokens only
${MODEL_LOAD_HELP}${SAMPLING_HELP}`;

export const generateCommand: Command = {
  name: 'generate',
  summary: 'generate a continuation or an answer for one prompt',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        model: { type: 'string' },
        prompt: { type: 'string' },
        template: { type: 'string' },
        input: { type: 'string' },
        ...modelLoadFlags,
        json: { type: 'boolean', default: false },
        ...samplingFlags,
      },
    });
    const modelDir = requiredFlag('model', values.model);
    const tokDir = tokenizerDir(modelDir);
    const prompt = values.prompt;
    if (prompt === undefined) requiredFlag('prompt', prompt);
    const loadOptions = modelLoadOptions(values);
    const sampling = { maxNewTokens: 256, temperature: 0, ...samplingOptions(values) };
    const tokenizer = values.template
      ? (await createPipeline('alpaca', { tokenizer: tokDir, template: values.template })).pipeline
      : { tokenizer: await loadTokenizer(tokDir), template: undefined };
    const model = await loadModel(modelDir, loadOptions);
    try {
      const message = { role: 'user' as const, content: prompt as string, trained: false, ...(values.input ? { input: values.input } : {}) };
      const ids = promptIds([message], tokenizer.tokenizer, tokenizer.template);
      const stopIds = stopIdsFor(tokenizer.tokenizer, model.spec.eosTokenIds);
      if (values.json) {
        const [out] = await model.generate([ids], { ...sampling, stopIds });
        const tokenIds = Array.from(out ?? []).filter((id) => id >= 0);
        io.stdout.write(`${JSON.stringify({ text: replyText(tokenizer.tokenizer, tokenIds, stopIds), token_ids: tokenIds })}\n`);
        return 0;
      }
      for await (const delta of streamText(model, tokenizer.tokenizer, ids, sampling, stopIds)) io.stdout.write(delta.text);
      io.stdout.write('\n');
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
