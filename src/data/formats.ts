// Record formats: detection from the keys of a record and conversion of each record to an Example (Message[]).

import { dataError, invalidParameterError } from '../errors.ts';
import {
  CANONICAL_FIELDS,
  RECORD_FORMATS,
  type CanonicalField,
  type Example,
  type FieldMap,
  type Message,
  type RawRecord,
  type RecordFormat,
  type RecordLocation,
  type Role,
} from './types.ts';

/** Validates a field map (`{ canonical: 'actual key' }`). */
export function validateFieldMap(map: unknown): FieldMap {
  if (map === undefined) return {};
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw invalidParameterError('fieldMap', 'an object mapping field names to record keys', map);
  }
  const out: FieldMap = {};
  for (const [k, v] of Object.entries(map)) {
    if (!(CANONICAL_FIELDS as readonly string[]).includes(k)) {
      throw invalidParameterError(`fieldMap key "${k}"`, `one of ${CANONICAL_FIELDS.join(', ')}`, k);
    }
    if (typeof v !== 'string' || v === '') throw invalidParameterError(`fieldMap.${k}`, 'a non-empty string', v);
    out[k as CanonicalField] = v;
  }
  return out;
}

/** `--field-map instruction=question,output=answer` -> a validated FieldMap (canonical field = the record's key). */
export function parseFieldMap(text: string | undefined): FieldMap {
  if (text === undefined || text.trim() === '') return {};
  const map: Record<string, string> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) throw invalidParameterError('--field-map', 'comma-separated field=key pairs', text);
    map[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return validateFieldMap(map);
}

export function validateFormat(format: unknown): RecordFormat | 'auto' {
  if (format === undefined || format === 'auto') return 'auto';
  if (typeof format === 'string' && (RECORD_FORMATS as readonly string[]).includes(format)) {
    return format as RecordFormat;
  }
  throw invalidParameterError('format', `one of auto, ${RECORD_FORMATS.join(', ')}`, format);
}

