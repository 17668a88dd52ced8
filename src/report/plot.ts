// Loss curves: one figure with two panels, train and validation loss against optimizer steps (left) and against tokens
// seen (right), drawn as a scene, written as hand-written SVG and rasterised from that SVG to PNG by resvg
// (@resvg/resvg-js) with the system's fonts (SFTKIT_PLOT_FONT adds font files; without any font the PNG has no text).
// Files: OUT/loss.svg and OUT/loss.png (writeLossPlots).
import { delimiter, join } from 'node:path';
import { Resvg, type ResvgRenderOptions } from '@resvg/resvg-js';
import type { MetricListener, MetricRecord } from './metrics.ts';
import { writeFileAtomic } from '../shared/index.ts';

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  color: string;
  points: Point[];
}

type Anchor = 'start' | 'middle' | 'end';

/** What both renderers draw. Coordinates are pixels, origin top-left; text `y` is the vertical centre of the text. */
export type SceneItem =
  | { kind: 'rect'; x: number; y: number; width: number; height: number; fill: string }
  | { kind: 'line'; x1: number; y1: number; x2: number; y2: number; color: string; width: number }
  | { kind: 'polyline'; series: string; points: Point[]; color: string; width: number }
  | { kind: 'marker'; series: string; x: number; y: number; r: number; color: string }
  | { kind: 'text'; x: number; y: number; text: string; anchor: Anchor; color: string; size: number; vertical?: boolean };

export interface Scene {
  width: number;
  height: number;
  items: SceneItem[];
}

export interface LossFigureOptions {
  /** Figure size in pixels (default 1200 x 450; each panel gets half the width). */
  width?: number;
  height?: number;
  /** Most points drawn per series; longer series are decimated (min/max per bucket, spikes kept). Default 1000. */
  maxPoints?: number;
  /** Draw point markers when a series has at most this many points (default 60). */
  markersUpTo?: number;
}

const TRAIN_COLOR = '#1f77b4';
const VAL_COLOR = '#ff7f0e';
const AXIS_COLOR = '#333333';
const GRID_COLOR = '#e3e3e3';
const TEXT_COLOR = '#222222';

// ---------------------------------------------------------------------------------------------------------------
// Data

/** Train and validation loss series against `step` or `tokensSeen`, non-finite values dropped, sorted by x. */
export function lossSeries(records: readonly MetricRecord[], x: 'step' | 'tokensSeen'): { train: Point[]; val: Point[] } {
  const pick = (type: 'train' | 'val'): Point[] =>
    records
      .filter((r) => r.type === type)
      .map((r) => ({ x: r[x], y: r.loss }))
      .filter((p): p is Point => typeof p.x === 'number' && Number.isFinite(p.x) && typeof p.y === 'number' && Number.isFinite(p.y))
      .sort((a, b) => a.x - b.x);
  return { train: pick('train'), val: pick('val') };
}

/**
 * Reduces a series (sorted by x) to at most `maxPoints` points: the x range is cut into maxPoints/4 buckets and each
 * keeps its first, lowest, highest and last point in order, so spikes survive.
 */
export function decimate(points: readonly Point[], maxPoints: number): Point[] {
  if (points.length <= maxPoints) return [...points];
  const buckets = Math.max(1, Math.floor(maxPoints / 4));
  const first = points[0]!.x;
  const span = points[points.length - 1]!.x - first || 1;
  const out: Point[] = [];
  let i = 0;
  for (let b = 0; b < buckets && i < points.length; b++) {
    const end = b === buckets - 1 ? Infinity : first + ((b + 1) * span) / buckets;
    const startIdx = i;
    let lo = i;
    let hi = i;
    while (i < points.length && (points[i]!.x < end || b === buckets - 1)) {
      if (points[i]!.y < points[lo]!.y) lo = i;
      if (points[i]!.y > points[hi]!.y) hi = i;
      i++;
    }
    if (i === startIdx) continue;
    const keep = [...new Set([startIdx, lo, hi, i - 1])].sort((a, b2) => a - b2);
    for (const k of keep) out.push(points[k]!);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Axes

/** "Nice" ticks (1, 2, 5 x 10^k) covering [min, max]; returns the expanded domain, the step and the ticks. */
export function niceScale(
  min: number,
  max: number,
  target = 5,
  tightMax = false,
  integer = false,
): { lo: number; hi: number; step: number; ticks: number[] } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    min = 0;
    max = 1;
  }
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    const pad = integer ? 1 : Math.abs(min) * 0.1 || 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  let step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = Math.max(1, step);
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = tightMax ? max : Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  const n = Math.floor((hi - lo) / step + 1e-9);
  for (let k = 0; k <= n; k++) ticks.push(lo + k * step);
  return { lo, hi, step, ticks };
}

