// `sftkit inspect`: what the model will read and what it is trained on, example by example, plus the counts.
import { inspectExample, openInspection } from '../pipeline/index.ts';
import { maskedRuns, type MaskedPiece, addToSummary, emptySummary, formatSummary, formatUnkWarning } from '../mask/index.ts';
import { commandOptions, common, dataSelection, opt, selectionOf } from '../options/index.ts';
import { optionsCommand } from './command.ts';

const inspectOptions = commandOptions({
  command: 'inspect',
  shape: {
    model: opt.string('directory with tokenizer.json (and tokenizer_config.json)', { placeholder: 'DIR' }),
    data: opt.string(
      'JSON array, JSONL, Parquet, CSV or TSV file, a dataset directory (its train files), or an\nhttp(s) URL (downloaded once into the cache)',
      { placeholder: 'FILE' },
    ),
    ...dataSelection,
    truncation: opt.enum(['cut', 'drop'], 'what to do with examples longer than --max-length').default('cut'),
    json: opt
      .boolean('one JSON object per kept example, {"input_ids": [...], "labels": [...]}, in dataset order\n(before any split or shuffle); the counts go to stderr')
      .default(false),
  },
});

const GREEN = '\u001b[1;32m';
const DIM = '\u001b[2m';
const RESET = '\u001b[0m';

/** The example's text in runs of trained / masked tokens. */
function highlighted(pieces: readonly MaskedPiece[], colour: boolean): string {
  return maskedRuns(pieces)
    .map((r) => (colour ? `${r.trained ? GREEN : DIM}${r.text}${RESET}` : r.trained ? `[[${r.text}]]` : r.text))
    .join('');
}

export const inspectCommand = optionsCommand({
  options: inspectOptions,
  summary: 'show examples as tokens with the trained ones highlighted, and trained/masked/dropped counts',
  about: `Usage: sftkit inspect --model DIR --data FILE [--format F] [--template T] [--mask M] [--max-length N]
                      [--limit N] [--json] [--add-special-tokens] [--truncation cut|drop]

Shows examples as the model reads them, with the trained tokens highlighted (colour on a terminal, [[...]]
otherwise), and the counts of trained / masked tokens and dropped examples.

`,
  async run(o, io) {
    const { maxLength, ...sel } = selectionOf(o);
    const opened = await openInspection({ ...sel, tokenizer: o.model, truncation: o.truncation, ...(maxLength !== undefined ? { maxLength } : {}) });
    const { pipeline, addedTokens } = opened;
    const colour = !o.json && io.stdout.isTTY === true;
    const summary = emptySummary();
    if (!o.json) {
      io.stdout.write(
        `${opened.displayName}: format ${opened.format}, template ${pipeline.template.id}, mask ${pipeline.mask}` +
          `${maxLength !== undefined ? `, max length ${maxLength} (${pipeline.truncation})` : ''}\n`,
      );
      if (addedTokens.length > 0) {
        io.stdout.write(`added tokens: ${addedTokens.map((a) => `${a.content}=${a.id}`).join(' ')} (vocab ${pipeline.tokenizer.vocabSize})\n`);
      }
    }
    for await (const example of opened.examples) {
      const { result, pieces } = inspectExample(example, pipeline, { pieces: o.json ? false : 'run' });
      addToSummary(summary, result);
      const where = `${example.where.file}:${example.where.line} (record ${example.where.record})`;
      if (o.json) {
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
    (o.json ? io.stderr : io.stdout).write(`${o.json ? '' : '\n'}${formatSummary(summary)}\n`);
    const tok = pipeline.tokenizer;
    const unkWarning = formatUnkWarning(summary, opened.displayName, tok.unkId === undefined ? undefined : tok.idToToken(tok.unkId));
    if (unkWarning) io.stderr.write(`${unkWarning}\n`);
    if (summary.kept === 0) {
      io.stderr.write(`${opened.displayName}: no example has a trained token left\n`);
      return 1;
    }
    return 0;
  },
});
