// Mask inspector: a model (tokenizer) directory and a data file, paged; each example as the model reads it, trained
// tokens highlighted and masked ones dimmed, token ids on hover, and the counts of the whole file. The server runs
// the same engine as `sftkit inspect`.
import type { InspectedView, InspectPage } from '../inspector.ts';
import { getJson, listFiles } from './api.ts';
import { append, clear, compact, field, h, pathInput, select } from './dom.ts';

const FORMATS = ['auto', 'alpaca', 'instruct', 'prompt-completion', 'chat', 'sharegpt', 'text', 'preference'];
const TEMPLATES = ['auto', 'alpaca', 'plain', 'chatml', 'phi3', 'model'];
const MASKS = ['auto', 'completion', 'assistant', 'last-assistant', 'all', 'pretrain'];

export class InspectorView {
  readonly el: HTMLElement;
  private readonly model = pathInput('model', 'model directory (tokenizer.json)');
  private readonly data = pathInput('data', 'data file (.json, .jsonl, .parquet, .csv, .tsv) or dataset directory');
  private readonly format = select('format', FORMATS, 'auto');
  private readonly template = select('template', TEMPLATES, 'auto');
  private readonly mask = select('mask', MASKS, 'auto');
  private readonly maxLength = h('input', { type: 'number', name: 'maxLength', min: 2, placeholder: 'none', class: 'short' });
  private readonly truncation = select('truncation', ['cut', 'drop'], 'cut');
  private readonly fieldMap = h('input', { type: 'text', name: 'fieldMap', placeholder: 'instruction=question,…', spellcheck: 'false' });
  private readonly addTokens = h('input', { type: 'checkbox', name: 'addSpecialTokens' });
  private readonly pageSize = select('limit', ['5', '10', '20', '50'], '10');
  private readonly summary = h('div', { class: 'summary' });
  private readonly pager = h('div', { class: 'pager' });
  private readonly list = h('div', { class: 'examples' });
  private readonly tip = h('div', { class: 'tooltip', hidden: true });
  private offset = 0;
  private loaded = false;
  private busy = false;

  constructor() {
    const form = h('form', { class: 'card form-grid', onsubmit: (e: Event) => (e.preventDefault(), (this.offset = 0), void this.load()) },
      field('Model', this.model.input), this.model.list,
      field('Data', this.data.input), this.data.list,
      field('Format', this.format), field('Template', this.template), field('Mask', this.mask),
      field('Max length', this.maxLength), field('Longer ones', this.truncation), field('Field map', this.fieldMap),
      h('label', { class: 'field inline', title: 'add the tokens the template needs but the tokenizer lacks (e.g. ChatML on GPT-2)' }, this.addTokens, ' add special tokens'),
      field('Per page', this.pageSize),
      h('button', { type: 'submit', class: 'primary' }, 'Inspect'));
    this.list.addEventListener('mouseover', (e) => this.hover(e));
    this.list.addEventListener('mouseleave', () => (this.tip.hidden = true));
    this.el = h('section', { class: 'view', id: 'view-inspect' },
      form,
      h('p', { class: 'legend' }, h('span', { class: 'tok trained' }, 'trained'), ' ', h('span', { class: 'tok masked' }, 'masked'), ' — hover a token for its id'),
      this.summary, this.pager, this.list, this.tip);
  }

  show(): void {
    if (this.loaded) return;
    this.loaded = true;
    void listFiles('model').then((p) => this.model.fill(p)).catch(() => undefined);
    void listFiles('data').then((p) => this.data.fill(p)).catch(() => undefined);
  }

  hide(): void {}

  private async load(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.summary.textContent = 'reading…';
    this.summary.className = 'summary';
    try {
      const page = await getJson<InspectPage>('/api/inspect', {
        model: this.model.input.value.trim(),
        data: this.data.input.value.trim(),
        format: this.format.value,
        template: this.template.value === 'auto' ? undefined : this.template.value,
        mask: this.mask.value === 'auto' ? undefined : this.mask.value,
        maxLength: this.maxLength.value || undefined,
        truncation: this.maxLength.value ? this.truncation.value : undefined,
        fieldMap: this.fieldMap.value.trim() || undefined,
        addSpecialTokens: this.addTokens.checked || undefined,
        offset: this.offset,
        limit: this.pageSize.value,
      });
      this.render(page);
    } catch (e) {
      this.summary.textContent = (e as Error).message;
      this.summary.className = 'summary message error';
      clear(this.list);
      clear(this.pager);
    } finally {
      this.busy = false;
    }
  }

