// Counts over a prepared dataset: kept, dropped by reason, truncated, trained/masked tokens.

import { DROP_REASONS, type DropReason, type MaskResult, type UnkReport } from './tokenize-with-mask.ts';

export interface MaskSummary {
  examples: number;
  kept: number;
  dropped: Record<DropReason, number>;
  droppedTotal: number;
  truncated: number;
  /** Tokens of kept examples. */
  tokens: number;
  /** Labels that are targets after the shift (labels[1:] != -100) in kept examples. */
  trainedTokens: number;
  /** tokens - trainedTokens. */
  maskedTokens: number;
  /** The tokenizer's unknown token in all examples (kept or dropped, before truncation): text it cannot represent. */
  unkTokens: number;
  /** Examples with at least one unknown token. */
  unkExamples: number;
  /** The first such example: where, and the piece of text (template or data) that produced it. */
  unkExample?: UnkReport;
}

export function emptySummary(): MaskSummary {
  const dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  return { examples: 0, kept: 0, dropped, droppedTotal: 0, truncated: 0, tokens: 0, trainedTokens: 0, maskedTokens: 0, unkTokens: 0, unkExamples: 0 };
}

/** Adds one result to a summary (mutates and returns it). */
export function addToSummary(summary: MaskSummary, result: MaskResult): MaskSummary {
  summary.examples++;
  if (result.unk) {
    summary.unkTokens += result.unk.tokens;
    summary.unkExamples++;
    summary.unkExample ??= result.unk;
  }
  if (result.kept) {
    summary.kept++;
    if (result.truncated) summary.truncated++;
    const n = result.example.inputIds.length;
    summary.tokens += n;
    summary.trainedTokens += result.trainedTokens;
    summary.maskedTokens += n - result.trainedTokens;
  } else {
    summary.dropped[result.reason]++;
    summary.droppedTotal++;
  }
  return summary;
}

/** One line for logs: `kept 1098/1100, dropped 2 (too-long 2), truncated 0, trained 51234 / masked 80321 tokens`. */
export function formatSummary(s: MaskSummary): string {
  const reasons = DROP_REASONS.filter((r) => s.dropped[r] > 0).map((r) => `${r} ${s.dropped[r]}`);
  return (
    `kept ${s.kept}/${s.examples}, dropped ${s.droppedTotal}${reasons.length ? ` (${reasons.join(', ')})` : ''}, ` +
    `truncated ${s.truncated}, trained ${s.trainedTokens} / masked ${s.maskedTokens} tokens`
  );
}

/**
 * The warning for a dataset whose template or data produced the tokenizer's unknown token, or undefined when none
 * did: `warning: data.json: 8 unknown tokens (<unk>) in 3 of 3 examples, e.g. "###" from the template text (line 2,
 * record 0): ...`. `name` names the dataset; `unkToken` is the token's text, when known.
 */
export function formatUnkWarning(s: MaskSummary, name: string, unkToken?: string): string | undefined {
  if (!(s.unkTokens > 0)) return undefined;
  const e = s.unkExample;
  const token = unkToken ?? 'the unknown token';
  let example = '';
  if (e !== undefined) {
    const from = e.source === 'template' ? ' from the template text' : e.source === 'data' ? ' from the data' : '';
    const file = e.where !== undefined && e.where.file !== name ? `${e.where.file}:` : '';
    const at = e.where !== undefined ? ` (${file === '' ? 'line ' : file}${e.where.line}, record ${e.where.record})` : '';
    example = `, e.g. ${JSON.stringify(e.text)}${from}${at}`;
  }
  return (
    `warning: ${name}: ${s.unkTokens} unknown token${s.unkTokens === 1 ? '' : 's'}${unkToken !== undefined ? ` (${unkToken})` : ''} ` +
    `in ${s.unkExamples} of ${s.examples} examples${example}: text the tokenizer cannot represent, which the model reads ` +
    `as ${token}; choose a --template whose text the tokenizer knows, or check the data`
  );
}