/** Tick label: decimals from the tick step; with `si`, thousands as k, millions as M, billions as G. */
export function formatTick(value: number, step: number, si = false): string {
  let v = value;
  let s = step;
  let suffix = '';
  if (si && value !== 0) {
    const a = Math.max(Math.abs(value), step);
    for (const [div, sfx] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'k']] as const) {
      if (a >= div) {
        v = value / div;
        s = step / div;
        suffix = sfx;
        break;
      }
    }
  }
  const decimals = Math.min(10, Math.max(0, -Math.floor(Math.log10(s) + 1e-9)));
  let text = v.toFixed(decimals);
  if (/^-0(\.0*)?$/.test(text)) text = text.slice(1);
  return text + suffix;
}

// ---------------------------------------------------------------------------------------------------------------
// Scene

interface Panel {
  title: string;
  xLabel: string;
  /** Default 'loss'. */
  yLabel?: string;
  siX: boolean;
  series: Series[];
}

function panelItems(panel: Panel, box: { x: number; y: number; width: number; height: number }, o: Required<LossFigureOptions>): SceneItem[] {
  const items: SceneItem[] = [];
  const m = { left: 72, right: 34, top: 36, bottom: 56 };
  const px = box.x + m.left;
  const py = box.y + m.top;
  const pw = box.width - m.left - m.right;
  const ph = box.height - m.top - m.bottom;
  const all = panel.series.flatMap((s) => s.points);
  // x: the domain ends at the last point (ticks inside it); y: expanded to whole ticks.
  // (a loop, not Math.min(...spread): long runs have more points than a call may take arguments)
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const p of all) {
    x0 = Math.min(x0, p.x);
    x1 = Math.max(x1, p.x);
    y0 = Math.min(y0, p.y);
    y1 = Math.max(y1, p.y);
  }
  const xs = niceScale(x0, x1, 5, all.length > 1, true);
  const ys = niceScale(y0, y1);
  const sx = (x: number): number => px + ((x - xs.lo) / (xs.hi - xs.lo)) * pw;
  const sy = (y: number): number => py + ph - ((y - ys.lo) / (ys.hi - ys.lo)) * ph;

  items.push({ kind: 'text', x: px + pw / 2, y: box.y + 16, text: panel.title, anchor: 'middle', color: TEXT_COLOR, size: 14 });
  for (const t of xs.ticks) {
    const x = Math.round(sx(t)) + 0.5;
    items.push({ kind: 'line', x1: x, y1: py, x2: x, y2: py + ph, color: GRID_COLOR, width: 1 });
    items.push({ kind: 'line', x1: x, y1: py + ph, x2: x, y2: py + ph + 5, color: AXIS_COLOR, width: 1 });
    items.push({ kind: 'text', x, y: py + ph + 16, text: formatTick(t, xs.step, panel.siX), anchor: 'middle', color: TEXT_COLOR, size: 12 });
  }
  for (const t of ys.ticks) {
    const y = Math.round(sy(t)) + 0.5;
    items.push({ kind: 'line', x1: px, y1: y, x2: px + pw, y2: y, color: GRID_COLOR, width: 1 });
    items.push({ kind: 'line', x1: px - 5, y1: y, x2: px, y2: y, color: AXIS_COLOR, width: 1 });
    items.push({ kind: 'text', x: px - 8, y, text: formatTick(t, ys.step), anchor: 'end', color: TEXT_COLOR, size: 12 });
  }
  const left = Math.round(px) + 0.5;
  const bottom = Math.round(py + ph) + 0.5;
  items.push({ kind: 'line', x1: left, y1: py, x2: left, y2: bottom, color: AXIS_COLOR, width: 1 });
  items.push({ kind: 'line', x1: left, y1: bottom, x2: px + pw, y2: bottom, color: AXIS_COLOR, width: 1 });
  items.push({ kind: 'text', x: px + pw / 2, y: py + ph + 40, text: panel.xLabel, anchor: 'middle', color: TEXT_COLOR, size: 12 });
  items.push({ kind: 'text', x: box.x + 16, y: py + ph / 2, text: panel.yLabel ?? 'loss', anchor: 'middle', color: TEXT_COLOR, size: 12, vertical: true });

  for (const s of panel.series) {
    const pts = decimate(s.points, o.maxPoints).map((p) => ({ x: sx(p.x), y: sy(p.y) }));
    if (pts.length === 0) continue;
    items.push({ kind: 'polyline', series: s.name, points: pts, color: s.color, width: 2 });
    if (pts.length <= o.markersUpTo) {
      for (const p of pts) items.push({ kind: 'marker', series: s.name, x: p.x, y: p.y, r: 3, color: s.color });
    }
  }
  if (all.length === 0) {
    items.push({ kind: 'text', x: px + pw / 2, y: py + ph / 2, text: 'no data yet', anchor: 'middle', color: TEXT_COLOR, size: 12 });
  }
  // legend, top right inside the plot
  const shown = panel.series.filter((s) => s.points.length > 0);
  // Room for the names at 12 px per character at size 12 (wider than DejaVu Sans' glyphs).
  const legendWidth = 36 + Math.max(0, ...shown.map((s) => s.name.length)) * 12;
  shown.forEach((s, i) => {
    const ly = py + 14 + i * 20;
    const lx = px + pw - legendWidth - 6;
    items.push({ kind: 'line', x1: lx, y1: ly, x2: lx + 24, y2: ly, color: s.color, width: 2 });
    items.push({ kind: 'text', x: lx + 30, y: ly, text: s.name, anchor: 'start', color: TEXT_COLOR, size: 12 });
  });
  return items;
}

