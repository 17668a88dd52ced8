// A few DOM helpers for the dashboard: element construction, number and time formatting (counts: the shared
// formatCount of src/shared/format.ts, as in the progress lines).
import { formatCount } from '../../shared/format.ts';

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** `h('div', { class: 'x', onclick: fn }, 'text', child)`: attributes, `on*` listeners, children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else if (k === 'checked' && 'checked' in el) (el as HTMLInputElement).checked = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.firstChild.remove();
}

/** 1234567 -> "1.23M", 51234 -> "51.2k", 1234 -> "1.23k" (formatCount); "–" when missing. */
export function compact(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return formatCount(n);
}

export function fixed(n: number | null | undefined, digits = 4): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);
}

/** "3 min ago" style age of an ISO time. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '–';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '–';
  const s = Math.max(0, (now - t) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return new Date(t).toLocaleDateString();
}

/** A labelled form control. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control, hint ? h('span', { class: 'hint' }, hint) : null);
}

export function select(name: string, options: readonly string[], value?: string): HTMLSelectElement {
  const el = h('select', { name });
  for (const o of options) el.append(h('option', { value: o }, o));
  if (value !== undefined) el.value = value;
  return el;
}

/** A text input bound to a <datalist> that `fill` replaces. */
export function pathInput(name: string, placeholder: string): { input: HTMLInputElement; list: HTMLDataListElement; fill(paths: string[]): void } {
  const id = `list-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const list = h('datalist', { id });
  const input = h('input', { name, type: 'text', list: id, placeholder, spellcheck: 'false', autocomplete: 'off', class: 'path' });
  return {
    input,
    list,
    fill(paths) {
      clear(list);
      for (const p of paths) list.append(h('option', { value: p }));
    },
  };
}
