// Helpers shared by the templates: building merged segment lists.

import type { Message } from '../data/index.ts';
import type { Segment } from './types.ts';

/** Collects text pieces, merging neighbours with the same trained flag and dropping empty ones. */
export class SegmentBuilder {
  private readonly out: Segment[] = [];
  push(text: string, trained: boolean): this {
    if (text.length === 0) return this;
    const last = this.out[this.out.length - 1];
    if (last && last.trained === trained) last.text += text;
    else this.out.push({ text, trained });
    return this;
  }
  build(): Segment[] {
    return this.out;
  }
}

/** Merges same-flag neighbours and drops empty segments of any list. */
export function normalizeSegments(segments: readonly Segment[]): Segment[] {
  const b = new SegmentBuilder();
  for (const s of segments) b.push(s.text, s.trained);
  return b.build();
}

/** A user turn's text for styles without a separate input block: content, then the input after a blank line. */
export function contentWithInput(m: Message, separator = '\n\n'): string {
  return m.input !== undefined && m.input !== '' ? `${m.content}${separator}${m.input}` : m.content;
}

/** Text records (pretraining) under any style: the text and EOS, both trained as the message says. */
export function renderText(messages: readonly Message[], eosToken: string): Segment[] {
  const b = new SegmentBuilder();
  for (const m of messages) b.push(m.content, m.trained).push(eosToken, m.trained);
  return b.build();
}

/** Plain text of segments (what the model reads). */
export function segmentsText(segments: readonly Segment[]): string {
  return segments.map((s) => s.text).join('');
}
