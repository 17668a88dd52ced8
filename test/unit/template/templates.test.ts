// Prompt styles and chat templates: exact text, trained spans, merged segments.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { toExample } from '../../../src/data/formats.ts';
import type { Example, RecordFormat } from '../../../src/data/types.ts';
import { createTemplate, defaultTemplate, parseTemplateChoice } from '../../../src/template/resolve-template.ts';
import { segmentsText } from '../../../src/template/segments.ts';
import type { TemplateContext } from '../../../src/template/types.ts';
import { loadTokenizer } from '../../../src/tokenize/tokenizer.ts';

const where = { file: 't', line: 1, record: 0 };
const ex = (value: unknown, format: RecordFormat): Example => toExample({ value, where }, format);
const ctx: TemplateContext = { eosToken: '<|endoftext|>' };
const trained = (segs: { text: string; trained: boolean }[]) => segs.filter((s) => s.trained).map((s) => s.text);

test('alpaca: the ch7 wording, ### Input only when input is non-empty, response + EOS trained', () => {
  const t = createTemplate('alpaca', ctx);
  const withInput = t.render(ex({ instruction: 'Convert 45 km to m.', input: '45 km', output: '45000 m' }, 'alpaca'));
  assert.equal(
    segmentsText(withInput),
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.' +
      '\n\n### Instruction:\nConvert 45 km to m.\n\n### Input:\n45 km\n\n### Response:\n45000 m<|endoftext|>',
  );
  assert.deepEqual(trained(withInput), ['45000 m<|endoftext|>']);
  assert.equal(withInput.length, 2, 'one untrained prompt segment, one trained answer segment');
  const noInput = t.render(ex({ instruction: 'Name a color.', input: '', output: 'Blue.' }, 'alpaca'));
  assert.equal(
    segmentsText(noInput),
    'Below is an instruction that describes a task. Write a response that appropriately completes the request.' +
      '\n\n### Instruction:\nName a color.\n\n### Response:\nBlue.<|endoftext|>',
  );
});

test('plain: fields concatenated as they are (seed 001), EOS after the answer', () => {
  const t = createTemplate('plain', ctx);
  const segs = t.render(ex({ instruct: '请你给敖丙写一首诗:', input: '', label: '恩仇难两忘' }, 'instruct'));
  assert.deepEqual(segs, [
    { text: '请你给敖丙写一首诗:', trained: false },
    { text: '恩仇难两忘<|endoftext|>', trained: true },
  ]);
  const withInput = t.render(ex({ instruct: 'A', input: 'B', label: 'C' }, 'instruct'));
  assert.equal(segmentsText(withInput), 'ABC<|endoftext|>');
  const text = t.render(ex({ text: 'Once.' }, 'text'));
  assert.deepEqual(text, [{ text: 'Once.<|endoftext|>', trained: true }]);
});

const chat = ex(
  {
    messages: [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'U1' },
      { role: 'assistant', content: 'A1' },
      { role: 'user', content: 'U2' },
      { role: 'assistant', content: 'A2' },
    ],
  },
  'chat',
);

test('chatml: header and the newline after <|im_end|> are not trained', () => {
  const segs = createTemplate('chatml', ctx).render(chat);
  assert.equal(
    segmentsText(segs),
    '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n' +
      '<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\nA2<|im_end|>\n',
  );
  assert.deepEqual(trained(segs), ['A1<|im_end|>', 'A2<|im_end|>']);
  assert.equal(segs[segs.length - 1]?.text, '\n');
  assert.deepEqual(createTemplate('chatml', ctx).requiredTokens, ['<|im_start|>', '<|im_end|>']);
});

test('phi3: <|role|> headers, <|end|> trained with the reply', () => {
  const segs = createTemplate('phi3', ctx).render(chat);
  assert.ok(segmentsText(segs).startsWith('<|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n'));
  assert.deepEqual(trained(segs), ['A1<|end|>', 'A2<|end|>']);
});

test('untrained assistant turns stay masked', () => {
  const e: Example = { ...chat, messages: chat.messages.map((m) => ({ ...m, trained: m.content === 'A2' })) };
  assert.deepEqual(trained(createTemplate('chatml', ctx).render(e)), ['A2<|im_end|>']);
});

