// Runs: the table of run directories (status, steps, losses, tokens, throughput), the curves of the selected runs
// overlaid (loss, learning rate, gradient norm against steps or tokens, with smoothing), kept live through each
// run's event stream, and the selected run's config.
import type { MetricRecord } from '../../report/index.ts';
import type { RunDetail, RunHolder, RunSummary } from '../runs.ts';
import { getJson } from './api.ts';
import { MetricChart, PALETTE } from './charts.ts';
import { ago, append, clear, compact, fixed, h } from './dom.ts';
import { chartData, type XAxis } from './series.ts';

interface Followed {
  records: MetricRecord[];
  source: EventSource | undefined;
}

const REFRESH_MS = 3000;

export class RunsView {
  readonly el: HTMLElement;
  private runs: RunSummary[] = [];
  private readonly selected = new Set<string>();
  private readonly followed = new Map<string, Followed>();
  private readonly colours = new Map<string, string>();
  private axis: XAxis = 'step';
  private smoothing = 0.6;
  private detailName: string | undefined;
  private readonly table = h('tbody');
  private readonly detail = h('section', { class: 'run-detail', hidden: true });
  private readonly message = h('p', { class: 'message' });
  private readonly charts = {
    loss: new MetricChart('loss', 'Loss', 'loss'),
    lr: new MetricChart('lr', 'Learning rate', 'lr'),
    gradNorm: new MetricChart('gradNorm', 'Gradient norm (before clipping)', 'grad norm'),
  };
  private renderQueued = false;
  private timer: number | undefined;
  private firstLoad = true;

  constructor() {
    const axisSelect = h('select', { name: 'axis', onchange: (e: Event) => ((this.axis = (e.target as HTMLSelectElement).value as XAxis), this.queueRender()) },
      h('option', { value: 'step' }, 'steps'), h('option', { value: 'tokens' }, 'tokens seen'));
    const smoothValue = h('output', {}, String(this.smoothing));
    const smooth = h('input', {
      type: 'range', name: 'smoothing', min: 0, max: 0.99, step: 0.01, value: this.smoothing,
      oninput: (e: Event) => {
        this.smoothing = Number((e.target as HTMLInputElement).value);
        smoothValue.textContent = this.smoothing.toFixed(2);
        this.queueRender();
      },
    });
    const logY = h('input', { type: 'checkbox', name: 'logy', onchange: (e: Event) => (this.charts.loss.setLogScale((e.target as HTMLInputElement).checked), this.queueRender()) });
    this.el = h('section', { class: 'view', id: 'view-runs' },
      h('div', { class: 'card' },
        h('table', { class: 'runs' },
          h('thead', {}, h('tr', {}, ...['', 'run', 'status', 'steps', 'tokens', 'tokens/s', 'train loss', 'best val loss', 'updated'].map((t) => h('th', {}, t)))),
          this.table),
        this.message),
      h('div', { class: 'controls' },
        h('label', {}, 'x axis ', axisSelect),
        h('label', {}, 'smoothing ', smooth, ' ', smoothValue),
        h('label', {}, logY, ' log loss')),
      h('div', { class: 'charts' }, this.charts.loss.el, this.charts.lr.el, this.charts.gradNorm.el),
      this.detail);
  }

  show(): void {
    void this.refresh();
    this.timer ??= window.setInterval(() => void this.refresh(), REFRESH_MS);
  }

