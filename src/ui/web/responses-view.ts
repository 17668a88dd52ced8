// Responses: the records of `sftkit eval --responses` as a table (instruction, reference, model response, judge
// score), the distribution of the scores as a histogram (a bar filters the table), sortable by score.
import type { ResponseRecord } from '../../eval/judge.ts';
import type { ScoreStats } from '../responses.ts';
import { getJson, listFiles } from './api.ts';
import { clear, field, fixed, h, pathInput } from './dom.ts';

export class ResponsesView {
  readonly el: HTMLElement;
  private readonly file = pathInput('file', 'responses file (.json)');
  private readonly stats = h('div', { class: 'summary' });
  private readonly histogram = h('div', { class: 'histogram' });
  private readonly filter = h('input', { type: 'search', name: 'filter', placeholder: 'filter text' });
  private readonly body = h('tbody');
  private records: ResponseRecord[] = [];
  private bin: [number, number] | undefined;
  private sort: 'file' | 'score-desc' | 'score-asc' = 'file';
  private loaded = false;

  constructor() {
    const form = h('form', { class: 'card form-grid', onsubmit: (e: Event) => (e.preventDefault(), void this.load()) },
      field('Responses file', this.file.input), this.file.list, h('button', { type: 'submit', class: 'primary' }, 'Load'));
    this.filter.addEventListener('input', () => this.renderTable());
    const scoreHead = h('th', { class: 'sortable', title: 'sort by score', onclick: () => this.cycleSort(scoreHead) }, 'score');
    this.el = h('section', { class: 'view', id: 'view-responses' },
      form, this.stats, this.histogram,
      h('div', { class: 'controls' }, this.filter),
      h('table', { class: 'responses' }, h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'instruction'), h('th', {}, 'reference output'), h('th', {}, 'model response'), scoreHead)), this.body));
  }

  show(): void {
    if (this.loaded) return;
    this.loaded = true;
    void listFiles('responses').then((p) => this.file.fill(p)).catch(() => undefined);
  }

  hide(): void {}

  private async load(): Promise<void> {
    try {
      const r = await getJson<{ records: ResponseRecord[]; stats: ScoreStats }>('/api/responses', { file: this.file.input.value.trim() });
      this.records = r.records;
      this.bin = undefined;
      this.renderStats(r.stats);
      this.renderTable();
    } catch (e) {
      clear(this.stats);
      clear(this.histogram);
      clear(this.body);
      this.stats.append(h('span', { class: 'message error' }, (e as Error).message));
    }
  }

  private renderStats(s: ScoreStats): void {
    clear(this.stats);
    this.stats.append(h('span', { class: 'counts' },
      `${s.records} responses · ${s.scored} scored · mean ${fixed(s.mean, 1)} · median ${fixed(s.median, 1)} · min ${s.min ?? '–'} · max ${s.max ?? '–'}` +
        `${s.unparseable ? ` · ${s.unparseable} unparseable` : ''}${s.unscored ? ` · ${s.unscored} not judged` : ''}`));
    clear(this.histogram);
    const top = Math.max(1, ...s.histogram.map((b) => b.count));
    for (const b of s.histogram) {
      const bar = h('button', { type: 'button', class: 'bar', title: `${b.count} with score ${b.from}–${b.to === 100 ? 100 : b.to - 1}`, 'data-count': b.count,
        onclick: () => {
          this.bin = this.bin && this.bin[0] === b.from ? undefined : [b.from, b.to];
          for (const x of this.histogram.querySelectorAll('.bar')) x.classList.toggle('active', this.bin !== undefined && x === bar);
          this.renderTable();
        } },
        h('span', { class: 'count' }, String(b.count)),
        h('span', { class: 'fill', style: `height:${Math.round((110 * b.count) / top)}px` }),
        h('span', { class: 'range' }, b.to === 100 ? '90–100' : `${b.from}–${b.to - 1}`));
      this.histogram.append(bar);
    }
    this.histogram.hidden = s.scored === 0;
  }

  private cycleSort(th: HTMLElement): void {
    this.sort = this.sort === 'file' ? 'score-desc' : this.sort === 'score-desc' ? 'score-asc' : 'file';
    th.textContent = this.sort === 'file' ? 'score' : this.sort === 'score-desc' ? 'score ↓' : 'score ↑';
    this.renderTable();
  }

  private renderTable(): void {
    const q = this.filter.value.trim().toLowerCase();
    let rows = this.records.map((r, i) => ({ r, i }));
    if (q) rows = rows.filter(({ r }) => [r.instruction, r.input ?? '', r.output, r.model_response].some((t) => t.toLowerCase().includes(q)));
    if (this.bin) {
      const [from, to] = this.bin;
      rows = rows.filter(({ r }) => typeof r.score === 'number' && r.score >= from && (to === 100 ? r.score <= 100 : r.score < to));
    }
    const score = (r: ResponseRecord) => (typeof r.score === 'number' ? r.score : -1);
    if (this.sort !== 'file') rows.sort((a, b) => (this.sort === 'score-desc' ? score(b.r) - score(a.r) : score(a.r) - score(b.r)));
    clear(this.body);
    for (const { r, i } of rows) {
      const s = typeof r.score === 'number' ? r.score : null;
      this.body.append(h('tr', {},
        h('td', { class: 'num' }, String(i)),
        h('td', {}, r.instruction, r.input ? h('div', { class: 'hint' }, r.input) : null),
        h('td', {}, r.output),
        h('td', {}, r.model_response),
        h('td', { class: s === null ? 'num score na' : 'num score', style: s === null ? '' : `--score:${s}` }, s === null ? (r.score === null ? 'n/a' : '–') : String(s))));
    }
  }
}
