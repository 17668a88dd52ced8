// Preference pairs for DPO: {prompt?, chosen, rejected} records rendered and tokenized per segment (the prompt
// segments of chosen and rejected are the same text, so their ids are identical), pair batches (rows chosen_0,
// rejected_0, chosen_1, ...), reference log-probabilities, and the DPO metrics TRL reports.
import { collate, type Batch } from '../collate/index.ts';
import { createPipeline, prepareExample } from '../pipeline/index.ts';
import { addToSummary, emptySummary, type MaskSummary, type TokenizedExample } from '../mask/index.ts';
import { type DataSource, type FieldMap, openDataset, type RecordFormat, type SplitName } from '../data/index.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import type { Model, PreferenceLossType } from '../native/index.ts';
import type { TextTokenizer } from '../tokenize/index.ts';

export interface PreferencePair {
  chosen: TokenizedExample;
  rejected: TokenizedExample;
  /** 0-based index of the source record (to write the split a run used). */
  record?: number;
}

export interface PreferenceData {
  pairs: PreferencePair[];
  tokenizer: TextTokenizer;
  dropped: number;
  /** The local file the pairs were read from (a URL's cached copy), or the dataset directory. */
  path: string;
  /** What to read the same records from again (the local file, or the files of a directory's split). */
  source: DataSource;
  templateId: string;
  /** Counts over both sides of every record read (each side is an example): kept, dropped, unknown tokens. */
  summary: MaskSummary;
}

export interface PreferenceDataOptions {
  /** A JSON/JSONL/Parquet/CSV/TSV file, a URL, a dataset directory, or the files of a directory's split. */
  data: DataSource;
  /** The split of a dataset directory to read, or the first of a list it has (default train). */
  split?: SplitName | readonly SplitName[];
  /** A model directory with tokenizer.json. */
  tokenizer: string;
  format?: RecordFormat | 'auto';
  template?: string;
  maxLength?: number;
  limit?: number;
  fieldMap?: FieldMap;
}

/** Reads preference records; a pair is dropped (and counted) when either side has no trained token left. */
export async function preparePreferencePairs(o: PreferenceDataOptions): Promise<PreferenceData> {
  const opened = await openDataset(o.data, {
    format: o.format ?? 'auto',
    ...(o.fieldMap ? { fieldMap: o.fieldMap } : {}),
    ...(o.limit !== undefined ? { limit: o.limit } : {}),
    ...(o.split !== undefined ? { split: o.split } : {}),
  });
  if (opened.format !== 'preference') {
    throw new SftkitError('SFTKIT_DATA', `${opened.displayName}: DPO needs preference records {prompt?, chosen, rejected}, found ${opened.format} records`);
  }
  const { pipeline } = await createPipeline('preference', { tokenizer: o.tokenizer, template: o.template, maxLength: o.maxLength });
  const pairs: PreferencePair[] = [];
  let dropped = 0;
  const summary = emptySummary();
  for await (const e of opened.examples) {
    if (!e.rejected) throw new SftkitError('SFTKIT_DATA', `${e.where.file}:${e.where.line} (record ${e.where.record}): no rejected answer`);
    const c = prepareExample(e, pipeline).result;
    const r = prepareExample({ ...e, messages: e.rejected }, pipeline).result;
    addToSummary(summary, c);
    addToSummary(summary, r);
    if (c.kept && r.kept) pairs.push({ chosen: c.example, rejected: r.example, record: e.where.record });
    else dropped++;
  }
  if (pairs.length === 0) throw new SftkitError('SFTKIT_DATA', `${opened.displayName}: no preference pair has a trained token on both sides`);
  return { pairs, tokenizer: pipeline.tokenizer, dropped, path: opened.path, source: opened.source, templateId: pipeline.template.id, summary };
}

/** Rows chosen_0, rejected_0, chosen_1, rejected_1, ... padded to the longest. */
export function pairBatch(pairs: readonly PreferencePair[], padId: number): Batch {
  return collate(pairs.flatMap((p) => [p.chosen, p.rejected]), { padId });
}

/** Log-probability sums of every pair's chosen and rejected answer under `model` (no gradients). */
export async function pairLogps(model: Model, pairs: readonly PreferencePair[], padId: number, batchPairs = 4): Promise<{ logps: Float64Array; tokens: Float64Array }> {
  const logps = new Float64Array(pairs.length * 2);
  const tokens = new Float64Array(pairs.length * 2);
  for (let i = 0; i < pairs.length; i += batchPairs) {
    const r = await model.sequenceLogps(pairBatch(pairs.slice(i, i + batchPairs), padId));
    logps.set(r.logps, i * 2);
    tokens.set(r.tokens, i * 2);
  }
  return { logps, tokens };
}

const logSigmoid = (x: number) => (x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x)));

export interface PreferenceLossOptions {
  beta: number;
  labelSmoothing: number;
  lossType: PreferenceLossType;
}

export interface PreferenceMetrics {
  loss: number;
  rewards_chosen: number;
  rewards_rejected: number;
  accuracy: number;
  margin: number;
  pairs: number;
}

/**
 * TRL's DPO numbers from policy and reference log-prob sums (rows chosen, rejected, ...): sigmoid loss
 * -(1 - ls) logsigmoid(beta m) - ls logsigmoid(-beta m) with m = (pc - rc) - (pr - rr) (label smoothing as
 * conservative DPO); IPO (m' - 1/(2 beta))^2 with m' from token-averaged log-ratios; rewards beta * (policy -
 * reference) of the sums (for IPO too, as TRL 1.x); accuracy = share of pairs with chosen reward > rejected reward.
 */
export function preferenceMetrics(policy: Float64Array, reference: Float64Array, tokens: Float64Array, o: PreferenceLossOptions): PreferenceMetrics {
  if (policy.length !== reference.length || policy.length !== tokens.length || policy.length % 2 !== 0) {
    throw invalidParameterError('logps', 'policy, reference and token arrays of the same even length', policy.length);
  }
  const n = policy.length / 2;
  let loss = 0;
  let rc = 0;
  let rr = 0;
  let acc = 0;
  let margin = 0;
  for (let i = 0; i < n; i++) {
    const dc = (policy[2 * i] as number) - (reference[2 * i] as number);
    const dr = (policy[2 * i + 1] as number) - (reference[2 * i + 1] as number);
    if (o.lossType === 'ipo') {
      const m = dc / Math.max(1, tokens[2 * i] as number) - dr / Math.max(1, tokens[2 * i + 1] as number);
      loss += (m - 1 / (2 * o.beta)) ** 2;
    } else {
      const m = dc - dr;
      loss += -(1 - o.labelSmoothing) * logSigmoid(o.beta * m) - o.labelSmoothing * logSigmoid(-o.beta * m);
    }
    rc += o.beta * dc;
    rr += o.beta * dr;
    acc += o.beta * dc > o.beta * dr ? 1 : 0;
    margin += o.beta * (dc - dr);
  }
  return { loss: loss / n, rewards_chosen: rc / n, rewards_rejected: rr / n, accuracy: acc / n, margin: margin / n, pairs: n };
}
