// `sftkit inspect`: what the model will read and what it is trained on, example by example, plus the counts.
import { parseArgs } from 'node:util';
import { inspectExample, openInspection } from '../data-api.ts';
import { parseFieldMap } from '../data/formats.ts';
import { invalidParameterError } from '../errors.ts';
import { maskedRuns, type MaskedPiece } from '../mask/masked-pieces.ts';
import { addToSummary, emptySummary, formatSummary, formatUnkWarning } from '../mask/mask-summary.ts';
import { dataSelectionFlags } from './args.ts';
import type { CliIo, Command } from './command.ts';

const HELP = `Usage: sftkit inspect --model DIR --data FILE [--format F] [--template T] [--mask M] [--max-length N]
                      [--limit N] [--json] [--add-special-tokens] [--truncation cut|drop]

Shows examples as the model reads them, with the trained tokens highlighted (colour on a terminal, [[...]]
otherwise), and the counts of trained / masked tokens and dropped examples.

  --model DIR            directory with tokenizer.json (and tokenizer_config.json)
  --data FILE            JSON array, JSONL, Parquet, CSV or TSV file, a dataset directory (its train files), or an
                         http(s) URL (downloaded once into the cache)
  --format F             auto (default), alpaca, instruct, prompt-completion, chat, sharegpt, text, preference
  --template T           plain, alpaca, phi3, chatml, model, or a Jinja template file (default: by format)
  --mask M               completion, assistant, last-assistant, all, pretrain (default: by format)
  --max-length N         cut examples to N tokens (or drop them with --truncation drop)
  --truncation cut|drop  what to do with longer examples (default cut)
  --limit N              read only the first N records
  --field-map F=KEY,...  read fields from other keys, e.g. instruction=question,output=answer
  --add-special-tokens   add tokens the template needs but the tokenizer lacks (e.g. ChatML on GPT-2)
  --json                 one JSON object per kept example, {"input_ids": [...], "labels": [...]}, in dataset order
                         (before any split or shuffle); the counts go to stderr
`;

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw invalidParameterError(name, 'a positive integer', v);
  return n;
}

const GREEN = '\u001b[1;32m';
const DIM = '\u001b[2m';
const RESET = '\u001b[0m';

/** The example's text in runs of trained / masked tokens. */
function highlighted(pieces: readonly MaskedPiece[], colour: boolean): string {
  return maskedRuns(pieces)
    .map((r) => (colour ? `${r.trained ? GREEN : DIM}${r.text}${RESET}` : r.trained ? `[[${r.text}]]` : r.text))
    .join('');
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show examples as tokens with the trained ones highlighted, and trained/masked/dropped counts',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        ...dataSelectionFlags,
        truncation: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      io.stdout.write(HELP);
      return 0;
    }
    if (values.model === undefined) throw invalidParameterError('--model', 'a directory with tokenizer.json', undefined);
    if (values.data === undefined) throw invalidParameterError('--data', 'a data file, dataset directory or URL', undefined);
    const maxLength = positiveInt('--max-length', values['max-length']);
    const limit = positiveInt('--limit', values.limit);
    const opened = await openInspection({
      data: values.data,
      format: (values.format ?? 'auto') as never,
      fieldMap: parseFieldMap(values['field-map']),
      limit,
      tokenizer: values.model,
      template: values.template,
      mask: values.mask as never,
      maxLength,
      truncation: values.truncation as never,
      addSpecialTokens: values['add-special-tokens'],
    });
    const { pipeline, addedTokens } = opened;
    const colour = !values.json && io.stdout.isTTY === true;
    const summary = emptySummary();
    if (!values.json) {
      io.stdout.write(
        `${opened.displayName}: format ${opened.format}, template ${pipeline.template.id}, mask ${pipeline.mask}` +
          `${maxLength !== undefined ? `, max length ${maxLength} (${pipeline.truncation})` : ''}\n`,
      );
      if (addedTokens.length > 0) {
        io.stdout.write(`added tokens: ${addedTokens.map((a) => `${a.content}=${a.id}`).join(' ')} (vocab ${pipeline.tokenizer.vocabSize})\n`);
      }
    }
    for await (const example of opened.examples) {
      const { result, pieces } = inspectExample(example, pipeline, { pieces: values.json ? false : 'run' });
      addToSummary(summary, result);
      const where = `${example.where.file}:${example.where.line} (record ${example.where.record})`;
      if (values.json) {
        if (result.kept) {
          io.stdout.write(
            `${JSON.stringify({ input_ids: Array.from(result.example.inputIds), labels: Array.from(result.example.labels) })}\n`,
          );
        }
        continue;
      }
      if (!result.kept) {
        io.stdout.write(`\n#${example.where.record} ${where}: dropped (${result.reason}, ${result.tokens} tokens)\n`);
        continue;
      }
      const n = result.example.inputIds.length;
      io.stdout.write(
        `\n#${example.where.record} ${where}: ${n} tokens, ${result.trainedTokens} trained, ${n - result.trainedTokens} masked` +
          `${result.truncated ? ', truncated' : ''}\n${highlighted(pieces, colour)}\n`,
      );
    }
    (values.json ? io.stderr : io.stdout).write(`${values.json ? '' : '\n'}${formatSummary(summary)}\n`);
    const tok = pipeline.tokenizer;
    const unkWarning = formatUnkWarning(summary, opened.displayName, tok.unkId === undefined ? undefined : tok.idToToken(tok.unkId));
    if (unkWarning) io.stderr.write(`${unkWarning}\n`);
    if (summary.kept === 0) {
      io.stderr.write(`${opened.displayName}: no example has a trained token left\n`);
      return 1;
    }
    return 0;
  },
};
