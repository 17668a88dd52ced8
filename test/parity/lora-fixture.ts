// What the LoRA parity fixtures share (test/fixtures/models/tiny-*-lora/parity.json from scripts/gen-fixtures/lora.py,
// and test/fixtures/base-dtype/<model>/<dtype>.json from scripts/gen-fixtures/base_dtype.py): the case's shape, its
// Batch, the worst logits error against a reference, and the check of one training step's loss and adapter
// gradients. Used by test/parity/lora.test.ts and test/parity/base-dtype.test.ts.
import assert from 'node:assert/strict';
import type { Batch, Model } from '../../src/native/model.ts';

export interface LoraParityCase {
  shape: [number, number];
  inputIds: number[];
  attentionMask: number[];
  labels: number[];
  logits: (number[] | null)[][];
  lossSum: number;
  tokens: number;
  grads: Record<string, { shape: number[]; data: number[] }>;
  generate: { prompt: number[]; maxNewTokens: number; output: number[] };
}

export function batchOf(c: LoraParityCase): Batch {
  return { inputIds: Int32Array.from(c.inputIds), labels: Int32Array.from(c.labels), attentionMask: Uint8Array.from(c.attentionMask), shape: c.shape };
}

/** max |logits - ref| over the positions the reference holds (null rows: padding). */
export async function worstLogitsError(model: Model, c: LoraParityCase, ref: (number[] | null)[][]): Promise<number> {
  const { logits, shape } = await model.forward(batchOf(c));
  const [B, T, V] = shape;
  let worst = 0;
  for (let b = 0; b < B; ++b) {
    for (let t = 0; t < T; ++t) {
      const row = ref[b]![t];
      if (!row) continue;
      for (let v = 0; v < V; ++v) worst = Math.max(worst, Math.abs(logits[(b * T + t) * V + v]! - row[v]!));
    }
  }
  return worst;
}

/**
 * One step on the case's batch: the loss sum (rel 1e-5) and token count, a gradient on exactly the adapters, each
 * within 1e-4 of its tensor's largest entry (`what` names the reference in messages), none on a base weight.
 * Returns the worst relative gradient error.
 */
export async function checkAdapterStep(model: Model, ref: LoraParityCase, what: string): Promise<number> {
  const r = await model.step(batchOf(ref));
  assert.equal(r.tokens, ref.tokens);
  assert.ok(Math.abs(r.lossSum - ref.lossSum) <= 1e-5 * Math.abs(ref.lossSum), `loss ${r.lossSum} vs ${ref.lossSum}`);
  const norms = await model.gradNorms();
  assert.deepEqual(Object.keys(norms).sort(), Object.keys(ref.grads).sort(), 'gradients exist for the adapters only');
  let worstRel = 0;
  for (const [n, g] of Object.entries(ref.grads)) {
    const got = await model.getGradient(n);
    assert.ok(got, `${n} has a gradient`);
    assert.deepEqual(got.shape, g.shape, n);
    const scale = Math.max(...g.data.map(Math.abs), 1e-12);
    let worst = 0;
    for (let i = 0; i < g.data.length; ++i) worst = Math.max(worst, Math.abs(got.data[i]! - g.data[i]!));
    worstRel = Math.max(worstRel, worst / scale);
    assert.ok(worst <= 1e-4 * scale, `${n}: max |grad - ${what}| = ${worst} (largest entry ${scale})`);
  }
  for (const n of await model.parameterNames()) {
    if (!n.includes('.lora_')) assert.equal(await model.getGradient(n), null, `frozen ${n} has no gradient`);
  }
  assert.ok(worstRel <= 1e-4);
  return worstRel;
}
