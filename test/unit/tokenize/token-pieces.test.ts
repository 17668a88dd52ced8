// Token pieces read exactly as the whole decode (SentencePiece's stripped first space, byte-level and byte-fallback
// characters split over tokens), per token or per trained/masked run, and `sftkit inspect`'s runs come from them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createPipeline, prepareExample, type Message } from '../../../src/index.ts';
import { maskedPieces, maskedRuns } from '../../../src/mask/masked-pieces.ts';
import { tokenPieces } from '../../../src/tokenize/token-pieces.ts';
import { loadTokenizer } from '../../../src/tokenize/tokenizer.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
const records = (JSON.parse(readFileSync(join(fixtures, 'data', 'instruction-data.json'), 'utf8')) as { instruction: string; output: string }[]).slice(0, 40);
const texts = [...records.map((r) => `### Instruction:\n${r.instruction}\n\n### Response:\n${r.output}`), 'héllo — 日本語 😀 naïve\n\ttabs  and  spaces', ' leading space'];
const dirs = { llama: join(fixtures, 'models', 'tinystories-656k'), gpt2: join(fixtures, 'tokenizers', 'gpt2'), qwen: join(fixtures, 'tokenizers', 'minimind') };

for (const [name, dir] of Object.entries(dirs)) {
  test(`${name}: the pieces cover every token once and join to the full decode`, async () => {
    const tok = await loadTokenizer(dir);
    for (const text of texts) {
      const ids = tok.encode(text);
      const pieces = tokenPieces(tok, ids);
      assert.equal(pieces.map((p) => p.text).join(''), tok.decode(ids), text);
      assert.equal(pieces[0]?.start, 0);
      pieces.forEach((p, i) => assert.equal(p.start, i === 0 ? 0 : pieces[i - 1]!.end));
      assert.equal(pieces.at(-1)?.end, ids.length);
    }
    // Runs of trained/masked tokens of real examples (alpaca template, completion mask) read the same whether cut
    // per token or per run.
    const { pipeline } = await createPipeline('alpaca', { tokenizer: tok });
    for (const r of [...records.slice(0, 10), { instruction: 'Say 日本語', input: 'naïve 😀', output: '😀 — héllo' }]) {
      const { result } = prepareExample({ kind: 'instruction', messages: toMessages(r), where: { file: 'x', line: 1, record: 0 } }, pipeline);
      assert.ok(result.kept);
      const runs = maskedRuns(maskedPieces(result.example, tok, 'token'));
      assert.deepEqual(maskedPieces(result.example, tok, 'run').map(({ text, trained }) => ({ text, trained })), runs);
      assert.deepEqual(runs.map((x) => x.trained), [false, true]);
    }
  });
}

function toMessages(r: { instruction: string; input?: string; output: string }): Message[] {
  return [
    { role: 'user', content: r.instruction, trained: false, ...(r.input ? { input: r.input } : {}) },
    { role: 'assistant', content: r.output, trained: true },
  ];
}

test('a SentencePiece token keeps its space in context (decoding it alone would strip it)', async () => {
  const tok = await loadTokenizer(dirs.llama);
  const ids = tok.encode('Below is an instruction that describes a task.');
  const pieces = tokenPieces(tok, ids);
  const alone = ids.map((id) => tok.decode([id]));
  assert.ok(pieces.some((p, i) => p.text.startsWith(' ') && !alone[i]!.startsWith(' ')), JSON.stringify({ pieces, alone }));
});

test('a character split over byte tokens is one piece holding all its ids', async () => {
  const tok = await loadTokenizer(dirs.gpt2);
  const ids = tok.encode('😀');
  assert.ok(ids.length > 1, 'GPT-2 spells the emoji in bytes');
  assert.deepEqual(tokenPieces(tok, ids), [{ start: 0, end: ids.length, text: '😀' }]);
});