/** The two-panel loss figure (steps left, tokens seen right) for the given metrics records. */
export function buildLossFigure(records: readonly MetricRecord[], options: LossFigureOptions = {}): Scene {
  const o: Required<LossFigureOptions> = { width: 1200, height: 450, maxPoints: 1000, markersUpTo: 60, ...options };
  const bySteps = lossSeries(records, 'step');
  const byTokens = lossSeries(records, 'tokensSeen');
  const series = (d: { train: Point[]; val: Point[] }): Series[] => [
    { name: 'train', color: TRAIN_COLOR, points: d.train },
    { name: 'validation', color: VAL_COLOR, points: d.val },
  ];
  const half = Math.floor(o.width / 2);
  const items: SceneItem[] = [{ kind: 'rect', x: 0, y: 0, width: o.width, height: o.height, fill: '#ffffff' }];
  items.push(...panelItems({ title: 'Loss vs optimizer steps', xLabel: 'optimizer step', siX: false, series: series(bySteps) }, { x: 0, y: 0, width: half, height: o.height }, o));
  items.push(...panelItems({ title: 'Loss vs tokens seen', xLabel: 'tokens seen', siX: true, series: series(byTokens) }, { x: half, y: 0, width: o.width - half, height: o.height }, o));
  return { width: o.width, height: o.height, items };
}

/** A metric of train (or val) records against steps, non-finite values dropped. */
export function metricSeries(records: readonly MetricRecord[], type: 'train' | 'val', key: string): Point[] {
  return records
    .filter((r) => r.type === type)
    .map((r) => ({ x: r.step, y: r[key] }))
    .filter((p): p is Point => Number.isFinite(p.x) && typeof p.y === 'number' && Number.isFinite(p.y))
    .sort((a, b) => a.x - b.x);
}

