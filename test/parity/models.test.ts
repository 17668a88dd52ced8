// Parity with Hugging Face transformers on tiny random models of every architecture (fixtures written by
// scripts/gen-fixtures/models.py): logits (padded and packed batches), masked loss, per-parameter gradient norms
// (also after zeroGrad and accumulated over two steps), one AdamW step, greedy generations (single and left-padded
// batch); save -> reload is bit-identical. Issue 22's architectures (NEW_NAMES) also: every gradient with gradient
// checkpointing, packed rows equal to the documents run one by one, the legacy config.json key layout (4.x hub
// checkpoints) giving the same logits, and the per-layer features measured worst-case (logged).
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadModel, type Model } from '../../src/native/model.ts';
import { batchOfCase as batchOf, readParityFixture, type ParityCase as Case } from './model-fixture.ts';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'models');
/** Issue 22's fixtures (test/fixtures/models/NEW-ARCHITECTURES.md), in models.test.ts as each one passes. */
const NEW_NAMES: string[] = ['llama3-rope', 'llama-linear', 'llama-dynamic', 'llama-yarn', 'mistral', 'qwen2-sliding', 'smollm3', 'phi3', 'gemma3-text', 'gemma2'];
const NAMES = ['gpt2', 'llama', 'llama-untied', 'qwen2', 'qwen3', ...NEW_NAMES];

/**
 * AdamW's first step is -lr * g / (|g| + eps) (eps 1e-8) for a parameter without weight decay: an element whose
 * recorded update is below 0.99 lr has |g| < 1e-6, and where that gradient is fp32 noise the update is noise too.
 * tiny-qwen2-sliding's k_proj.bias elements on the slowest RoPE frequency of theta 1e6 (dims 3 and 7 of each head:
 * an angle of at most 3e-4 rad over 12 positions, which the softmax all but cancels) have gradients of 1e-10 to 1e-8:
 * layer 0's [15] is 4.8e-10 in transformers (from its recorded update), 2.0e-10 here and 3.0e-8 in the plain-torch fp32
 * reference (scripts/gen-fixtures/check_new_archs.py). For issue 22's fixtures only, such elements are held to the
 * gradient norms' check (rel 1e-4 over the whole tensor) instead of the per-element update (abs 2e-6).
 */
function noiseFloorUpdate(name: string, decay: boolean, lr: number, d: number): boolean {
  return NEW_NAMES.includes(name) && !decay && Math.abs(d) < 0.99 * lr;
}

function relClose(actual: number, expected: number, rel: number, what: string): void {
  const err = Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-12);
  assert.ok(err <= rel, `${what}: ${actual} vs ${expected} (rel ${err.toExponential(2)} > ${rel})`);
}

/** The largest |logit - HF| over the case's non-padding positions, and the [B, T] the model returned. */
async function logitsError(model: Model, c: Case): Promise<{ worst: number; rows: [number, number] }> {
  const { logits, shape } = await model.forward(batchOf(c));
  const [B, T, V] = shape;
  let worst = 0;
  for (let b = 0; b < B; ++b) {
    for (let t = 0; t < T; ++t) {
      const ref = c.logits[b]![t];
      if (!ref) continue;
      for (let v = 0; v < V; ++v) worst = Math.max(worst, Math.abs(logits[(b * T + t) * V + v]! - ref[v]!));
    }
  }
  return { worst, rows: [B, T] };
}

async function worstLogits(model: Model, c: Case): Promise<number> {
  return (await logitsError(model, c)).worst;
}

async function checkLogits(model: Model, c: Case, what: string): Promise<void> {
  const { worst, rows } = await logitsError(model, c);
  assert.deepEqual(rows, c.shape);
  assert.ok(worst <= 1e-4, `${what}: max |logits - HF| = ${worst}`);
}

