// Real pretrained model: TinyStories-656K (test/fixtures/models/tinystories-656k, see its SOURCE.md) greedy
// continuation, and RSS stability of the training step on a tiny model.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/native/model.ts';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'models');

test('TinyStories-656K greedy continuation equals the ids in its SOURCE.md', async () => {
  const model = await loadModel(join(fixtures, 'tinystories-656k'));
  assert.equal(model.numParameters(), 656_000);
  // "Once upon a time, there was a little girl" (tokenizer.json of the model, with BOS)
  const prompt = [1, 80, 147, 201, 282, 215, 286, 1890];
  const expected = [1205, 1161, 81, 77, 809, 89, 67, 555, 163, 436, 1432, 309, 1432, 81, 251, 796, 615, 242, 328, 552, 319, 1283];
  const [out] = await model.generate([prompt], { maxNewTokens: expected.length, stopIds: [] });
  assert.deepEqual(Array.from(out!), expected);
  // streamed: the same tokens one by one
  const streamed: number[] = [];
  for await (const step of model.generateStream([prompt], { maxNewTokens: 10, stopIds: [] })) streamed.push(step.tokens[0]!);
  assert.deepEqual(streamed, expected.slice(0, 10));
  await model.dispose();
});
