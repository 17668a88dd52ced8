// Counts over a prepared dataset: kept, dropped by reason, truncated, trained/masked tokens.

import { DROP_REASONS, type DropReason, type MaskResult } from './tokenize-with-mask.ts';

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
}

export function emptySummary(): MaskSummary {
  const dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  return { examples: 0, kept: 0, dropped, droppedTotal: 0, truncated: 0, tokens: 0, trainedTokens: 0, maskedTokens: 0 };
}

/** Adds one result to a summary (mutates and returns it). */
export function addToSummary(summary: MaskSummary, result: MaskResult): MaskSummary {
  summary.examples++;
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
