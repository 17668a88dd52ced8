// `sftkit dpo`: DPO training (flags / --config -> the dpo options schema -> trainDpo), and `--eval-only`: DPO loss,
// rewards and reward accuracy of a policy against a reference on every pair of a preference file, without training.
import { parseArgs } from 'node:util';
import { parseFieldMap } from '../data/formats.ts';
import { EVAL_SPLITS } from '../data/index.ts';
import { RECORD_FORMATS, type RecordFormat } from '../data/types.ts';
import { loadModel, type PreferenceLossType } from '../native/model.ts';
import { trainDpo } from '../recipes/dpo.ts';
import { dpoOptions, pairLogps, preferenceMetrics, preparePreferencePairs } from '../training/index.ts';
import { enumFlag, intFlag, numFlag, requiredFlag } from './args.ts';
import type { CliIo, Command } from './command.ts';
import { runTrainingCommand } from './train.ts';

const USAGE = `Usage: sftkit dpo --model DIR [--ref DIR] --data FILE --out DIR [training options]   (or --config file)
       sftkit dpo --model DIR [--ref DIR] --data FILE --eval-only [--json] [--beta 0.1] [--label-smoothing X]
                  [--loss-type sigmoid|ipo] [--template T] [--max-length N] [--limit N] [--batch-size N]

Direct Preference Optimization on {prompt?, chosen, rejected} pairs (strings or message lists; ch7's {instruction,
input, output, chosen, rejected} and MiniMind's {chosen: [...], rejected: [...]} work): log-probabilities are summed
over the answer tokens only, chosen and rejected share the prompt tokens exactly. The reference (--ref, default the
starting policy) is run once over every pair before training and freed; its log-probs are cached in OUT and reused
on --resume. --batch-size counts pairs. metrics.jsonl and the curves carry loss, rewards/chosen, rewards/rejected,
rewards/accuracies and rewards/margins (TRL's names); OUT is laid out like sftkit train's.
--eval-only trains nothing: --json prints {"loss", "rewards_chosen", "rewards_rejected", "accuracy", "pairs"}
averaged over every pair of FILE (no split; of a dataset directory: its test files, else validation, else train).

Training options:
`;

export const dpoCommand: Command = {
  name: 'dpo',
  summary: 'DPO training on preference pairs against a frozen reference (--eval-only: metrics only)',
  get help() {
    return USAGE + dpoOptions.formatHelp();
  },
  async run(argv: string[], io: CliIo): Promise<number> {
    if (!argv.includes('--eval-only')) return runTrainingCommand('dpo', argv, io, dpoOptions.parseArgs(argv), trainDpo);
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        model: { type: 'string' },
        ref: { type: 'string' },
        data: { type: 'string' },
        'eval-only': { type: 'boolean', default: false },
        beta: { type: 'string' },
        'label-smoothing': { type: 'string' },
        'loss-type': { type: 'string' },
        format: { type: 'string' },
        template: { type: 'string' },
        'max-length': { type: 'string' },
        limit: { type: 'string' },
        'field-map': { type: 'string' },
        'batch-size': { type: 'string' },
        threads: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    const modelDir = requiredFlag('model', values.model);
    const refDir = values.ref ?? modelDir;
    const threads = intFlag('threads', values.threads, 1);
    const maxLength = intFlag('max-length', values['max-length'], 2);
    const limit = intFlag('limit', values.limit, 1);
    const data = await preparePreferencePairs({
      data: requiredFlag('data', values.data),
      split: EVAL_SPLITS, // a dataset directory: its test files, else validation, else train
      tokenizer: modelDir,
      format: enumFlag<RecordFormat | 'auto'>('format', values.format, ['auto', ...RECORD_FORMATS]) ?? 'auto',
      ...(values.template ? { template: values.template } : {}),
      ...(maxLength !== undefined ? { maxLength } : {}),
      ...(limit !== undefined ? { limit } : {}),
      fieldMap: parseFieldMap(values['field-map']),
    });
    const batchPairs = intFlag('batch-size', values['batch-size'], 1) ?? 4;
    const opts = {
      beta: numFlag('beta', values.beta, 1e-9) ?? 0.1,
      labelSmoothing: numFlag('label-smoothing', values['label-smoothing'], 0, 0.49) ?? 0,
      lossType: enumFlag<PreferenceLossType>('loss-type', values['loss-type'], ['sigmoid', 'ipo']) ?? 'sigmoid',
    };
    const padId = data.tokenizer.padId;
    const ref = await loadModel(refDir, threads ? { threads } : {});
    const refLogps = await pairLogps(ref, data.pairs, padId, batchPairs).finally(() => ref.dispose());
    const policy = await loadModel(modelDir, threads ? { threads } : {});
    const pol = await pairLogps(policy, data.pairs, padId, batchPairs).finally(() => policy.dispose());
    const m = preferenceMetrics(pol.logps, refLogps.logps, pol.tokens, opts);
    const report = { loss: m.loss, rewards_chosen: m.rewards_chosen, rewards_rejected: m.rewards_rejected, accuracy: m.accuracy, pairs: m.pairs };
    io.stdout.write(
      values.json
        ? `${JSON.stringify(report)}\n`
        : `DPO (${opts.lossType}, beta ${opts.beta}) over ${m.pairs} pairs${data.dropped ? ` (${data.dropped} dropped)` : ''}: loss ${m.loss.toFixed(4)}, ` +
            `rewards chosen ${m.rewards_chosen.toFixed(4)} / rejected ${m.rewards_rejected.toFixed(4)}, accuracy ${m.accuracy.toFixed(3)}, margin ${m.margin.toFixed(4)}\n`,
    );
    return 0;
  },
};
