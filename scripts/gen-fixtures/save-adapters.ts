// Saves LoRA adapters through sftkit into OUT_DIR for scripts/gen-fixtures/lora.py (which loads them with peft):
// per fixture, the PEFT adapter trained one step ("<name>-trained", and merged into full weights: "<name>-merged"),
// and a new sftkit adapter trained one step from its own init ("<name>-fresh"); beside each adapter,
// sftkit-logits.json holds sftkit's logits on the fixture batch.  Usage: node --import tsx save-adapters.ts OUT_DIR
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel, type Batch, type Model } from '../../src/native/model.ts';

const out = process.argv[2];
if (!out) throw new Error('usage: save-adapters.ts OUT_DIR');
const fixtures = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'models');
const fresh: Record<string, { r: number; alpha: number; dropout: number; targets?: string[] }> = {
  llama: { r: 3, alpha: 6, dropout: 0.1, targets: ['q_proj', 'o_proj', 'down_proj'] },
  gpt2: { r: 2, alpha: 4, dropout: 0.05, targets: ['c_attn', 'c_fc'] },
  qwen2: { r: 4, alpha: 8, dropout: 0 },
};

async function trainAndSave(model: Model, batch: Batch, dir: string, vocab: number): Promise<void> {
  await model.step(batch);
  await model.optimizerStep({ lr: 0.05 });
  await model.zeroGrad();
  await model.save(dir);
  const { logits, shape } = await model.forward(batch);
  const [B, T, V] = shape;
  const rows = Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => (batch.attentionMask![b * T + t] ? Array.from(logits.subarray((b * T + t) * V, (b * T + t + 1) * V)) : null)),
  );
  writeFileSync(join(dir, 'sftkit-logits.json'), JSON.stringify({ shape: batch.shape, vocab, inputIds: [...batch.inputIds], attentionMask: [...batch.attentionMask!], logits: rows }));
}

for (const name of Object.keys(fresh)) {
  const base = join(fixtures, `tiny-${name}`);
  const adapter = join(fixtures, `tiny-${name}-lora`);
  const ref = (await import(join(adapter, 'parity.json'), { with: { type: 'json' } })).default as {
    shape: [number, number]; inputIds: number[]; attentionMask: number[]; labels: number[];
  };
  const batch: Batch = { inputIds: Int32Array.from(ref.inputIds), labels: Int32Array.from(ref.labels), attentionMask: Uint8Array.from(ref.attentionMask), shape: ref.shape };
  const trained = await loadModel(base, { adapter });
  await trainAndSave(trained, batch, join(out, `${name}-trained`), trained.spec.vocabSize);
  await trained.mergeAdapter();
  await trained.save(join(out, `${name}-merged`));
  await trained.dispose();
  const model = await loadModel(base, { lora: { ...fresh[name]!, seed: 7 } });
  await trainAndSave(model, batch, join(out, `${name}-fresh`), model.spec.vocabSize);
  await model.dispose();
}
