// The responses view: the records of `sftkit eval --responses` (read and checked by eval/responses.ts) and the
// distribution of their judge scores.
import type { ResponseRecord } from '../eval/index.ts';

export interface ScoreStats {
  records: number;
  /** Records with a numeric score. */
  scored: number;
  /** Records whose score is null (the judge's reply held no number). */
  unparseable: number;
  /** Records without a score field (not judged). */
  unscored: number;
  mean: number | null;
  median: number | null;
  min: number | null;
  max: number | null;
  /** Ten bins [0,10), [10,20) ... [90,100]; 100 falls in the last. */
  histogram: { from: number; to: number; count: number }[];
}

export function scoreStats(records: readonly ResponseRecord[]): ScoreStats {
  const scores = records.map((r) => r.score).filter((s): s is number => typeof s === 'number' && Number.isFinite(s));
  const sorted = [...scores].sort((a, b) => a - b);
  const histogram = Array.from({ length: 10 }, (_, i) => ({ from: i * 10, to: i === 9 ? 100 : i * 10 + 10, count: 0 }));
  for (const s of scores) histogram[Math.min(9, Math.max(0, Math.floor(s / 10)))]!.count++;
  const n = sorted.length;
  const median = n === 0 ? null : n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return {
    records: records.length,
    scored: n,
    unparseable: records.filter((r) => r.score === null).length,
    unscored: records.filter((r) => r.score === undefined).length,
    mean: n === 0 ? null : scores.reduce((a, b) => a + b, 0) / n,
    median,
    min: n === 0 ? null : sorted[0]!,
    max: n === 0 ? null : sorted[n - 1]!,
    histogram,
  };
}
