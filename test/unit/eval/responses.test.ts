// Response extraction from generated text and the atomic responses file.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { extractResponse, readResponsesFile, writeResponsesFile } from '../../../src/eval/responses.ts';

const dir = mkdtempSync(join(tmpdir(), 'sftkit-responses-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const prompt =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\nRewrite the sentence using a simile.\n\n### Input:\nThe car is very fast.';

test('ch. 7: the echo and the response header go, the end token cuts', () => {
  const gen = `${prompt}\n\n### Response:\nThe car is as fast as lightning.<|endoftext|>The car is`;
  assert.equal(extractResponse(gen, { prompt }), 'The car is as fast as lightning.');
  // the prompt given with the header (the way the generator usually sends it)
  const p2 = `${prompt}\n\n### Response:\n`;
  assert.equal(extractResponse(`${p2}The car is as fast as lightning.</s>`, { prompt: p2 }), 'The car is as fast as lightning.');
});

test('cut at a following ### Instruction: header or chat turn opener', () => {
  const gen = `${prompt}\n\n### Response:\nAs fast as lightning.\n\n### Instruction:\nName a color.\n\n### Response:\nBlue`;
  assert.equal(extractResponse(gen, { prompt }), 'As fast as lightning.');
  assert.equal(extractResponse('Paris.<|im_start|>user\nAnd Spain?', {}), 'Paris.');
  assert.equal(extractResponse('Paris.\n### Input: x'), 'Paris.');
  assert.equal(extractResponse('Use ### as a separator.'), 'Use ### as a separator.', 'a bare ### is not a header');
  assert.equal(extractResponse('a\n### Instruction: b', { cutAtNextHeader: false }), 'a\n### Instruction: b');
});

test('no exact echo (detokenisation changed spaces): everything up to the response header goes', () => {
  const gen = `Below is an instruction ...  (re-spaced)\n\n### Response:\n  Jane Austen \n<|im_end|>`;
  assert.equal(extractResponse(gen, { prompt: 'Below is an instruction ... (re-spaced)' }), 'Jane Austen');
});

test('new tokens only (no echo), custom end tokens, empty responses', () => {
  assert.equal(extractResponse(' Jane Austen<|end|>\n'), 'Jane Austen');
  assert.equal(extractResponse('A poem. [END] more', { endTokens: ['[END]'] }), 'A poem.');
  assert.equal(extractResponse('<|endoftext|>'), '');
  assert.equal(extractResponse(''), '');
  assert.equal(extractResponse('### Response: 42'), '42');
  assert.equal(extractResponse('### Response: 42', { responseHeader: '' }), '', 'without a response header, a leading header line ends the text');
  assert.equal(extractResponse('Answer: ### Response: in text', { responseHeader: '' }), 'Answer: ### Response: in text');
});

test('responses file: JSON array in ch. 7 key order, atomic, read back with validation', async () => {
  const file = join(dir, 'responses.json');
  const recs = [
    { instruction: 'Name the author of Pride and Prejudice.', input: '', output: 'Jane Austen.', model_response: 'Jane Austen' },
    { instruction: 'Translate', output: 'Hola', model_response: 'Hola', input: 'Hello' },
  ];
  await writeResponsesFile(file, recs);
  const text = readFileSync(file, 'utf8');
  assert.ok(text.startsWith('[\n  {\n    "instruction": "Name the author'));
  const parsed = JSON.parse(text) as Record<string, string>[];
  assert.deepEqual(Object.keys(parsed[1]!), ['instruction', 'input', 'output', 'model_response']);
  assert.deepEqual(await readResponsesFile(file), [recs[0], { instruction: 'Translate', input: 'Hello', output: 'Hola', model_response: 'Hola' }]);
  assert.deepEqual(readdirSync(dir), ['responses.json'], 'no temp file left');
  await assert.rejects(writeResponsesFile(file, [{ instruction: 'x', output: 'y', model_response: 3 as unknown as string }]), /Expected a string for records\[0\]\.model_response but received 3/);
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).length, 2, 'a failed write leaves the old file');
  writeFileSync(join(dir, 'bad.json'), '[{"instruction": "a", "output": "b"}]');
  await assert.rejects(readResponsesFile(join(dir, 'bad.json')), /bad\.json \(record 0\) field "model_response": must be a string/);
  writeFileSync(join(dir, 'obj.json'), '{}');
  await assert.rejects(readResponsesFile(join(dir, 'obj.json')), /expected a JSON array/);
  await assert.rejects(readResponsesFile(join(dir, 'none.json')), (e: Error & { code?: string }) => e.code === 'SFTKIT_IO');
  await assert.rejects(writeResponsesFile(join(dir, 'no-such-dir', 'r.json'), recs), (e: Error & { code?: string }) => e.code === 'SFTKIT_IO' && /Cannot write .*r\.json: .*ENOENT/.test(e.message));
});
