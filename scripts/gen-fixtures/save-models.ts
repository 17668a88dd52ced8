// Saves every tiny fixture model (and a resized GPT-2 with 2 added tokens, and TinyStories-656K) through sftkit into
// OUT_DIR, for scripts/gen-fixtures/check-saved-models.py.  Usage: node --import tsx scripts/gen-fixtures/save-models.ts OUT_DIR
import { join } from 'node:path';
import { loadModel } from '../../src/native/model.ts';

const out = process.argv[2];
if (!out) throw new Error('usage: save-models.ts OUT_DIR');
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'models');
// Issue 22's architectures (test/fixtures/models/NEW-ARCHITECTURES.md) after the older ones.
const NEW = ['tiny-llama3-rope', 'tiny-llama-linear', 'tiny-llama-dynamic', 'tiny-llama-yarn', 'tiny-mistral', 'tiny-qwen2-sliding', 'tiny-smollm3', 'tiny-phi3', 'tiny-gemma3-text', 'tiny-gemma2'];
for (const name of ['tiny-gpt2', 'tiny-llama', 'tiny-llama-untied', 'tiny-qwen2', 'tiny-qwen3', 'tinystories-656k', ...NEW]) {
  const model = await loadModel(join(fixtures, name));
  await model.save(join(out, name));
  if (name === 'tiny-gpt2') {
    await model.resizeTokenEmbeddings(130);
    await model.save(join(out, 'tiny-gpt2-resized'));
  }
  await model.dispose();
}