/**
 * DPO runs (records with `rewards/chosen`): rewards chosen / rejected / margins (left) and reward accuracy (right)
 * against optimizer steps, train and validation. Null when the records have no rewards.
 */
export function buildRewardsFigure(records: readonly MetricRecord[], options: LossFigureOptions = {}): Scene | null {
  if (!records.some((r) => typeof r['rewards/chosen'] === 'number')) return null;
  const o: Required<LossFigureOptions> = { width: 1200, height: 450, maxPoints: 1000, markersUpTo: 60, ...options };
  const half = Math.floor(o.width / 2);
  const s = (name: string, color: string, type: 'train' | 'val', key: string): Series => ({ name, color, points: metricSeries(records, type, key) });
  const rewards: Series[] = [
    s('chosen', '#2ca02c', 'train', 'rewards/chosen'),
    s('rejected', '#d62728', 'train', 'rewards/rejected'),
    s('margin', TRAIN_COLOR, 'train', 'rewards/margins'),
    s('val margin', VAL_COLOR, 'val', 'rewards/margins'),
  ];
  const accuracy: Series[] = [s('train', TRAIN_COLOR, 'train', 'rewards/accuracies'), s('validation', VAL_COLOR, 'val', 'rewards/accuracies')];
  const items: SceneItem[] = [{ kind: 'rect', x: 0, y: 0, width: o.width, height: o.height, fill: '#ffffff' }];
  items.push(...panelItems({ title: 'DPO rewards vs optimizer steps', xLabel: 'optimizer step', yLabel: 'reward', siX: false, series: rewards }, { x: 0, y: 0, width: half, height: o.height }, o));
  items.push(...panelItems({ title: 'Reward accuracy vs optimizer steps', xLabel: 'optimizer step', yLabel: 'accuracy', siX: false, series: accuracy }, { x: half, y: 0, width: o.width - half, height: o.height }, o));
  return { width: o.width, height: o.height, items };
}

// ---------------------------------------------------------------------------------------------------------------
// SVG

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const num = (v: number): string => String(Math.round(v * 100) / 100);

