// Playground: chat with a model, the reply streamed token by token, with the sampling settings; with "compare" a
// second model (e.g. the base next to the fine-tuned one) answers the same conversation side by side.
import { listFiles, postEvents } from './api.ts';
import { clear, field, h, pathInput, select } from './dom.ts';

const TEMPLATES = ['auto', 'model', 'chatml', 'alpaca', 'phi3', 'plain', 'none'];

interface Turn {
  role: 'user' | 'assistant';
  content: string;
}

class Column {
  readonly el: HTMLElement;
  readonly path = pathInput('model', 'model directory');
  readonly transcript = h('div', { class: 'transcript' });
  readonly stats = h('p', { class: 'hint stats' });
  history: Turn[] = [];

  constructor(title: string) {
    this.el = h('div', { class: 'column card' }, field(title, this.path.input), this.path.list, this.transcript, this.stats);
  }

  reset(): void {
    this.history = [];
    clear(this.transcript);
    this.stats.textContent = '';
  }
}

export class PlaygroundView {
  readonly el: HTMLElement;
  private readonly a = new Column('Model');
  private readonly b = new Column('Compare with');
  private readonly compare = h('input', { type: 'checkbox', name: 'compare' });
  private readonly template = select('template', TEMPLATES, 'auto');
  private readonly system = h('input', { type: 'text', name: 'system', placeholder: 'system prompt (optional)' });
  private readonly maxNew = h('input', { type: 'number', name: 'maxNewTokens', value: 128, min: 1, max: 4096, class: 'short' });
  private readonly temperature = h('input', { type: 'number', name: 'temperature', value: 0.7, min: 0, max: 10, step: 0.05, class: 'short' });
  private readonly topK = h('input', { type: 'number', name: 'topK', value: 40, min: 0, class: 'short' });
  private readonly topP = h('input', { type: 'number', name: 'topP', value: 0.95, min: 0.01, max: 1, step: 0.01, class: 'short' });
  private readonly seed = h('input', { type: 'number', name: 'seed', placeholder: 'random', min: 0, class: 'short' });
  private readonly prompt = h('textarea', { name: 'prompt', rows: 3, placeholder: 'Message (Enter sends, Shift+Enter: new line)' });
  private readonly send = h('button', { type: 'submit', class: 'primary' }, 'Send');
  private readonly stop = h('button', { type: 'button', disabled: true }, 'Stop');
  private abort: AbortController | undefined;
  private loaded = false;

  constructor() {
    this.b.el.hidden = true;
    this.compare.addEventListener('change', () => (this.b.el.hidden = !this.compare.checked));
    this.prompt.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    this.stop.addEventListener('click', () => this.abort?.abort());
    const form = h('form', { class: 'composer card', onsubmit: (e: Event) => (e.preventDefault(), void this.run()) },
      this.prompt,
      h('div', { class: 'row' }, this.send, this.stop, h('button', { type: 'button', onclick: () => (this.a.reset(), this.b.reset()) }, 'Reset')));
    this.el = h('section', { class: 'view', id: 'view-playground' },
      h('div', { class: 'card form-grid' },
        field('Template', this.template, 'none: continue the text as it is'),
        field('System', this.system),
        field('Max new tokens', this.maxNew), field('Temperature', this.temperature, '0 = greedy'),
        field('Top-k', this.topK, '0 = off'), field('Top-p', this.topP), field('Seed', this.seed),
        h('label', { class: 'field inline' }, this.compare, ' compare two models')),
      h('div', { class: 'columns' }, this.a.el, this.b.el),
      form);
  }

  show(): void {
    if (this.loaded) return;
    this.loaded = true;
    void listFiles('model').then((p) => (this.a.path.fill(p), this.b.path.fill(p))).catch(() => undefined);
  }

  hide(): void {}

  private sampling(): Record<string, number> {
    const out: Record<string, number> = {};
    const num = (el: HTMLInputElement, key: string) => {
      if (el.value.trim() !== '') out[key] = Number(el.value);
    };
    num(this.maxNew, 'maxNewTokens');
    num(this.temperature, 'temperature');
    num(this.topK, 'topK');
    num(this.topP, 'topP');
    num(this.seed, 'seed');
    return out;
  }

  private async run(): Promise<void> {
    const text = this.prompt.value;
    if (text.trim() === '' || this.abort) return;
    const columns = this.compare.checked ? [this.a, this.b] : [this.a];
    this.prompt.value = '';
    this.abort = new AbortController();
    this.send.disabled = true;
    this.stop.disabled = false;
    try {
      await Promise.all(columns.map((c) => this.reply(c, text, this.abort!.signal)));
    } finally {
      this.abort = undefined;
      this.send.disabled = false;
      this.stop.disabled = true;
    }
  }

  private async reply(c: Column, text: string, signal: AbortSignal): Promise<void> {
    c.history.push({ role: 'user', content: text });
    c.transcript.append(h('div', { class: 'msg user' }, text));
    const bubble = h('div', { class: 'msg assistant streaming' });
    c.transcript.append(bubble);
    c.stats.textContent = 'loading the model…';
    const system = this.system.value.trim();
    const template = this.template.value;
    let reply = '';
    try {
      const events = postEvents('/api/chat', {
        model: c.path.input.value.trim(),
        messages: [...(system ? [{ role: 'system', content: system }] : []), ...c.history],
        ...(template !== 'auto' ? { template } : {}),
        sampling: this.sampling(),
      }, signal);
      for await (const ev of events) {
        const d = ev.data as Record<string, unknown>;
        if (ev.event === 'start') c.stats.textContent = `template ${String(d.template)} · ${String(d.promptTokens)} prompt tokens`;
        else if (ev.event === 'message') {
          reply += String(d.text);
          bubble.textContent = reply;
          c.transcript.scrollTop = c.transcript.scrollHeight;
        } else if (ev.event === 'done') {
          const tps = typeof d.tokensPerSec === 'number' ? d.tokensPerSec.toFixed(1) : '–';
          c.stats.textContent = `${String(d.tokens)} tokens in ${((d.ms as number) / 1000).toFixed(2)} s (${tps} tokens/s)`;
        } else if (ev.event === 'error') throw new Error(String(d.error));
      }
    } catch (e) {
      if ((e as Error).name === 'AbortError') c.stats.textContent = 'stopped';
      else {
        bubble.classList.add('error');
        bubble.textContent = `${reply}${reply ? '\n' : ''}${(e as Error).message}`;
        c.stats.textContent = '';
      }
    } finally {
      bubble.classList.remove('streaming');
      if (reply === '' && !bubble.classList.contains('error')) bubble.textContent = '(no text)';
      c.history.push({ role: 'assistant', content: reply.trim() });
    }
  }
}