  private render(page: InspectPage): void {
    const s = page.summary;
    const reasons = Object.entries(s.dropped).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`);
    clear(this.summary);
    append(this.summary,
      h('span', {}, `format ${page.format} · template ${page.template} · mask ${page.mask}${page.maxLength ? ` · max length ${page.maxLength} (${page.truncation})` : ''}`),
      h('span', { class: 'counts' },
        h('b', { 'data-count': 'examples' }, String(s.examples)), ' examples · ',
        h('b', { 'data-count': 'kept' }, String(s.kept)), ' kept · ',
        h('b', { 'data-count': 'dropped' }, String(s.droppedTotal)), ` dropped${reasons.length ? ` (${reasons.join(', ')})` : ''} · `,
        h('b', {}, String(s.truncated)), ' truncated · ',
        h('b', { class: 'trained-count', 'data-count': 'trained' }, compact(s.trainedTokens)), ' trained / ',
        h('b', { class: 'masked-count', 'data-count': 'masked' }, compact(s.maskedTokens)), ' masked tokens'),
      page.addedTokens.length ? h('span', {}, `added tokens: ${page.addedTokens.map((a) => `${a.content}=${a.id}`).join(' ')}`) : null,
      ...page.warnings.map((w) => h('span', { class: 'message warning', 'data-warning': 'unk' }, `⚠ ${w}`)),
    );
    clear(this.pager);
    const last = Math.min(s.examples, page.offset + page.limit);
    this.pager.append(
      h('button', { type: 'button', disabled: page.offset === 0, onclick: () => this.go(page.offset - page.limit) }, '‹ previous'),
      h('span', {}, s.examples ? `examples ${page.offset + 1}–${last} of ${s.examples}` : 'no examples'),
      h('button', { type: 'button', disabled: last >= s.examples, onclick: () => this.go(page.offset + page.limit) }, 'next ›'),
    );
    clear(this.list);
    for (const ex of page.examples) this.list.append(this.card(ex));
  }

  private go(offset: number): void {
    this.offset = Math.max(0, offset);
    void this.load();
  }

  private card(ex: InspectedView): HTMLElement {
    const where = `#${ex.record} · ${ex.file.split('/').pop()}:${ex.line}`;
    const head = ex.kept
      ? `${where} · ${ex.tokens} tokens · ${ex.trainedTokens} trained · ${ex.maskedTokens} masked${ex.truncated ? ' · truncated' : ''}`
      : `${where} · dropped (${ex.reason}, ${ex.tokens} tokens)`;
    const text = h('pre', { class: 'tokens' });
    if (ex.kept) {
      for (const p of ex.pieces) {
        text.append(h('span', { class: `tok ${p.trained ? 'trained' : 'masked'}`, 'data-ids': p.ids.join(' '), title: `token id${p.ids.length > 1 ? 's' : ''} ${p.ids.join(', ')}` }, p.text));
      }
    } else {
      for (const seg of ex.segments) text.append(h('span', { class: `seg ${seg.trained ? 'trained' : 'masked'}` }, seg.text));
    }
    return h('article', { class: `example card ${ex.kept ? '' : 'dropped'}`, 'data-index': ex.index }, h('header', {}, head), text);
  }

  private hover(e: Event): void {
    const t = e.target as HTMLElement;
    if (!t.classList.contains('tok') || !t.dataset.ids) {
      this.tip.hidden = true;
      return;
    }
    const r = t.getBoundingClientRect();
    this.tip.textContent = `${t.classList.contains('trained') ? 'trained' : 'masked'} · id ${t.dataset.ids} · ${JSON.stringify(t.textContent)}`;
    this.tip.style.left = `${r.left + window.scrollX}px`;
    this.tip.style.top = `${r.bottom + window.scrollY + 4}px`;
    this.tip.hidden = false;
  }
}
