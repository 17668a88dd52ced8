// Metric records of one or more runs -> the aligned columns a uPlot chart draws: one x column (steps or tokens
// seen, the union over the runs) and per run its train curve (raw and smoothed) and validation points, null where
// a run has no value at that x. Pure, so the node tests check it.
import type { MetricRecord } from '../../report/index.ts';
import { smoothEma } from './smooth.ts';

export type XAxis = 'step' | 'tokens';
export type ChartMetric = 'loss' | 'lr' | 'gradNorm';
export type SeriesKind = 'train' | 'smoothed' | 'val';

export interface RunRecords {
  name: string;
  records: readonly MetricRecord[];
}

export interface ChartSeries {
  /** `<run> train`, `<run> train (smoothed)`, `<run> val`. */
  label: string;
  run: string;
  kind: SeriesKind;
  values: (number | null)[];
  /** Points of this series (non-null values). */
  points: number;
}

export interface ChartData {
  xs: number[];
  series: ChartSeries[];
}

function xOf(r: MetricRecord, axis: XAxis): number | null {
  const v = axis === 'step' ? r.step : r.tokensSeen;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function valueOf(r: MetricRecord, metric: ChartMetric): number | null {
  const v = r[metric];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Points (x, y) of one record type, in file order, a later record at the same x replacing an earlier one. */
function points(records: readonly MetricRecord[], type: 'train' | 'val', metric: ChartMetric, axis: XAxis): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of records) {
    if (r.type !== type) continue;
    const x = xOf(r, axis);
    const y = valueOf(r, metric);
    if (x === null || y === null) continue;
    m.delete(x);
    m.set(x, y);
  }
  return new Map([...m.entries()].sort((a, b) => a[0] - b[0]));
}

export function chartData(runs: readonly RunRecords[], metric: ChartMetric, axis: XAxis, smoothing: number): ChartData {
  const parts: { label: string; run: string; kind: SeriesKind; pts: Map<number, number> }[] = [];
  for (const run of runs) {
    const train = points(run.records, 'train', metric, axis);
    parts.push({ label: `${run.name} train`, run: run.name, kind: 'train', pts: train });
    if (smoothing > 0 && metric !== 'lr' && train.size > 1) {
      const xs = [...train.keys()];
      const sm = smoothEma([...train.values()], smoothing);
      parts.push({ label: `${run.name} train (smoothed)`, run: run.name, kind: 'smoothed', pts: new Map(xs.map((x, i) => [x, sm[i] as number])) });
    }
    if (metric === 'loss') parts.push({ label: `${run.name} val`, run: run.name, kind: 'val', pts: points(run.records, 'val', metric, axis) });
  }
  const xs = [...new Set(parts.flatMap((p) => [...p.pts.keys()]))].sort((a, b) => a - b);
  return {
    xs,
    series: parts.map((p) => ({ label: p.label, run: p.run, kind: p.kind, values: xs.map((x) => p.pts.get(x) ?? null), points: p.pts.size })),
  };
}