for (const name of NAMES) {
  describe(`tiny-${name} vs transformers`, () => {
    const dir = join(fixtures, `tiny-${name}`);
    const ref = readParityFixture(dir);

    test('logits: right-padded and packed batches (atol 1e-4)', async () => {
      const model = await loadModel(dir);
      await checkLogits(model, ref.padded, 'padded');
      await checkLogits(model, ref.packed, 'packed');
      await model.dispose();
    });

    test('masked loss sum and count (rel 1e-5)', async () => {
      const model = await loadModel(dir);
      for (const c of [ref.padded, ref.packed]) {
        const r = await model.evalLoss(batchOf(c));
        assert.equal(r.tokens, c.tokens);
        relClose(r.lossSum, c.lossSum, 1e-5, 'lossSum');
        const s = await model.step(batchOf(c));  // same numbers with autograd on
        assert.equal(s.tokens, c.tokens);
        relClose(s.lossSum, c.lossSum, 1e-5, 'step lossSum');
      }
      await model.dispose();
    });

    test('per-parameter gradient norms (rel 1e-4) and one AdamW step', async () => {
      const model = await loadModel(dir);
      const r = await model.step(batchOf(ref.padded));
      relClose(r.lossSum, ref.padded.lossSum, 1e-5, 'lossSum');
      const norms = await model.gradNorms();
      assert.deepEqual(Object.keys(norms).sort(), Object.keys(ref.gradNorms).sort());
      for (const [n, g] of Object.entries(ref.gradNorms)) relClose(norms[n]!, g, 1e-4, `grad norm ${n}`);

      const before = new Map<string, Float32Array>();
      for (const n of Object.keys(ref.adamw.params)) before.set(n, (await model.getParameter(n)).data);
      const a = ref.adamw;
      const { gradNorm } = await model.optimizerStep({
        lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weightDecay, maxGradNorm: a.maxGradNorm,
      });
      relClose(gradNorm, a.gradNorm, 1e-4, 'pre-clip grad norm');
      for (const [n, p] of Object.entries(a.params)) {
        const after = (await model.getParameter(n)).data;
        const b0 = before.get(n)!;
        let sq = 0;
        for (let i = 0; i < after.length; ++i) sq += (after[i]! - b0[i]!) ** 2;
        relClose(Math.sqrt(sq), p.deltaNorm, 2e-3, `AdamW update norm ${n}`);
        p.deltaHead.forEach((d, i) => {
          if (noiseFloorUpdate(name, (p as { decay?: boolean }).decay !== false, a.lr, d)) return;
          assert.ok(Math.abs(after[i]! - b0[i]! - d) <= 2e-6, `AdamW update ${n}[${i}]`);
        });
      }
      await model.dispose();
    });

    test('steps after zeroGrad (the loss reuses its buffers) and accumulated steps keep the reference gradients', async () => {
      const model = await loadModel(dir);
      for (let i = 0; i < 2; ++i) {
        await model.step(batchOf(ref.packed));
        await model.zeroGrad();
      }
      await model.step(batchOf(ref.padded));
      let norms = await model.gradNorms();
      for (const [n, g] of Object.entries(ref.gradNorms)) relClose(norms[n]!, g, 1e-4, `grad norm ${n} after zeroGrad`);
      await model.step(batchOf(ref.padded)); // accumulates: every gradient doubles
      norms = await model.gradNorms();
      for (const [n, g] of Object.entries(ref.gradNorms)) relClose(norms[n]!, 2 * g, 1e-4, `accumulated grad norm ${n}`);
      await model.dispose();
    });

    test('greedy generation: single prompt and left-padded batch (exact)', async () => {
      const model = await loadModel(dir);
      const g = ref.generate;
      const [one] = await model.generate([g.single.prompt], { maxNewTokens: g.single.maxNewTokens, stopIds: [] });
      assert.deepEqual(Array.from(one!), g.single.output);
      const rows = await model.generate(g.batch.prompts, { maxNewTokens: g.batch.maxNewTokens, stopIds: [] });
      assert.deepEqual(rows.map((r) => Array.from(r)), g.batch.output);
      await model.dispose();
    });

    test('save -> reload is bit-identical', async () => {
      const model = await loadModel(dir);
      const out = mkdtempSync(join(tmpdir(), `sftkit-save-${name}-`));
      try {
        await model.save(out);
        const again = await loadModel(out);
        assert.deepEqual(await again.parameterNames(), await model.parameterNames());
        for (const n of await model.parameterNames()) {
          const a = await model.getParameter(n);
          const b = await again.getParameter(n);
          assert.deepEqual(b.shape, a.shape);
          assert.ok(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)), n);
        }
        const x = await model.forward(batchOf(ref.padded));
        const y = await again.forward(batchOf(ref.padded));
        assert.deepEqual(y.logits, x.logits);
        await again.dispose();
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      await model.dispose();
    });
  });
}

