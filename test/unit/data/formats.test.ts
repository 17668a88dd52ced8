// Format detection, field mapping and record -> messages conversion, with located errors.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { detectFormat, toExample, validateFieldMap, validateFormat } from '../../../src/data/formats.ts';
import { loadExamples } from '../../../src/data/load-examples.ts';
import type { RecordFormat } from '../../../src/data/types.ts';

const where = { file: 'f.jsonl', line: 3, record: 2 };
const ex = (value: unknown, format: RecordFormat, map = {}) => toExample({ value, where }, format, map);
const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'data');

test('formats are detected from the keys', () => {
  assert.equal(detectFormat({ instruction: 'a', input: '', output: 'b' }), 'alpaca');
  assert.equal(detectFormat({ instruct: 'a', input: '', label: 'b' }), 'instruct');
  assert.equal(detectFormat({ prompt: 'a', completion: 'b' }), 'prompt-completion');
  assert.equal(detectFormat({ messages: [{ role: 'user', content: 'x' }] }), 'chat');
  assert.equal(detectFormat({ conversations: [{ role: 'user', content: 'x' }] }), 'chat');
  assert.equal(detectFormat({ conversations: [{ from: 'human', value: 'x' }] }), 'sharegpt');
  assert.equal(detectFormat({ text: 'x' }), 'text');
  assert.equal(detectFormat({ chosen: 'a', rejected: 'b' }), 'preference');
  assert.equal(detectFormat({ instruction: 'a', input: '', output: 'b', chosen: 'c', rejected: 'd' }), 'preference');
  assert.equal(detectFormat({ question: 'a', answer: 'b' }), undefined);
  assert.equal(detectFormat({ question: 'a', answer: 'b' }, { instruction: 'question', output: 'answer' }), 'alpaca');
  assert.equal(detectFormat([1, 2]), undefined);
});

test('alpaca and instruct records: user turn with a separate input, trained assistant output', () => {
  const a = ex({ instruction: 'Do X', input: 'data', output: 'done' }, 'alpaca');
  assert.equal(a.kind, 'instruction');
  assert.deepEqual(a.messages, [
    { role: 'user', content: 'Do X', trained: false, input: 'data' },
    { role: 'assistant', content: 'done', trained: true },
  ]);
  const noInput = ex({ instruction: 'Do X', output: 'done', system: 'Be brief.' }, 'alpaca');
  assert.deepEqual(noInput.messages[0], { role: 'system', content: 'Be brief.', trained: false });
  assert.equal(noInput.messages[1]?.input, undefined);
  const i = ex({ instruct: '写诗:', input: '', label: '好' }, 'instruct');
  assert.deepEqual(i.messages.map((m) => [m.role, m.content, m.trained]), [
    ['user', '写诗:', false],
    ['assistant', '好', true],
  ]);
});

test('chat, sharegpt, prompt-completion, text, preference', () => {
  const c = ex({ messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u' }, { role: 'assistant', content: 'a' }] }, 'chat');
  assert.deepEqual(c.messages.map((m) => m.trained), [false, false, true]);
  const s = ex({ conversations: [{ from: 'system', value: 's' }, { from: 'human', value: 'u' }, { from: 'gpt', value: 'a' }] }, 'sharegpt');
  assert.deepEqual(s.messages.map((m) => m.role), ['system', 'user', 'assistant']);
  const pc = ex({ prompt: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'earlier' }], completion: [{ role: 'assistant', content: 'a' }] }, 'prompt-completion');
  assert.equal(pc.kind, 'chat');
  assert.deepEqual(pc.messages.map((m) => m.trained), [false, false, true], 'assistant turns of the prompt are not the completion');
  const pcs = ex({ prompt: 'The sky is', completion: ' blue.' }, 'prompt-completion');
  assert.equal(pcs.kind, 'instruction');
  const t = ex({ text: 'story' }, 'text');
  assert.equal(t.kind, 'text');
  const p = ex({ prompt: 'q', chosen: 'good', rejected: 'bad' }, 'preference');
  assert.deepEqual(p.messages.map((m) => m.content), ['q', 'good']);
  assert.deepEqual(p.rejected?.map((m) => m.content), ['q', 'bad']);
  const ch7 = ex({ instruction: 'i', input: 'x', output: 'o', chosen: 'c', rejected: 'r' }, 'preference');
  assert.equal(ch7.kind, 'instruction');
  assert.equal(ch7.messages[0]?.input, 'x');
  const mm = ex(
    { chosen: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'c' }], rejected: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'r' }] },
    'preference',
  );
  assert.deepEqual(mm.messages.map((m) => m.trained), [false, true]);
  assert.deepEqual(mm.rejected?.map((m) => m.trained), [false, true]);
});

test('a field map renames keys', () => {
  const map = validateFieldMap({ instruction: 'question', output: 'answer', input: 'context' });
  const a = ex({ question: 'q', context: 'c', answer: 'a' }, 'alpaca', map);
  assert.deepEqual(a.messages.map((m) => m.content), ['q', 'a']);
  const c = ex({ dialog: [{ speaker: 'user', text: 'hi' }, { speaker: 'assistant', text: 'yo' }] }, 'chat', {
    messages: 'dialog',
    role: 'speaker',
    content: 'text',
  });
  assert.deepEqual(c.messages.map((m) => m.content), ['hi', 'yo']);
  assert.throws(() => validateFieldMap({ nope: 'x' }), /fieldMap key "nope"/);
  assert.throws(() => validateFieldMap({ output: 3 }), /Expected a non-empty string for fieldMap.output/);
  assert.throws(() => validateFormat('csv'), /Expected one of auto, alpaca/);
});

test('every data error names file, line, record and field', () => {
  assert.throws(() => ex({ instruction: 'a', input: '' }, 'alpaca'), /f\.jsonl:3 \(record 2\) field "output": missing/);
  assert.throws(() => ex({ instruction: 5, output: 'b' }, 'alpaca'), /field "instruction": expected a string, found number 5/);
  assert.throws(
    () => ex({ messages: [{ role: 'user', content: 'a' }, { role: 'robot', content: 'b' }] }, 'chat'),
    /f\.jsonl:3 \(record 2\) field "messages\[1\]\.role": unknown role "robot"/,
  );
  assert.throws(() => ex({ messages: [{ role: 'user', content: null }] }, 'chat'), /field "messages\[0\]\.content": expected a string, found null/);
  assert.throws(() => ex({ messages: 'hi' }, 'chat'), /field "messages": expected a list of messages/);
  assert.throws(() => ex('just a string', 'text'), /f\.jsonl:3 \(record 2\): expected a JSON object record/);
  assert.throws(() => ex({ chosen: 'a' }, 'preference'), /field "rejected": missing/);
});

test('auto detection on the shipped data; unknown keys are a located error', async () => {
  const a = await loadExamples(join(fixtures, 'instruction-data.json'), { limit: 3 });
  assert.equal(a.format, 'alpaca');
  const b = await loadExamples(join(fixtures, 'minimind-toy', 'sft_data.jsonl'));
  assert.equal(b.format, 'chat');
  assert.equal(b.examples.length, 2);
  const d = await loadExamples(join(fixtures, 'minimind-toy', 'dpo_data.jsonl'));
  assert.equal(d.format, 'preference');
  await assert.rejects(
    loadExamples(join(fixtures, 'instruction-data.json'), { format: 'chat', limit: 1 }),
    /instruction-data\.json:2 \(record 0\) field "messages": missing/,
  );
});
