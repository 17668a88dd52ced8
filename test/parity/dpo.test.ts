// DPO and logit-level distillation against the golden numbers of scripts/gen-fixtures/dpo_kd.py: TRL's own DPO loss
// code (DPOTrainer._compute_loss over DataCollatorForPreference batches; policy tiny-llama, reference tiny-llama-untied) and
// PyTorch's F.cross_entropy + F.kl_div. Tolerance: rel 1e-5 for losses, rewards, log-probs and distillation
// gradients; rel 1e-4 for the model's parameter-gradient norms (a whole backward through the network in fp32).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { binding } from '../../src/native/binding.ts';
import { loadModel, type Model } from '../../src/native/model.ts';
import { pairBatch, preferenceMetrics, type PreferencePair } from '../../src/training/preference.ts';

const root = join(import.meta.dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures');
const dpo = JSON.parse(readFileSync(join(fixtures, 'dpo', 'trl-dpo.json'), 'utf8')) as {
  pairs: { prompt_ids: number[]; chosen_ids: number[]; rejected_ids: number[] }[];
  policyLogps: { chosen: number[]; rejected: number[] };
  referenceLogps: { chosen: number[]; rejected: number[] };
  trl: { lossType: 'sigmoid' | 'ipo'; beta: number; loss: number; rewardsChosen: number; rewardsRejected: number; accuracy: number; margin: number; gradNorms?: Record<string, number> }[];
  labelSmoothing: { beta: number; labelSmoothing: number; loss: number };
};

/** |actual - expected| <= rel * max(|expected|, scale): rewards are small differences of log-prob sums, so their
 *  scale is beta times the log-probs' (fp32 resolution of the sums, not of the difference). */
function close(actual: number, expected: number, rel: number, what: string, scale = 1e-3): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(Math.abs(expected), scale), `${what}: ${actual} vs ${expected}`);
}

/** The fixture's pairs as sftkit pairs: prompt tokens unlabelled, the completion labelled. */
const pairs: PreferencePair[] = dpo.pairs.map((p) => {
  const side = (answer: number[]) => ({
    inputIds: Int32Array.from([...p.prompt_ids, ...answer]),
    labels: Int32Array.from([...p.prompt_ids.map(() => -100), ...answer]),
  });
  return { chosen: side(p.chosen_ids), rejected: side(p.rejected_ids) };
});
const batch = pairBatch(pairs, 0);
const interleave = (x: { chosen: number[]; rejected: number[] }) => Float64Array.from(x.chosen.flatMap((c, i) => [c, x.rejected[i] as number]));

async function withModels(f: (policy: Model, ref: Model) => Promise<void>): Promise<void> {
  const policy = await loadModel(join(fixtures, 'models', 'tiny-llama'), { threads: 1 });
  const ref = await loadModel(join(fixtures, 'models', 'tiny-llama-untied'), { threads: 1 });
  try {
    await f(policy, ref);
  } finally {
    await policy.dispose();
    await ref.dispose();
  }
}

test('per-pair log-probs of policy and reference equal TRL\'s selective_log_softmax sums (rel 1e-5)', async () => {
  await withModels(async (policy, ref) => {
    for (const [name, model, expected] of [['policy', policy, dpo.policyLogps], ['reference', ref, dpo.referenceLogps]] as const) {
      const { logps, tokens } = await model.sequenceLogps(batch);
      const want = interleave(expected);
      want.forEach((x, i) => close(logps[i] as number, x, 1e-5, `${name} row ${i}`));
      assert.deepEqual([...tokens], dpo.pairs.flatMap((p) => [p.chosen_ids.length, p.rejected_ids.length]));
    }
  });
});