for (const name of NEW_NAMES) {
  describe(`tiny-${name} (issue 22): checkpointing, packed rows, legacy config keys`, () => {
    const dir = join(fixtures, `tiny-${name}`);
    const ref = readParityFixture(dir);

    test('gradient checkpointing: loss and every gradient norm vs transformers (rel 1e-5 / 1e-4)', async () => {
      const model = await loadModel(dir, { gradientCheckpointing: true });
      for (const c of [ref.packed, ref.padded]) {
        await model.zeroGrad();
        const r = await model.step(batchOf(c));
        relClose(r.lossSum, c.lossSum, 1e-5, 'checkpointed lossSum');
      }
      const norms = await model.gradNorms();
      let worst = 0;
      for (const [n, g] of Object.entries(ref.gradNorms)) {
        relClose(norms[n]!, g, 1e-4, `checkpointed grad norm ${n}`);
        worst = Math.max(worst, Math.abs(norms[n]! - g) / g);
      }
      const plain = await loadModel(dir);
      const worstPadded = await worstLogits(plain, ref.padded);
      const worstPacked = await worstLogits(plain, ref.packed);
      console.log(`# tiny-${name}: max |logits - HF| padded ${worstPadded.toExponential(2)}, packed ${worstPacked.toExponential(2)}; worst grad norm rel ${worst.toExponential(2)} (checkpointed)`);
      await plain.dispose();
      await model.dispose();
    });

    test('packed rows equal the documents run one by one (atol 1e-5)', async () => {
      const model = await loadModel(dir);
      const c = ref.packed;
      const [, T] = c.shape;
      const packed = await model.forward(batchOf(c));
      const V = packed.shape[2];
      let worst = 0;
      for (let b = 0; b < c.shape[0]; ++b) {
        let s = 0;
        for (const n of c.docLengths![b]!) {
          const ids = Int32Array.from(c.inputIds.slice(b * T + s, b * T + s + n));
          const alone = await model.forward({ inputIds: ids, shape: [1, n] });
          for (let i = 0; i < n * V; ++i) worst = Math.max(worst, Math.abs(alone.logits[i]! - packed.logits[(b * T + s) * V + i]!));
          s += n;
        }
      }
      assert.ok(worst <= 1e-5, `packed vs separate: ${worst}`);
      await model.dispose();
    });

    test('config.legacy.json (the 4.x key layout) gives the same logits (atol 1e-4)', async () => {
      const tmp = mkdtempSync(join(tmpdir(), `sftkit-legacy-${name}-`));
      try {
        copyFileSync(join(dir, 'config.legacy.json'), join(tmp, 'config.json'));
        copyFileSync(join(dir, 'model.safetensors'), join(tmp, 'model.safetensors'));
        const model = await loadModel(tmp);
        await checkLogits(model, ref.padded, 'legacy padded');
        await checkLogits(model, ref.packed, 'legacy packed');
        const g = ref.generate;
        const rows = await model.generate(g.batch.prompts, { maxNewTokens: g.batch.maxNewTokens, stopIds: [] });
        assert.deepEqual(rows.map((r) => Array.from(r)), g.batch.output);
        await model.dispose();
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
}

test('directories saved by sftkit load in transformers with identical logits (recorded by check-saved-models.py)', () => {
  const rec = JSON.parse(readFileSync(join(fixtures, 'saved-by-sftkit.json'), 'utf8')) as {
    allMatch: boolean;
    models: Record<string, { maxAbsLogitsDiff: number }>;
  };
  assert.equal(rec.allMatch, true);
  for (const n of ['tiny-gpt2', 'tiny-llama', 'tiny-llama-untied', 'tiny-qwen2', 'tiny-qwen3', 'tinystories-656k', 'tiny-gpt2-resized', ...NEW_NAMES.map((x) => `tiny-${x}`)]) {
    assert.ok(rec.models[n]!.maxAbsLogitsDiff <= 1e-5, n);
  }
});