test("model: the tokenizer's Jinja chat_template; the template's think block and header are not trained", async () => {
  const tok = await loadTokenizer(join(import.meta.dirname, '..', '..', 'fixtures', 'tokenizers', 'minimind'));
  const mctx: TemplateContext = { eosToken: tok.eosToken, bosToken: tok.bosToken, chatTemplate: tok.chatTemplate };
  assert.equal(defaultTemplate('chat', mctx), 'model');
  assert.equal(defaultTemplate('chat', ctx), 'chatml');
  assert.equal(defaultTemplate('alpaca', mctx), 'alpaca');
  assert.equal(defaultTemplate('instruct', mctx), 'plain');
  const segs = createTemplate('model', mctx).render(chat);
  assert.equal(
    segmentsText(segs),
    '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA1<|im_end|>\n' +
      '<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA2<|im_end|>\n',
  );
  assert.deepEqual(trained(segs), ['A1<|im_end|>', 'A2<|im_end|>']);
  assert.throws(() => createTemplate('model', ctx), /no chat_template/);
});

test('a custom template file; a template that is not prefix-stable uses sentinels', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-tpl-'));
  const file = join(dir, 'my.jinja');
  writeFileSync(
    file,
    "{% for m in messages %}[{{ m.role }}]{% if m.role == 'assistant' %}{{ m.content }}{{ eos_token }}{% else %}{{ m.content }}{% endif %}{{ '\\n' }}{% endfor %}" +
      '{% if add_generation_prompt %}[assistant]{% endif %}',
  );
  const t = createTemplate(parseTemplateChoice(file), ctx);
  assert.match(t.id, /^file:/);
  const segs = t.render(chat);
  assert.deepEqual(trained(segs), ['A1<|endoftext|>', 'A2<|endoftext|>']);
  assert.equal(segmentsText(segs), '[system]S\n[user]U1\n[assistant]A1<|endoftext|>\n[user]U2\n[assistant]A2<|endoftext|>\n');
  // Marks the last message only: rendering a prefix differs from the full conversation (not prefix-stable).
  const unstable = join(dir, 'unstable.jinja');
  writeFileSync(unstable, "{% for m in messages %}{% if loop.last %}<{{ m.content }}>{% else %}{{ m.content }}{% endif %}|{% endfor %}");
  const u = createTemplate({ file: unstable }, ctx).render(chat);
  assert.deepEqual(trained(u), ['A1', 'A2']);
  assert.equal(segmentsText(u), 'S|U1|A1|U2|<A2>|');
  assert.throws(() => parseTemplateChoice(''), /Expected one of plain, alpaca, phi3, chatml, model or a template file path/);
});

test('an unknown template name lists the built-ins and says no such file exists; a bad file keeps an error naming it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-tpl-'));
  const expectNoSuch = (value: string) => (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, 'SFTKIT_BAD_ARGUMENT');
    assert.equal(
      (err as Error).message,
      `--template ${value}: not a built-in template (plain, alpaca, phi3, chatml, model) and no file ${value} exists (a Jinja chat template file)`,
    );
    return true;
  };
  assert.throws(() => createTemplate(parseTemplateChoice('nosuch'), ctx), expectNoSuch('nosuch'));
  const missing = join(dir, 'none.jinja');
  assert.throws(() => createTemplate({ file: missing }, ctx), expectNoSuch(missing));
  // Exists but cannot be read (a directory): the read error, naming the path.
  assert.throws(
    () => createTemplate({ file: dir }, ctx),
    (err: unknown) => (err as { code?: unknown }).code === 'SFTKIT_IO' && (err as Error).message.includes(`cannot read template file ${dir}`),
  );
  // Exists but does not parse: the parse error, naming the file.
  const broken = join(dir, 'broken.jinja');
  writeFileSync(broken, '{% for m in messages %}{{ m.content }');
  assert.throws(
    () => createTemplate({ file: broken }, ctx),
    (err: unknown) => (err as { code?: unknown }).code === 'SFTKIT_LOAD' && (err as Error).message.startsWith(`${broken}: cannot parse the template file`),
  );
});

test('a template that rewrites replies beyond recognition is refused with a clear message', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-tpl-'));
  const file = join(dir, 'upper.jinja');
  writeFileSync(file, "{% for m in messages %}{% if loop.last %}{{ m.content | lower }}{% else %}{{ m.content }}{% endif %};{% endfor %}");
  assert.throws(() => createTemplate({ file }, ctx).render(chat), /chat template changes assistant replies/);
});