  hide(): void {
    if (this.timer !== undefined) window.clearInterval(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    try {
      this.runs = await getJson<RunSummary[]>('/api/runs');
      this.message.textContent = this.runs.length ? '' : 'No runs yet: a run directory is one with a metrics.jsonl (sftkit train --out DIR writes one).';
      this.message.classList.remove('error');
    } catch (e) {
      this.message.textContent = `Cannot list the runs: ${(e as Error).message}`;
      this.message.classList.add('error');
      return;
    }
    const names = new Set(this.runs.map((r) => r.name));
    for (const n of [...this.selected]) if (!names.has(n)) this.toggle(n, false);
    if (this.firstLoad && this.runs[0]) {
      this.firstLoad = false;
      this.toggle(this.runs[0].name, true);
      void this.showDetail(this.runs[0].name);
    }
    this.renderTable();
  }

  private colour(name: string): string {
    let c = this.colours.get(name);
    if (!c) {
      c = PALETTE[this.colours.size % PALETTE.length]!;
      this.colours.set(name, c);
    }
    return c;
  }

  private renderTable(): void {
    clear(this.table);
    for (const r of this.runs) {
      const on = this.selected.has(r.name);
      const status = r.stale ? 'failed (stale)' : r.status;
      const row = h('tr', { class: on ? 'selected' : '', 'data-run': r.name },
        h('td', {}, h('input', { type: 'checkbox', checked: on, title: 'plot this run', onchange: (e: Event) => this.toggle(r.name, (e.target as HTMLInputElement).checked) }),
          on ? h('span', { class: 'swatch', style: `background:${this.colour(r.name)}` }) : null),
        h('td', {}, h('a', { href: '#runs', class: 'run-name', onclick: (e: Event) => (e.preventDefault(), void this.showDetail(r.name)) }, r.name)),
        h('td', {}, h('span', { class: `status status-${r.stale ? 'stale' : r.status}`, title: [r.statusDetail, r.holder ? heldBy(r.holder) : null].filter(Boolean).join('\n') }, status)),
        h('td', { class: 'num' }, compact(r.steps)),
        h('td', { class: 'num' }, compact(r.tokens)),
        h('td', { class: 'num' }, compact(r.tokensPerSec)),
        h('td', { class: 'num' }, fixed(r.lastTrainLoss)),
        h('td', { class: 'num' }, fixed(r.bestValLoss)),
        h('td', { title: r.updatedAt ?? '' }, ago(r.updatedAt)));
      this.table.append(row);
    }
  }

  private toggle(name: string, on: boolean): void {
    if (on && !this.selected.has(name)) {
      this.selected.add(name);
      const f: Followed = { records: [], source: undefined };
      this.followed.set(name, f);
      void this.follow(name, f);
    } else if (!on && this.selected.has(name)) {
      this.selected.delete(name);
      this.followed.get(name)?.source?.close();
      this.followed.delete(name);
    }
    this.renderTable();
    this.queueRender();
  }

  /** The records so far, then the event stream from there (no record missed or doubled). */
  private async follow(name: string, f: Followed): Promise<void> {
    const path = `/api/runs/${encodeURIComponent(name)}`;
    try {
      f.records = await getJson<MetricRecord[]>(`${path}/metrics`);
    } catch (e) {
      this.message.textContent = `${name}: ${(e as Error).message}`;
      return;
    }
    if (this.followed.get(name) !== f) return;
    this.queueRender();
    const source = new EventSource(`${path}/events?after=${f.records.length}`);
    f.source = source;
    source.onmessage = (e) => {
      f.records.push(JSON.parse(e.data as string) as MetricRecord);
      this.queueRender();
    };
    source.addEventListener('reset', () => {
      f.records = [];
      this.queueRender();
    });
  }

  private queueRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.renderCharts();
    });
  }

  private renderCharts(): void {
    const runs = [...this.selected].map((name) => ({ name, records: this.followed.get(name)?.records ?? [] }));
    const colours = new Map(runs.map((r) => [r.name, this.colour(r.name)]));
    this.charts.loss.update(chartData(runs, 'loss', this.axis, this.smoothing), this.axis, colours);
    this.charts.lr.update(chartData(runs, 'lr', this.axis, 0), this.axis, colours);
    this.charts.gradNorm.update(chartData(runs, 'gradNorm', this.axis, this.smoothing), this.axis, colours);
  }

  private async showDetail(name: string): Promise<void> {
    this.detailName = name;
    let d: RunDetail;
    try {
      d = await getJson<RunDetail>(`/api/runs/${encodeURIComponent(name)}`);
    } catch (e) {
      this.detail.hidden = false;
      clear(this.detail);
      this.detail.append(h('p', { class: 'message error' }, `${name}: ${(e as Error).message}`));
      return;
    }
    if (this.detailName !== name) return;
    clear(this.detail);
    this.detail.hidden = false;
    const config = d.config ? Object.entries(d.config).filter(([, v]) => v !== undefined && v !== null) : [];
    append(this.detail,
      h('h2', {}, d.name),
      h('p', { class: 'path' }, d.path),
      d.holder ? h('p', { class: 'holder' }, heldBy(d.holder)) : null,
      d.statusDetail ? h('p', { class: `message ${d.status === 'failed' ? 'error' : ''}` }, d.statusDetail) : null,
      d.problems.length ? h('p', { class: 'message error' }, `metrics.jsonl: ${d.problems.map((p) => `line ${p.line}: ${p.error}`).join('; ')}`) : null,
      h('div', { class: 'detail-grid' },
        h('div', {},
          h('h3', {}, 'Config'),
          config.length
            ? h('table', { class: 'kv' }, ...config.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)))))
            : h('p', { class: 'hint' }, 'no sftkit_run.json')),
        h('div', {},
          h('h3', {}, 'Events'),
          d.events.length ? h('ul', { class: 'events' }, ...d.events.map((e) => h('li', {}, `step ${e.step}: ${e.message}`))) : h('p', { class: 'hint' }, 'none'),
          d.result ? h('h3', {}, 'Result') : null,
          d.result ? h('pre', { class: 'json' }, JSON.stringify(d.result, null, 2)) : null)),
    );
  }
}

/** "held by pid 123 on host box since 13:30:00 (sftkit train)": who owns the run directory. */
function heldBy(o: RunHolder): string {
  const since = new Date(o.since);
  return `held by pid ${o.pid} on host ${o.host} since ${Number.isNaN(since.getTime()) ? o.since : since.toLocaleString()}${o.command ? ` (sftkit ${o.command})` : ''}`;
}