export function renderSvg(scene: Scene): string {
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" viewBox="0 0 ${scene.width} ${scene.height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
  ];
  for (const it of scene.items) {
    switch (it.kind) {
      case 'rect':
        out.push(`<rect x="${num(it.x)}" y="${num(it.y)}" width="${num(it.width)}" height="${num(it.height)}" fill="${it.fill}"/>`);
        break;
      case 'line':
        out.push(`<line x1="${num(it.x1)}" y1="${num(it.y1)}" x2="${num(it.x2)}" y2="${num(it.y2)}" stroke="${it.color}" stroke-width="${it.width}"/>`);
        break;
      case 'polyline':
        out.push(
          `<polyline class="series" data-series="${esc(it.series)}" fill="none" stroke="${it.color}" stroke-width="${it.width}" stroke-linejoin="round" stroke-linecap="round" points="${it.points.map((p) => `${num(p.x)},${num(p.y)}`).join(' ')}"/>`,
        );
        break;
      case 'marker':
        out.push(`<circle class="marker" data-series="${esc(it.series)}" cx="${num(it.x)}" cy="${num(it.y)}" r="${it.r}" fill="${it.color}"/>`);
        break;
      case 'text': {
        const transform = it.vertical ? ` transform="rotate(-90 ${num(it.x)} ${num(it.y)})"` : '';
        out.push(
          `<text x="${num(it.x)}" y="${num(it.y)}" font-size="${it.size}" fill="${it.color}" text-anchor="${it.anchor}" dominant-baseline="middle"${transform}>${esc(it.text)}</text>`,
        );
        break;
      }
    }
  }
  out.push('</svg>', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// PNG: the SVG rasterised by resvg (@resvg/resvg-js), text in a real font

/**
 * Font options for resvg: the system's fonts, plus the font files named in SFTKIT_PLOT_FONT (paths separated by the
 * platform's delimiter, e.g. a TTF/OTF for machines without fonts). resvg falls back to any loaded font when none of
 * the SVG's families (DejaVu Sans, Helvetica, Arial, sans-serif) is installed.
 */
export function plotFontOptions(env: NodeJS.ProcessEnv = process.env): NonNullable<ResvgRenderOptions['font']> {
  const files = (env.SFTKIT_PLOT_FONT ?? '').split(delimiter).filter((f) => f.length > 0);
  return { loadSystemFonts: true, ...(files.length > 0 ? { fontFiles: files } : {}) };
}

type FontOptions = NonNullable<ResvgRenderOptions['font']>;

const fontProbes = new Map<string, boolean>();

/** Whether resvg draws text with these font options (a word rendered on a tiny canvas leaves ink); cached. */
export function hasPlotFont(font: FontOptions = plotFontOptions()): boolean {
  const key = JSON.stringify(font);
  let ok = fontProbes.get(key);
  if (ok === undefined) {
    const probe =
      '<svg xmlns="http://www.w3.org/2000/svg" width="48" height="24" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">' +
      '<text x="2" y="12" font-size="14" fill="#000" dominant-baseline="middle">Ag</text></svg>';
    const pixels = new Resvg(probe, { font, logLevel: 'off' }).render().pixels;
    ok = false;
    for (let i = 3; i < pixels.length && !ok; i += 4) ok = pixels[i]! > 0;
    fontProbes.set(key, ok);
  }
  return ok;
}

let fontWarned = false;

export interface RenderPngOptions {
  /** resvg's font options (default plotFontOptions()). */
  font?: FontOptions;
  /** Where the one "no font" note goes (default: a line on process.stderr). */
  log?: (message: string) => void;
}

/**
 * The scene as a PNG of the same size: renderSvg's SVG rasterised by resvg. Without any usable font the curves, axes
 * and legend lines still render, only the text is missing; that is said once per process, never an error.
 */
export function renderPng(scene: Scene, options: RenderPngOptions = {}): Buffer {
  const font = options.font ?? plotFontOptions();
  if (!fontWarned && !hasPlotFont(font)) {
    fontWarned = true;
    (options.log ?? ((m: string) => process.stderr.write(`${m}\n`)))(
      'sftkit: no font found for the PNG curves: they are drawn without text (the SVG has it); install a font (e.g. DejaVu Sans) or set SFTKIT_PLOT_FONT=/path/to/font.ttf',
    );
  }
  return new Resvg(renderSvg(scene), { font, fitTo: { mode: 'original' }, background: '#ffffff', logLevel: 'off' }).render().asPng();
}

async function writeScene(scene: Scene, outDir: string, basename: string): Promise<{ svg: string; png: string }> {
  const svg = join(outDir, `${basename}.svg`);
  const png = join(outDir, `${basename}.png`);
  await writeFileAtomic(svg, renderSvg(scene));
  await writeFileAtomic(png, renderPng(scene));
  return { svg, png };
}

/**
 * Writes OUT/<basename>.svg and OUT/<basename>.png (each atomically, src/shared/atomic-write.ts), and for DPO runs also
 * OUT/rewards.svg and OUT/rewards.png. Returns the loss plot's paths.
 */
export async function writeLossPlots(
  records: readonly MetricRecord[],
  outDir: string,
  options: LossFigureOptions & { basename?: string } = {},
): Promise<{ svg: string; png: string }> {
  const { basename = 'loss', ...figure } = options;
  const paths = await writeScene(buildLossFigure(records, figure), outDir, basename);
  const rewards = buildRewardsFigure(records, figure);
  if (rewards) await writeScene(rewards, outDir, basename === 'loss' ? 'rewards' : `${basename}-rewards`);
  return paths;
}

/**
 * The metrics listener that draws the curves: at every metric event of the loop (each validation, the end of the
 * run) metrics.jsonl is read and OUT/loss.svg, OUT/loss.png (and for DPO OUT/rewards.svg, OUT/rewards.png) rewritten.
 */
export const plotListener: MetricListener = async (event) => {
  await writeLossPlots(event.records(), event.out);
};
