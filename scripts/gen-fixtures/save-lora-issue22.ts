// Trains LoRA adapters with PEFT's default targets on issue 22's tiny fixtures (phi3: the fused qkv_proj) for three
// steps and saves each adapter with sftkit's logits on one 12-token row, for scripts/gen-fixtures/check-lora-issue22.py
// (PEFT loads the adapter onto the transformers model and must give the same logits).
// Usage: node --import tsx scripts/gen-fixtures/save-lora-issue22.ts OUT_DIR
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/native/model.ts';

const out = process.argv[2];
if (!out) throw new Error('usage: save-lora-issue22.ts OUT_DIR');
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'models');
const ids = Int32Array.from([1, 17, 42, 99, 5, 63, 7, 8, 90, 11, 54, 3]);
for (const name of ['phi3', 'gemma2', 'gemma3-text', 'mistral', 'smollm3', 'qwen2-sliding', 'llama-yarn']) {
  const m = await loadModel(join(fixtures, `tiny-${name}`), { lora: { r: 4, alpha: 8, seed: 2 } });
  for (let i = 0; i < 3; i++) {
    const labels = Int32Array.from(ids, (x, t) => (t === 0 ? -100 : (x * (i + 3)) % 128));
    await m.step({ inputIds: ids, labels, shape: [1, 12] });
    await m.optimizerStep({ lr: 0.05 });
    await m.zeroGrad();
  }
  await m.save(join(out, `tiny-${name}`));
  const { logits } = await m.forward({ inputIds: ids, shape: [1, 12] });
  writeFileSync(join(out, `tiny-${name}`, 'sftkit-logits.json'), JSON.stringify({ inputIds: Array.from(ids), logits: Array.from(logits) }));
  await m.dispose();
}
