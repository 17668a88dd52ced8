// `sftkit eval`: loss/perplexity over a whole file (--json), or ch7-style responses (--responses) with judge scores.
import { createPipeline } from '../pipeline/index.ts';
import { SftkitError } from '../errors.ts';
import { evaluateLoss, generateResponses, LocalModelJudge, OpenAiJudge, scoreResponses, type Judge, type ResponseRecord, writeResponsesFile } from '../eval/index.ts';
import { defaultChatTemplate } from '../generate/index.ts';
import { formatUnkWarning } from '../mask/index.ts';
import { loadTokenizer } from '../tokenize/index.ts';
import { loadModel } from '../native/index.ts';
import { baseStoreRule, commandOptions, common, dataSelection, loadOptionsOf, modelLoad, opt, sampling, samplingOf, selectionOf } from '../options/index.ts';
import { tokenizerDir } from './args.ts';
import { optionsCommand } from './command.ts';

const evalOptions = commandOptions({
  command: 'eval',
  shape: {
    model: opt.string('model directory (config.json, model.safetensors, tokenizer.json)', { placeholder: 'DIR' }),
    data: opt.string(
      "JSON array / JSONL / Parquet / CSV / TSV file or http(s) URL (e.g. a run's data/test.jsonl),\nor a dataset directory (its test files, else validation, else train)",
      { placeholder: 'FILE' },
    ),
    ...dataSelection,
    batchSize: opt.int('examples per forward / generation batch', { min: 1 }).default(8),
    json: common.json,
    responses: opt.string('write generated responses to FILE (JSON array)', { placeholder: 'FILE' }).optional(),
    judgeUrl: opt.string('OpenAI-compatible chat API of a judge (e.g. a local Ollama or llama.cpp server)', { placeholder: 'URL' }).optional(),
    judgeModel: opt.string('model name for --judge-url', { placeholder: 'NAME' }).optional(),
    judgeModelDir: opt.string('use a local sftkit model as the judge instead', { placeholder: 'DIR' }).optional(),
    ...modelLoad,
    ...sampling,
  },
  rules(ctx) {
    baseStoreRule(ctx);
    const { given, name } = ctx;
    if (given.judgeUrl !== undefined && given.judgeModel === undefined) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${name('judgeUrl')} needs ${name('judgeModel')} NAME (the judge's model name)`);
    }
  },
});

export const evalCommand = optionsCommand({
  options: evalOptions,
  summary: 'validation loss / perplexity on a file, or generated responses with judge scores',
  about: `Usage: sftkit eval --model DIR --data FILE [data flags] [--json]
       sftkit eval --model DIR --data FILE --responses OUT.json [--judge-url URL --judge-model NAME | --judge-model-dir DIR]

Without --responses: the mean loss over every label token of every example of FILE (no split), and perplexity.
--json prints {"loss", "perplexity", "tokens", "examples"}.
With --responses: generates a reply for every example (prompt rendered as in training, reply cut at the end
token) and saves [{instruction, input, output, model_response}]; with a judge, scores each reply 0-100.

`,
  async run(o, io) {
    const modelDir = o.model;
    const tokDir = tokenizerDir(modelDir);
    const sel = selectionOf(o);
    const { batchSize, threads } = o;
    const model = await loadModel(modelDir, loadOptionsOf(o));
    try {
      if (o.responses === undefined) {
        const r = await evaluateLoss(model, tokDir, sel, batchSize);
        const unkWarning = formatUnkWarning(r.summary, sel.data, r.unkToken);
        if (unkWarning) io.stderr.write(`sftkit eval: ${unkWarning}\n`);
        const report = { loss: r.loss, perplexity: r.perplexity, tokens: r.tokens, examples: r.examples };
        io.stdout.write(
          o.json
            ? `${JSON.stringify(report)}\n`
            : `loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(3)} over ${r.tokens} label tokens in ${r.examples} examples` +
                `${r.dropped ? ` (${r.dropped} dropped: nothing to evaluate)` : ''}\n`,
        );
        return 0;
      }
      const generated = await generateResponses(model, tokDir, { ...sel, batchSize, generation: samplingOf(o) });
      const records: ResponseRecord[] = generated.map((g) => ({
        instruction: String(g.record.instruction ?? g.record.instruct ?? g.record.prompt ?? ''),
        input: String(g.record.input ?? ''),
        output: String(g.record.output ?? g.record.label ?? g.record.completion ?? ''),
        model_response: g.model_response,
      }));
      let judge: Judge | undefined;
      let judgeModel: Awaited<ReturnType<typeof loadModel>> | undefined;
      if (o.judgeUrl !== undefined) {
        judge = new OpenAiJudge({ url: o.judgeUrl, model: o.judgeModel as string });
      } else if (o.judgeModelDir !== undefined) {
        judgeModel = await loadModel(o.judgeModelDir, threads ? { threads } : {});
        const judgeTokenizer = await loadTokenizer(o.judgeModelDir);
        const { pipeline } = await createPipeline('chat', { tokenizer: judgeTokenizer, template: defaultChatTemplate(judgeTokenizer) });
        judge = new LocalModelJudge(judgeModel, pipeline);
      }
      let summary: Awaited<ReturnType<typeof scoreResponses>> | undefined;
      try {
        if (judge) summary = await scoreResponses(records, judge);
      } finally {
        await judgeModel?.dispose();
      }
      const scored = summary
        ? records.map((r, i) => ({ ...r, score: summary.examples[i]?.score ?? null }))
        : records;
      await writeResponsesFile(o.responses, scored);
      const report = {
        responses: o.responses,
        examples: records.length,
        ...(summary ? { mean_score: summary.mean, scored: summary.scored, unparseable: summary.unparseable, scores: summary.examples.map((e) => e.score) } : {}),
      };
      io.stdout.write(
        o.json
          ? `${JSON.stringify(report)}\n`
          : `${records.length} responses written to ${o.responses}` +
              (summary ? `; mean judge score ${summary.mean === null ? 'n/a' : summary.mean.toFixed(2)} (${summary.scored} scored, ${summary.unparseable} unparseable)` : '') +
              '\n',
      );
      return 0;
    } finally {
      await model.dispose();
    }
  },
});
