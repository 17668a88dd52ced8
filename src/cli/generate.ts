// `sftkit generate`: one prompt, streamed to stdout (or one JSON object with --json).
import { createPipeline } from '../pipeline/index.ts';
import { promptIds, stopIdsFor, replyText, streamText } from '../generate/index.ts';
import { loadModel } from '../native/index.ts';
import { loadTokenizer } from '../tokenize/index.ts';
import { baseStoreRule, commandOptions, loadOptionsOf, modelLoad, opt, sampling, samplingOf } from '../options/index.ts';
import { tokenizerDir } from './args.ts';
import { optionsCommand } from './command.ts';

const generateOptions = commandOptions({
  command: 'generate',
  shape: {
    model: opt.string('model directory', { placeholder: 'DIR' }),
    prompt: opt.string('the prompt', { placeholder: 'TEXT' }),
    template: opt.string('wrap the prompt with this prompt style', { placeholder: 'T' }).optional(),
    input: opt.string('the optional input of an instruction (alpaca / instruct style)', { placeholder: 'TEXT' }).optional(),
    json: opt.boolean('print {"text": ..., "token_ids": [...]} for the generated tokens only').default(false),
    ...modelLoad,
    ...sampling,
  },
  rules: baseStoreRule,
});

export const generateCommand = optionsCommand({
  options: generateOptions,
  summary: 'generate a continuation or an answer for one prompt',
  about: `Usage: sftkit generate --model DIR --prompt TEXT [--template T] [--input TEXT] [sampling flags] [--json]

Continues TEXT with the model. With --template (plain, alpaca, phi3, chatml, model or a Jinja file) the prompt is
wrapped as the user turn / instruction exactly as in training (--input fills alpaca's ### Input: block); without
it the prompt is encoded as it is (with BOS where the tokenizer adds one).

`,
  async run(o, io) {
    const modelDir = o.model;
    const tokDir = tokenizerDir(modelDir);
    const prompt = o.prompt;
    const loadOptions = loadOptionsOf(o);
    const sampled = { maxNewTokens: 256, temperature: 0, ...samplingOf(o) };
    const tokenizer = o.template
      ? (await createPipeline('alpaca', { tokenizer: tokDir, template: o.template })).pipeline
      : { tokenizer: await loadTokenizer(tokDir), template: undefined };
    const model = await loadModel(modelDir, loadOptions);
    try {
      const message = { role: 'user' as const, content: prompt, trained: false, ...(o.input ? { input: o.input } : {}) };
      const ids = promptIds([message], tokenizer.tokenizer, tokenizer.template);
      const stopIds = stopIdsFor(tokenizer.tokenizer, model.spec.eosTokenIds);
      if (o.json) {
        const [out] = await model.generate([ids], { ...sampled, stopIds });
        const tokenIds = Array.from(out ?? []).filter((id) => id >= 0);
        io.stdout.write(`${JSON.stringify({ text: replyText(tokenizer.tokenizer, tokenIds, stopIds), token_ids: tokenIds })}\n`);
        return 0;
      }
      for await (const delta of streamText(model, tokenizer.tokenizer, ids, sampled, stopIds)) io.stdout.write(delta.text);
      io.stdout.write('\n');
      return 0;
    } finally {
      await model.dispose();
    }
  },
});
