// `sftkit dpo`: DPO training (flags / --config -> the dpo options schema -> trainDpo), and `--eval-only`: DPO loss,
// rewards and reward accuracy of a policy against a reference on every pair of a preference file, without training.
import { EVAL_SPLITS } from '../data/index.ts';
import { loadModel } from '../native/index.ts';
import { baseStore, baseStoreOf, baseStoreRule, commandOptions, common, dataSelection, opt, selectionOf } from '../options/index.ts';
import { trainDpo } from '../recipes/dpo.ts';
import { dpoFields, dpoOptions, ipoRule, pairLogps, preferenceMetrics, preparePreferencePairs } from '../training/index.ts';
import type { CliIo, Command } from './command.ts';
import { runTrainingCommand } from './train.ts';

/** `sftkit dpo --eval-only`: DPO's own fields and the data selection, no training. */
const evalOnlyOptions = commandOptions({
  command: 'dpo --eval-only',
  shape: {
    evalOnly: opt.boolean('metrics of --model against --ref on every pair of --data; trains nothing').default(false),
    model: opt.string('the policy to evaluate', { placeholder: 'DIR' }),
    ref: dpoFields.ref,
    data: opt.string('preference pairs: a file, a dataset directory (its test files, else validation, else train) or a URL', { placeholder: 'FILE' }),
    beta: dpoFields.beta,
    labelSmoothing: dpoFields.labelSmoothing,
    lossType: dpoFields.lossType,
    format: dpoFields.format,
    template: dataSelection.template,
    maxLength: dataSelection.maxLength,
    limit: dataSelection.limit,
    fieldMap: dataSelection.fieldMap,
    batchSize: opt.int('pairs per forward batch', { min: 1 }).default(4),
    threads: common.threads,
    ...baseStore,
    json: common.json,
  },
  rules(ctx) {
    ipoRule(ctx);
    baseStoreRule(ctx);
  },
});

const USAGE = `Usage: sftkit dpo --model DIR [--ref DIR] --data FILE --out DIR [training options]   (or --config file)
       sftkit dpo --model DIR [--ref DIR] --data FILE --eval-only [--json] [--beta 0.1] [--label-smoothing X]
                  [--loss-type sigmoid|ipo] [--template T] [--max-length N] [--limit N] [--batch-size N]
                  [--base-dtype float32|bfloat16|int8|nf4 [--double-quant]]

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
    return `${USAGE}${dpoOptions.formatHelp()}\n--eval-only options:\n${evalOnlyOptions.formatHelp()}`;
  },
  async run(argv: string[], io: CliIo): Promise<number> {
    if (!argv.includes('--eval-only')) return runTrainingCommand('dpo', argv, io, dpoOptions.parseArgs(argv), trainDpo);
    const o = evalOnlyOptions.parseArgs(argv);
    const { data: source, template, maxLength, limit, fieldMap } = selectionOf(o);
    const data = await preparePreferencePairs({
      data: source,
      split: EVAL_SPLITS, // a dataset directory: its test files, else validation, else train
      tokenizer: o.model,
      format: o.format,
      ...(template !== undefined ? { template } : {}),
      ...(maxLength !== undefined ? { maxLength } : {}),
      ...(limit !== undefined ? { limit } : {}),
      fieldMap: fieldMap ?? {},
    });
    const batchPairs = o.batchSize;
    const threads = o.threads;
    const opts = { beta: o.beta, labelSmoothing: o.labelSmoothing, lossType: o.lossType };
    const padId = data.tokenizer.padId;
    const load = { ...(threads ? { threads } : {}), ...baseStoreOf(o) };
    const ref = await loadModel(o.ref ?? o.model, load);
    const refLogps = await pairLogps(ref, data.pairs, padId, batchPairs).finally(() => ref.dispose());
    const policy = await loadModel(o.model, load);
    const pol = await pairLogps(policy, data.pairs, padId, batchPairs).finally(() => policy.dispose());
    const m = preferenceMetrics(pol.logps, refLogps.logps, pol.tokens, opts);
    const report = { loss: m.loss, rewards_chosen: m.rewards_chosen, rewards_rejected: m.rewards_rejected, accuracy: m.accuracy, pairs: m.pairs };
    io.stdout.write(
      o.json
        ? `${JSON.stringify(report)}\n`
        : `DPO (${opts.lossType}, beta ${opts.beta}) over ${m.pairs} pairs${data.dropped ? ` (${data.dropped} dropped)` : ''}: loss ${m.loss.toFixed(4)}, ` +
            `rewards chosen ${m.rewards_chosen.toFixed(4)} / rejected ${m.rewards_rejected.toFixed(4)}, accuracy ${m.accuracy.toFixed(3)}, margin ${m.margin.toFixed(4)}\n`,
    );
    return 0;
  },
};
