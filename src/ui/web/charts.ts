// One uPlot chart of a metric for the selected runs: x = steps or tokens seen, a colour per run; the raw train
// curve is faint when a smoothed one is drawn, validation points are dashed with markers. The container carries
// `data-points` (series label -> number of points) and `data-x` so the state is visible to tests and tools.
import uPlot from 'uplot';
import type { ChartData, ChartSeries, XAxis } from './series.ts';
import { h } from './dom.ts';

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#db2777', '#65a30d'];

function withAlpha(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** Tick and legend numbers: 3 significant digits, exponent form for very small or large values (learning rates). */
export function formatTick(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) return v.toExponential(1).replace('e-', 'e−');
  return String(Number(v.toPrecision(3)));
}

function seriesOptions(s: ChartSeries, colour: string, smoothed: boolean): uPlot.Series {
  const base: uPlot.Series = { label: s.label, spanGaps: true, width: 1.5, stroke: colour, value: (_u, v) => (v === null || v === undefined ? '–' : Number(v.toPrecision(4)).toString()) };
  if (s.kind === 'train') return { ...base, stroke: smoothed ? withAlpha(colour, 0.28) : colour, width: smoothed ? 1 : 1.5, points: { show: false } };
  if (s.kind === 'smoothed') return { ...base, width: 2, points: { show: false } };
  return { ...base, dash: [6, 4], width: 1.5, points: { show: true, size: 6, fill: colour } };
}

export class MetricChart {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private readonly empty: HTMLElement;
  private plot: uPlot | undefined;
  private signature = '';
  private readonly yLabel: string;
  private logScale = false;

  constructor(name: string, title: string, yLabel: string) {
    this.yLabel = yLabel;
    this.body = h('div', { class: 'chart-body' });
    this.empty = h('div', { class: 'chart-empty' }, 'no points yet');
    this.el = h('figure', { class: 'chart', 'data-chart': name, 'data-points': '{}' }, h('figcaption', {}, title), this.body, this.empty);
    new ResizeObserver(() => this.resize()).observe(this.el);
  }

  setLogScale(on: boolean): void {
    if (on === this.logScale) return;
    this.logScale = on;
    this.signature = '';
  }

  update(data: ChartData, axis: XAxis, colours: Map<string, string>): void {
    const counts = Object.fromEntries(data.series.map((s) => [s.label, s.points]));
    this.el.dataset.points = JSON.stringify(counts);
    this.el.dataset.x = axis;
    this.empty.hidden = data.xs.length > 0;
    const smoothedRuns = new Set(data.series.filter((s) => s.kind === 'smoothed').map((s) => s.run));
    const signature = JSON.stringify([axis, this.logScale, data.series.map((s) => [s.label, colours.get(s.run)])]);
    const aligned: uPlot.AlignedData = [data.xs, ...data.series.map((s) => s.values)];
    if (this.plot && signature === this.signature) {
      this.plot.setData(aligned);
      return;
    }
    this.plot?.destroy();
    this.signature = signature;
    const width = Math.max(280, this.body.clientWidth || this.el.clientWidth - 16);
    this.plot = new uPlot(
      {
        width,
        height: 240,
        scales: { x: { time: false }, y: this.logScale ? { distr: 3 } : {} },
        series: [
          { label: axis === 'step' ? 'step' : 'tokens', value: (_u, v) => (v === null || v === undefined ? '–' : String(v)) },
          ...data.series.map((s) => seriesOptions(s, colours.get(s.run) ?? PALETTE[0]!, smoothedRuns.has(s.run))),
        ],
        axes: [
          { label: axis === 'step' ? 'step' : 'tokens seen', values: (_u, splits) => splits.map(formatTick) },
          { label: this.yLabel, size: 64, values: (_u, splits) => splits.map(formatTick) },
        ],
        legend: { live: true },
        cursor: { drag: { x: true, y: false } },
      },
      aligned,
      this.body,
    );
  }

  private resize(): void {
    if (!this.plot) return;
    const width = Math.max(280, this.body.clientWidth);
    if (Math.abs(width - this.plot.width) > 4) this.plot.setSize({ width, height: 240 });
  }
}
