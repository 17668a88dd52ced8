// The Ollama Modelfile: its syntax against Ollama's documented format (docs/modelfile.md: instructions FROM,
// PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE, REQUIRES; `#` comments; "..." or """...""" values; the
// documented PARAMETER names), and its TEMPLATE, rendered as Go's text/template would for one user turn, equal to
// the prompt sftkit's own template renders before the answer (alpaca, chatml, phi3, plain).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { modelfileText, OLLAMA_TEMPLATES, type ModelfileTemplate } from '../../../src/export/modelfile.ts';
import { alpacaTemplate, chatmlTemplate, phi3Template, plainTemplate } from '../../../src/template/index.ts';
import type { Example } from '../../../src/data/index.ts';

const INSTRUCTIONS = new Set(['FROM', 'PARAMETER', 'TEMPLATE', 'SYSTEM', 'ADAPTER', 'LICENSE', 'MESSAGE', 'REQUIRES']);
const PARAMETERS = new Set(['num_ctx', 'repeat_last_n', 'repeat_penalty', 'temperature', 'seed', 'stop', 'num_predict', 'top_k', 'top_p', 'min_p']);

/** Splits a Modelfile into [instruction, argument] pairs as Ollama's parser reads them (multi-line """ values). */
function parseModelfile(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `line ${i + 1} is not "INSTRUCTION arguments": ${line}`);
    const [, ins, rest] = m;
    assert.ok(INSTRUCTIONS.has(ins!.toUpperCase()), `unknown instruction ${ins}`);
    let arg = rest!;
    const tq = arg.indexOf('"""');
    if (tq >= 0 && arg.indexOf('"""', tq + 3) < 0) {
      while (++i < lines.length && !lines[i]!.includes('"""')) arg += `\n${lines[i]}`;
      assert.ok(i < lines.length, 'unterminated """');
      arg += `\n${lines[i]}`;
      assert.ok(lines[i]!.trimEnd().endsWith('"""'), 'text after the closing """');
    }
    out.push([ins!.toUpperCase(), arg]);
  }
  return out;
}

function unquote(v: string): string {
  if (v.startsWith('"""')) return v.slice(3, -3);
  if (v.startsWith('"')) return JSON.parse(v) as string;
  return v;
}

/** The subset of Go's text/template the templates use: {{ .X }}, if/else/end, range .Messages, {{- trimming. */
function renderGo(tpl: string, data: { System?: string; Prompt: string; Response?: string; Messages: Array<{ Role: string; Content: string }> }): string {
  const tokens = tpl.split(/({{-?\s*.*?\s*-?}})/s);
  let i = 0;
  function block(ctx: Record<string, unknown>, stopAt: string[]): [string, string] {
    let out = '';
    while (i < tokens.length) {
      let tok = tokens[i++]!;
      if (!tok.startsWith('{{')) {
        out += tok;
        continue;
      }
      if (tok.startsWith('{{-')) out = out.replace(/\s+$/, '');
      if (tok.endsWith('-}}')) tokens[i] = tokens[i]!.replace(/^\s+/, '');
      tok = tok.replace(/^{{-?\s*/, '').replace(/\s*-?}}$/, '');
      if (stopAt.includes(tok)) return [out, tok];
      const field = (name: string) => ctx[name.slice(1)];
      if (tok.startsWith('if ')) {
        const cond = field(tok.slice(3));
        const [yes, end] = block(ctx, ['else', 'end']);
        const [no] = end === 'else' ? block(ctx, ['end']) : [''];
        out += cond ? yes : no;
      } else if (tok.startsWith('range ')) {
        const start = i;
        let body = '';
        for (const item of field(tok.slice(6)) as Array<Record<string, unknown>>) {
          i = start;
          body += block(item, ['end'])[0];
        }
        if ((field(tok.slice(6)) as unknown[]).length === 0) block({}, ['end']);
        out += body;
      } else if (tok.startsWith('.')) out += String(field(tok) ?? '');
      else throw new Error(`unsupported template action ${tok}`);
    }
    return [out, ''];
  }
  return block(data as unknown as Record<string, unknown>, [])[0];
}

