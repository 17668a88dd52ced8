// `sftkit eval`: loss/perplexity over a whole file (--json), or ch7-style responses (--responses) with judge scores.
import { parseArgs } from 'node:util';
import { createPipeline } from '../data-api.ts';
import { parseFieldMap } from '../data/formats.ts';
import { RECORD_FORMATS, type RecordFormat } from '../data/types.ts';
import { evaluateLoss, generateResponses, LocalModelJudge } from '../eval/evaluate.ts';
import { OpenAiJudge, scoreResponses, type Judge, type ResponseRecord } from '../eval/judge.ts';
import { writeResponsesFile } from '../eval/responses.ts';
import { defaultChatTemplate } from '../generate/prompt.ts';
import { MASK_MODES, type MaskMode } from '../mask/mask-mode.ts';
import { formatUnkWarning } from '../mask/mask-summary.ts';
import { loadTokenizer } from '../tokenize/tokenizer.ts';
import { loadModel } from '../native/model.ts';
import { dataSelectionFlags, enumFlag, intFlag, MODEL_LOAD_HELP, modelLoadFlags, modelLoadOptions, requiredFlag, tokenizerDir, SAMPLING_HELP, samplingFlags, samplingOptions } from './args.ts';
import type { CliIo, Command } from './command.ts';

const HELP = `Usage: sftkit eval --model DIR --data FILE [data flags] [--json]
       sftkit eval --model DIR --data FILE --responses OUT.json [--judge-url URL --judge-model NAME | --judge-model-dir DIR]

Without --responses: the mean loss over every label token of every example of FILE (no split), and perplexity.
--json prints {"loss", "perplexity", "tokens", "examples"}.
With --responses: generates a reply for every example (prompt rendered as in training, reply cut at the end
token) and saves [{instruction, input, output, model_response}]; with a judge, scores each reply 0-100.

  --model DIR            model directory (config.json, model.safetensors, tokenizer.json)
  --data FILE            JSON array / JSONL / Parquet / CSV / TSV file or http(s) URL (e.g. a run's data/test.jsonl),
                         or a dataset directory (its test files, else validation, else train)
  --format F             auto (default), ${RECORD_FORMATS.join(', ')}
  --template T           prompt style or Jinja file (default: by format, as in training)
  --mask M               ${MASK_MODES.join(', ')} (default: by format)
  --max-length N         cut examples to N tokens (default: the model's context length)
  --batch-size N         examples per forward / generation batch (default 8)
  --limit N              only the first N records
  --field-map F=KEY,...  read fields from other keys, e.g. instruction=question,output=answer
  --add-special-tokens   add template tokens the tokenizer lacks
  --json                 print the result as one JSON object
  --responses FILE       write generated responses to FILE (JSON array)
  --judge-url URL        OpenAI-compatible chat API of a judge (e.g. a local Ollama or llama.cpp server)
  --judge-model NAME     model name for --judge-url
  --judge-model-dir DIR  use a local sftkit model as the judge instead
${MODEL_LOAD_HELP}${SAMPLING_HELP}`;

export const evalCommand: Command = {
  name: 'eval',
  summary: 'validation loss / perplexity on a file, or generated responses with judge scores',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        ...dataSelectionFlags,
        ...modelLoadFlags,
        'batch-size': { type: 'string' },
        json: { type: 'boolean', default: false },
        responses: { type: 'string' },
        'judge-url': { type: 'string' },
        'judge-model': { type: 'string' },
        'judge-model-dir': { type: 'string' },
        ...samplingFlags,
      },
    });
    const modelDir = requiredFlag('model', values.model);
    const tokDir = tokenizerDir(modelDir);
    const format = enumFlag<RecordFormat | 'auto'>('format', values.format, ['auto', ...RECORD_FORMATS]);
    const mask = enumFlag<MaskMode>('mask', values.mask, MASK_MODES);
    const maxLength = intFlag('max-length', values['max-length'], 2);
    const limit = intFlag('limit', values.limit, 1);
    const sel = {
      data: requiredFlag('data', values.data),
      format,
      template: values.template,
      mask,
      maxLength,
      limit,
      addSpecialTokens: values['add-special-tokens'],
      fieldMap: parseFieldMap(values['field-map']),
    };
    const batchSize = intFlag('batch-size', values['batch-size'], 1) ?? 8;
    const threads = intFlag('threads', values.threads, 0);
    if (values['judge-url'] !== undefined && values['judge-model'] === undefined) requiredFlag('judge-model', undefined);
    const model = await loadModel(modelDir, modelLoadOptions(values));
    try {
      if (values.responses === undefined) {
        const r = await evaluateLoss(model, tokDir, sel, batchSize);
        const unkWarning = formatUnkWarning(r.summary, sel.data, r.unkToken);
        if (unkWarning) io.stderr.write(`sftkit eval: ${unkWarning}\n`);
        const report = { loss: r.loss, perplexity: r.perplexity, tokens: r.tokens, examples: r.examples };
        io.stdout.write(
          values.json
            ? `${JSON.stringify(report)}\n`
            : `loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(3)} over ${r.tokens} label tokens in ${r.examples} examples` +
                `${r.dropped ? ` (${r.dropped} dropped: nothing to evaluate)` : ''}\n`,
        );
        return 0;
      }
      const generated = await generateResponses(model, tokDir, { ...sel, batchSize, generation: samplingOptions(values) });
      const records: ResponseRecord[] = generated.map((g) => ({
        instruction: String(g.record.instruction ?? g.record.instruct ?? g.record.prompt ?? ''),
        input: String(g.record.input ?? ''),
        output: String(g.record.output ?? g.record.label ?? g.record.completion ?? ''),
        model_response: g.model_response,
      }));
      let judge: Judge | undefined;
      let judgeModel: Awaited<ReturnType<typeof loadModel>> | undefined;
      if (values['judge-url'] !== undefined) {
        judge = new OpenAiJudge({ url: values['judge-url'], model: values['judge-model'] as string });
      } else if (values['judge-model-dir'] !== undefined) {
        judgeModel = await loadModel(values['judge-model-dir'], threads ? { threads } : {});
        const judgeTokenizer = await loadTokenizer(values['judge-model-dir']);
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
      await writeResponsesFile(values.responses, scored);
      const report = {
        responses: values.responses,
        examples: records.length,
        ...(summary ? { mean_score: summary.mean, scored: summary.scored, unparseable: summary.unparseable, scores: summary.examples.map((e) => e.score) } : {}),
      };
      io.stdout.write(
        values.json
          ? `${JSON.stringify(report)}\n`
          : `${records.length} responses written to ${values.responses}` +
              (summary ? `; mean judge score ${summary.mean === null ? 'n/a' : summary.mean.toFixed(2)} (${summary.scored} scored, ${summary.unparseable} unparseable)` : '') +
              '\n',
      );
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