test('preferenceStep: TRL\'s loss, rewards, reward accuracy and margin for sigmoid and IPO; gradients of one step', async () => {
  await withModels(async (policy, ref) => {
    const refLogps = (await ref.sequenceLogps(batch)).logps;
    const P = pairs.length;
    const logpScale = Math.max(...[...dpo.policyLogps.chosen, ...dpo.policyLogps.rejected].map(Math.abs));
    for (const t of dpo.trl) {
      const rs = t.beta * logpScale;
      const what = `${t.lossType} beta ${t.beta}`;
      // TRL's loss is the mean over the pairs: lossScale 1 / P.
      const r = await policy.preferenceStep(batch, { refLogps, beta: t.beta, lossType: t.lossType, lossScale: 1 / P });
      close(r.lossSum / P, t.loss, 1e-5, `${what}: loss`);
      const mean = (a: Float64Array) => a.reduce((s, x) => s + x, 0) / a.length;
      close(mean(r.chosenRewards), t.rewardsChosen, 1e-5, `${what}: rewards/chosen`, rs);
      close(mean(r.rejectedRewards), t.rewardsRejected, 1e-5, `${what}: rewards/rejected`, rs);
      close(mean(r.chosenRewards) - mean(r.rejectedRewards), t.margin, 1e-5, `${what}: rewards/margins`, rs);
      assert.equal(r.chosenRewards.filter((c, i) => c > (r.rejectedRewards[i] as number)).length / P, t.accuracy, `${what}: accuracy`);
      if (t.gradNorms) {
        const g = await policy.gradNorms();
        for (const [name, x] of Object.entries(t.gradNorms)) close(g[name] as number, x, 1e-4, `${what}: grad ${name}`);
      }
      await policy.zeroGrad();
      // The eval-only path computes the same numbers from log-prob sums.
      const m = preferenceMetrics(interleave(dpo.policyLogps), interleave(dpo.referenceLogps), Float64Array.from(dpo.pairs.flatMap((p) => [p.chosen_ids.length, p.rejected_ids.length])), { beta: t.beta, labelSmoothing: 0, lossType: t.lossType });
      close(m.loss, t.loss, 1e-5, `${what}: preferenceMetrics loss`);
      close(m.rewards_chosen, t.rewardsChosen, 1e-5, `${what}: preferenceMetrics rewards`, rs);
      assert.equal(m.accuracy, t.accuracy);
    }
    const ls = dpo.labelSmoothing;
    const r = await policy.preferenceStep(batch, { refLogps, beta: ls.beta, labelSmoothing: ls.labelSmoothing });
    close(r.lossSum / P, ls.loss, 1e-5, 'label smoothing');
  });
});

test('fused distillation loss and gradients equal F.cross_entropy + T^2 F.kl_div (rel 1e-5)', async () => {
  const kd = JSON.parse(readFileSync(join(fixtures, 'dpo', 'kd.json'), 'utf8')) as { cases: Record<string, number | number[]>[] };
  const f32 = (x: unknown) => Float32Array.from(x as number[]);
  for (const c of kd.cases) {
    const r = await binding().distillLoss(
      f32(c.hidden), c.hiddenShape as number[], f32(c.weight), c.weightShape as number[], f32(c.teacherHidden), c.teacherHiddenShape as number[],
      f32(c.teacherWeight), c.teacherWeightShape as number[], Int32Array.from(c.labels as number[]), c.labelsShape as number[],
      { alpha: c.alpha as number, temperature: c.temperature as number, chunkRows: 4 },
    );
    const what = `alpha ${c.alpha}, T ${c.temperature}`;
    assert.equal(r.count, c.count);
    for (const k of ['lossSum', 'ceSum', 'klSum'] as const) close(r[k], c[k] as number, 1e-5, `${what}: ${k}`);
    for (const [k, got] of [['gradHidden', r.gradHidden], ['gradWeight', r.gradWeight]] as const) {
      const want = c[k] as number[];
      let num = 0;
      let den = 0;
      want.forEach((x, i) => {
        num += ((got[i] as number) - x) ** 2;
        den += x * x;
      });
      assert.ok(Math.sqrt(num / den) <= 1e-5, `${what}: ${k} relative error ${Math.sqrt(num / den)}`);
    }
  }
});