const ctx = { eosToken: '</s>' };
const SFTKIT: Record<ModelfileTemplate, (c: typeof ctx) => { render: (e: Example) => Array<{ text: string; trained: boolean }> }> = {
  alpaca: alpacaTemplate,
  chatml: chatmlTemplate,
  phi3: phi3Template,
  plain: plainTemplate,
};

function sftkitPrompt(t: ModelfileTemplate, prompt: string): string {
  const example: Example = {
    kind: 'instruction',
    messages: [{ role: 'user', content: prompt, trained: false }, { role: 'assistant', content: '', trained: true }],
    where: { file: '<prompt>', line: 1, record: 0 },
  };
  const segments = SFTKIT[t](ctx).render(example);
  const cut = segments.findIndex((s) => s.trained);
  return segments.slice(0, cut).map((s) => s.text).join('');
}

test('each TEMPLATE renders the prompt sftkit trained with, for one user turn', () => {
  for (const t of ['alpaca', 'chatml', 'phi3', 'plain'] as const) {
    const prompt = 'Name three colors.';
    const got = renderGo(OLLAMA_TEMPLATES[t], { Prompt: prompt, Response: '', Messages: [{ Role: 'user', Content: prompt }] });
    assert.equal(got, sftkitPrompt(t, prompt), t);
  }
});

test('the Modelfile parses as Ollama documents it: FROM first, known instructions and parameters, balanced quotes', () => {
  for (const template of [undefined, 'alpaca', 'chatml', 'phi3', 'plain'] as const) {
    const text = modelfileText({ from: './model.gguf', eosToken: '<|end_story|>', contextLength: 512, comment: 'exported by sftkit\nollama create NAME -f Modelfile', ...(template ? { template } : {}) });
    const parsed = parseModelfile(text);
    assert.deepEqual(parsed[0], ['FROM', './model.gguf']);
    for (const [ins, arg] of parsed) {
      if (ins === 'PARAMETER') {
        const [name, ...value] = arg.split(/\s+/);
        assert.ok(PARAMETERS.has(name!), `PARAMETER ${name}`);
        assert.ok(value.join(' ').length > 0);
      }
      if (ins === 'TEMPLATE') assert.equal(unquote(arg), OLLAMA_TEMPLATES[template!]);
    }
    const stops = parsed.filter(([i, a]) => i === 'PARAMETER' && a.startsWith('stop ')).map(([, a]) => unquote(a.slice(5)));
    assert.ok(stops.includes('<|end_story|>'));
    if (template === 'chatml') assert.ok(stops.includes('<|im_end|>'));
    assert.equal(parsed.some(([i]) => i === 'TEMPLATE'), template !== undefined);
    assert.ok(parsed.some(([i, a]) => i === 'PARAMETER' && a === 'num_ctx 512'));
  }
});

test('a stop sequence with quotes is written as a JSON-style string', () => {
  const text = modelfileText({ from: './m.gguf', eosToken: 'say "hi"' });
  const stop = parseModelfile(text).find(([i]) => i === 'PARAMETER')![1];
  assert.equal(unquote(stop.slice(5)), 'say "hi"');
});

test('chatml and phi3 TEMPLATEs render a multi-turn conversation with a system message as sftkit does', () => {
  const turns = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'Hi' },
    { role: 'assistant' as const, content: 'Hello!' },
    { role: 'user' as const, content: 'Colors?' },
  ];
  for (const t of ['chatml', 'phi3'] as const) {
    const example: Example = {
      kind: 'chat',
      messages: [...turns.map((m) => ({ ...m, trained: false })), { role: 'assistant', content: '', trained: true }],
      where: { file: '<prompt>', line: 1, record: 0 },
    };
    const segments = SFTKIT[t](ctx).render(example);
    const want = segments.slice(0, segments.findIndex((s) => s.trained)).map((s) => s.text).join('');
    const got = renderGo(OLLAMA_TEMPLATES[t], { Prompt: 'Colors?', Messages: turns.map((m) => ({ Role: m.role, Content: m.content })) });
    assert.equal(got, want, t);
  }
});