function key(map: FieldMap, field: CanonicalField): string {
  return map[field] ?? field;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Picks the format from a record's keys (after applying the field map). Undefined when nothing fits. */
export function detectFormat(value: unknown, map: FieldMap = {}): RecordFormat | undefined {
  if (!isObject(value)) return undefined;
  const has = (f: CanonicalField) => Object.hasOwn(value, key(map, f));
  if (has('chosen') && has('rejected')) return 'preference';
  if (has('messages')) return 'chat';
  if (has('conversations')) {
    const conv = value[key(map, 'conversations')];
    const first = Array.isArray(conv) ? conv[0] : undefined;
    if (isObject(first) && Object.hasOwn(first, key(map, 'from'))) return 'sharegpt';
    return 'chat';
  }
  if (has('instruction') && has('output')) return 'alpaca';
  if (has('instruct') && has('label')) return 'instruct';
  if (has('prompt') && has('completion')) return 'prompt-completion';
  if (has('text')) return 'text';
  return undefined;
}

/** The format of a file, from its first record; a clear error when no format fits. */
export function detectFormatOrThrow(first: RawRecord, map: FieldMap = {}): RecordFormat {
  const f = detectFormat(first.value, map);
  if (f !== undefined) return f;
  const keys = isObject(first.value) ? Object.keys(first.value).join(', ') || '(none)' : typeof first.value;
  throw dataError(
    first.where,
    `cannot tell the record format from its keys (${keys}); expected {instruction, input, output}, ` +
      '{instruct, input, label}, {prompt, completion}, {messages}, {conversations}, {text} or ' +
      '{chosen, rejected}: pass --format and/or a field map',
  );
}

class Reader {
  constructor(
    readonly record: Record<string, unknown>,
    readonly where: RecordLocation,
    readonly map: FieldMap,
  ) {}
  name(f: CanonicalField): string {
    return key(this.map, f);
  }
  fail(field: string, msg: string): never {
    throw dataError({ ...this.where, field }, msg);
  }
  string(f: CanonicalField, opts: { optional?: boolean } = {}): string | undefined {
    const name = this.name(f);
    const v = this.record[name];
    if (v === undefined || (v === null && opts.optional)) {
      if (opts.optional) return undefined;
      this.fail(name, 'missing');
    }
    if (typeof v !== 'string') this.fail(name, `expected a string, found ${describe(v)}`);
    return v;
  }
  raw(f: CanonicalField): unknown {
    return this.record[this.name(f)];
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

const CHAT_ROLES: Record<string, Role> = {
  system: 'system',
  user: 'user',
  human: 'user',
  assistant: 'assistant',
  gpt: 'assistant',
  model: 'assistant',
  tool: 'tool',
};

/** A list of {role, content} (or ShareGPT {from, value}) messages; assistant turns get `trained`. */
function readMessages(r: Reader, field: string, list: unknown, sharegpt: boolean, trained: boolean): Message[] {
  if (!Array.isArray(list)) r.fail(field, `expected a list of messages, found ${describe(list)}`);
  const roleKey = r.name(sharegpt ? 'from' : 'role');
  const contentKey = r.name(sharegpt ? 'value' : 'content');
  return list.map((m, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(m)) r.fail(at, `expected a message object, found ${describe(m)}`);
    const roleName = m[roleKey];
    if (typeof roleName !== 'string') r.fail(`${at}.${roleKey}`, `expected a role string, found ${describe(roleName)}`);
    const role = CHAT_ROLES[roleName];
    if (role === undefined) {
      r.fail(`${at}.${roleKey}`, `unknown role ${JSON.stringify(roleName)} (expected ${Object.keys(CHAT_ROLES).join(', ')})`);
    }
    const content = m[contentKey];
    if (typeof content !== 'string') r.fail(`${at}.${contentKey}`, `expected a string, found ${describe(content)}`);
    return { role, content, trained: trained && role === 'assistant' };
  });
}

function userTurn(content: string, input: string | undefined): Message {
  const m: Message = { role: 'user', content, trained: false };
  if (input !== undefined && input !== '') m.input = input;
  return m;
}

function systemTurn(r: Reader): Message[] {
  const s = r.string('system', { optional: true });
  return s === undefined || s === '' ? [] : [{ role: 'system', content: s, trained: false }];
}

/**
 * One record -> an Example. `trained` marks the completion part as the record defines it: the output / label /
 * completion, the assistant turns of a chat, the chosen answer of a preference pair, all of a text record.
 * Every problem is reported with file, line, record and field.
 */
export function toExample(raw: RawRecord, format: RecordFormat, map: FieldMap = {}): Example {
  const where = raw.where;
  if (!isObject(raw.value)) throw dataError(where, `expected a JSON object record, found ${describe(raw.value)}`);
  const r = new Reader(raw.value, where, map);
  switch (format) {
    case 'alpaca':
    case 'instruct': {
      const alpaca = format === 'alpaca';
      const instruction = r.string(alpaca ? 'instruction' : 'instruct') as string;
      const input = r.string('input', { optional: true });
      const output = r.string(alpaca ? 'output' : 'label') as string;
      return {
        kind: 'instruction',
        messages: [...systemTurn(r), userTurn(instruction, input), { role: 'assistant', content: output, trained: true }],
        where,
      };
    }
    case 'prompt-completion': {
      const prompt = r.raw('prompt');
      const completion = r.raw('completion');
      if (typeof prompt === 'string' && typeof completion === 'string') {
        return {
          kind: 'instruction',
          messages: [...systemTurn(r), userTurn(prompt, undefined), { role: 'assistant', content: completion, trained: true }],
          where,
        };
      }
      if (prompt === undefined) r.fail(r.name('prompt'), 'missing');
      if (completion === undefined) r.fail(r.name('completion'), 'missing');
      const p =
        typeof prompt === 'string'
          ? [userTurn(prompt, undefined)]
          : readMessages(r, r.name('prompt'), prompt, false, false);
      const c =
        typeof completion === 'string'
          ? [{ role: 'assistant' as const, content: completion, trained: true }]
          : readMessages(r, r.name('completion'), completion, false, true);
      return { kind: 'chat', messages: [...systemTurn(r), ...p, ...c], where };
    }
    case 'chat':
    case 'sharegpt': {
      const field = Object.hasOwn(raw.value, r.name('messages')) ? r.name('messages') : r.name('conversations');
      const v = raw.value[field];
      if (v === undefined) r.fail(r.name('messages'), `missing (expected "${r.name('messages')}" or "${r.name('conversations')}")`);
      return { kind: 'chat', messages: readMessages(r, field, v, format === 'sharegpt', true), where };
    }
    case 'text': {
      const text = r.string('text') as string;
      return { kind: 'text', messages: [{ role: 'assistant', content: text, trained: true }], where };
    }
    case 'preference': {
      const promptRaw = r.raw('prompt');
      let prompt: Message[] = [];
      if (typeof promptRaw === 'string') prompt = [...systemTurn(r), userTurn(promptRaw, undefined)];
      else if (promptRaw !== undefined && promptRaw !== null) {
        prompt = readMessages(r, r.name('prompt'), promptRaw, false, false);
      } else if (typeof r.raw('instruction') === 'string') {
        // ch7's preference data: {instruction, input, output, chosen, rejected}
        prompt = [...systemTurn(r), userTurn(r.string('instruction') as string, r.string('input', { optional: true }))];
      }
      const side = (f: 'chosen' | 'rejected'): Message[] => {
        const v = r.raw(f);
        if (v === undefined) r.fail(r.name(f), 'missing');
        if (typeof v === 'string') return [{ role: 'assistant', content: v, trained: true }];
        const msgs = readMessages(r, r.name(f), v, false, true);
        // A list that repeats the prompt (MiniMind's DPO data): only the final assistant turn is the answer.
        if (prompt.length === 0) {
          let last = -1;
          msgs.forEach((m, i) => {
            if (m.role === 'assistant') last = i;
          });
          if (last === -1) r.fail(r.name(f), 'no assistant message');
          return msgs.map((m, i) => ({ ...m, trained: i === last }));
        }
        return msgs;
      };
      const chosen = side('chosen');
      const rejected = side('rejected');
      const kind = typeof r.raw('chosen') === 'string' && prompt.every((m) => m.role !== 'assistant') ? 'instruction' : 'chat';
      return { kind, messages: [...prompt, ...chosen], rejected: [...prompt, ...rejected], where };
    }
  }
}
