// CPU-vs-device comparisons of the device check: the same fixture model loaded twice (CPU fp32, the reference, and
// the device, fp32 or under bf16 autocast), fed the parity fixtures' batches (test/fixtures/models/tiny-*/parity.json,
// the batches test/parity/models.test.ts holds against transformers): logits, the loss, every gradient, one AdamW
// step and greedy generation.
import { loadModel, type Model, type ModelDevice } from '../../src/native/model.ts';
import { batchOfCase, readParityFixture } from '../../test/parity/model-fixture.ts';

/** max |a - b| over the positions `keep` allows (all when absent). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, keep?: (i: number) => boolean): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    if (keep && !keep(i)) continue;
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= worst)) worst = d; // NaN propagates as the worst
  }
  return worst;
}

/** ||actual - expected|| / ||expected|| (the absolute norm of the difference when expected is all zeros). */
export function relNormError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i] as number;
    diff += ((actual[i] as number) - e) ** 2;
    ref += e * e;
  }
  return ref > 0 ? Math.sqrt(diff / ref) : Math.sqrt(diff);
}

export const relError = (actual: number, expected: number): number => Math.abs(actual - expected) / Math.max(Math.abs(expected), 1e-12);

export interface Tolerances {
  /** max |logits_device - logits_cpu| over the real positions, absolute (fp32) ... */
  logitsAbs: number | null;
  /** ... or relative to the largest |logit| of the batch (bf16, whose rounding error scales with the values). */
  logitsRelMax: number | null;
  /** relative error of the masked loss sum. */
  lossRel: number;
  /** per parameter: ||g_device - g_cpu|| / ||g_cpu||. */
  gradRelNorm: number;
  /** relative error of the norm of one AdamW update, per parameter (null: not compared). */
  adamwUpdateRel: number | null;
}

/**
 * fp32 (TF32 off: libtorch's default float32 matmul precision is 'highest'): the parity suite's own tolerances against
 * transformers (logits 1e-4 absolute, loss 1e-5 relative, gradient norms 1e-4 relative, AdamW update norm 2e-3).
 * bf16 autocast against the fp32 CPU reference: bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 2e-3 per
 * operation) and the tiny models' forward passes go through ~10 rounded matmuls. CPU autocast against the CPU
 * (2026-12-06): logits 0.8-1.6% of the largest |logit| (~3), loss 2.4e-4..6.5e-4, gradients 1.5-2.9%; the bounds
 * leave about 2x (logits), 15x (loss) and 3.5x (gradients) over that.
 */
export const TOLERANCES: { fp32: Tolerances; bf16: Tolerances } = {
  fp32: { logitsAbs: 1e-4, logitsRelMax: null, lossRel: 1e-5, gradRelNorm: 1e-4, adamwUpdateRel: 2e-3 },
  bf16: { logitsAbs: null, logitsRelMax: 3e-2, lossRel: 1e-2, gradRelNorm: 1e-1, adamwUpdateRel: null },
};

export interface ModelParity {
  model: string;
  ok: boolean;
  failures: string[];
  logitsMaxAbs: number;
  /** logitsMaxAbs over the largest |logit| of the CPU's logits. */
  logitsRelMax: number;
  lossRelWorst: number;
  gradRelNormWorst: number;
  gradWorstName: string;
  gradients: number;
  adamwUpdateRelWorst?: number;
  generation?: 'equal' | 'differs';
}

/** Every gradient of `a` against `b` (same names): the worst ||a - b|| / ||b||. */
export async function compareGradients(dev: Model, cpu: Model): Promise<{ worst: number; name: string; count: number; missing: string[] }> {
  const names = Object.keys(await cpu.gradNorms()).sort();
  const devNames = Object.keys(await dev.gradNorms()).sort();
  const missing = [...names.filter((n) => !devNames.includes(n)), ...devNames.filter((n) => !names.includes(n)).map((n) => `${n} (device only)`)];
  let worst = 0;
  let name = '';
  for (const n of names) {
    const g = await cpu.getGradient(n);
    const d = await dev.getGradient(n);
    if (!g || !d) continue;
    const e = relNormError(d.data, g.data);
    if (!(e <= worst)) {
      worst = e;
      name = n;
    }
  }
  return { worst, name, count: names.length, missing };
}

/**
 * One fixture model on the CPU (fp32) and on `device` (fp32, or bf16 autocast): logits of the padded and packed
 * batches, the loss sums, every gradient of a training step and (fp32) one AdamW step and greedy generation.
 */
export async function modelParity(dir: string, name: string, device: ModelDevice, autocast: boolean, threads: number): Promise<ModelParity> {
  const tol = autocast ? TOLERANCES.bf16 : TOLERANCES.fp32;
  const ref = readParityFixture(dir);
  const cpu = await loadModel(dir, { device: 'cpu', threads });
  const dev = await loadModel(dir, { device, threads, ...(autocast ? { autocast: true } : {}) });
  const r: ModelParity = { model: name, ok: true, failures: [], logitsMaxAbs: 0, logitsRelMax: 0, lossRelWorst: 0, gradRelNormWorst: 0, gradWorstName: '', gradients: 0 };
  const fail = (m: string) => {
    r.ok = false;
    r.failures.push(m);
  };
  try {
    for (const [k, c] of [['padded', ref.padded], ['packed', ref.packed]] as const) {
      const a = await cpu.forward(batchOfCase(c));
      const b = await dev.forward(batchOfCase(c));
      const [B, T, V] = a.shape;
      // The real positions only (the fixture's logits are null at padding).
      const real = (i: number) => {
        const row = Math.floor(i / (T * V));
        const t = Math.floor(i / V) % T;
        return row < B && c.logits[row]?.[t] != null;
      };
      const d = maxAbsDiff(b.logits, a.logits, real);
      const scale = maxAbsDiff(a.logits, new Float32Array(a.logits.length), real);
      r.logitsMaxAbs = Math.max(r.logitsMaxAbs, d);
      r.logitsRelMax = Math.max(r.logitsRelMax, d / Math.max(scale, 1e-12));
      if (tol.logitsAbs !== null && !(d <= tol.logitsAbs)) fail(`${k} logits: max |device - cpu| = ${d.toExponential(2)} > ${tol.logitsAbs}`);
      if (tol.logitsRelMax !== null && !(d <= tol.logitsRelMax * scale)) {
        fail(`${k} logits: max |device - cpu| = ${d.toExponential(2)} > ${tol.logitsRelMax} x the largest |logit| ${scale.toFixed(3)}`);
      }
      const la = await cpu.evalLoss(batchOfCase(c));
      const lb = await dev.evalLoss(batchOfCase(c));
      if (la.tokens !== lb.tokens) fail(`${k} loss tokens ${lb.tokens} vs ${la.tokens}`);
      const e = relError(lb.lossSum, la.lossSum);
      r.lossRelWorst = Math.max(r.lossRelWorst, e);
      if (!(e <= tol.lossRel)) fail(`${k} loss: ${lb.lossSum} vs ${la.lossSum} (rel ${e.toExponential(2)} > ${tol.lossRel})`);
    }
    const sa = await cpu.step(batchOfCase(ref.padded));
    const sb = await dev.step(batchOfCase(ref.padded));
    const se = relError(sb.lossSum, sa.lossSum);
    r.lossRelWorst = Math.max(r.lossRelWorst, se);
    if (!(se <= tol.lossRel)) fail(`step loss: ${sb.lossSum} vs ${sa.lossSum} (rel ${se.toExponential(2)})`);
    const g = await compareGradients(dev, cpu);
    r.gradRelNormWorst = g.worst;
    r.gradWorstName = g.name;
    r.gradients = g.count;
    if (g.missing.length) fail(`gradients on one side only: ${g.missing.join(', ')}`);
    if (!(g.worst <= tol.gradRelNorm)) fail(`gradient ${g.name}: ||device - cpu|| / ||cpu|| = ${g.worst.toExponential(2)} > ${tol.gradRelNorm}`);
    if (!autocast) {
      // Greedy generation before any weight moves: the fixture's single prompt and left-padded batch, exactly (the
      // CPU matches them too, test/parity/models.test.ts).
      const gen = ref.generate;
      const [one] = await dev.generate([gen.single.prompt], { maxNewTokens: gen.single.maxNewTokens, stopIds: [] });
      const rows = await dev.generate(gen.batch.prompts, { maxNewTokens: gen.batch.maxNewTokens, stopIds: [] });
      const got = { single: Array.from(one!), batch: rows.map((x) => Array.from(x)) };
      const same = JSON.stringify(got.single) === JSON.stringify(gen.single.output) && JSON.stringify(got.batch) === JSON.stringify(gen.batch.output);
      r.generation = same ? 'equal' : 'differs';
      if (!same) fail(`greedy generation differs from the fixture's: ${JSON.stringify(got)} vs ${JSON.stringify({ single: gen.single.output, batch: gen.batch.output })}`);
    }
    if (tol.adamwUpdateRel !== null) {
      const names = Object.keys(await cpu.gradNorms());
      const before = new Map<string, Float32Array>();
      for (const n of names) before.set(n, (await cpu.getParameter(n)).data);
      const a = ref.adamw;
      const opts = { lr: a.lr, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weightDecay, maxGradNorm: a.maxGradNorm };
      const na = await cpu.optimizerStep(opts);
      const nb = await dev.optimizerStep(opts);
      let worst = relError(nb.gradNorm, na.gradNorm);
      for (const n of names) {
        const p0 = before.get(n)!;
        const pa = (await cpu.getParameter(n)).data;
        const pb = (await dev.getParameter(n)).data;
        let ua = 0;
        let ub = 0;
        for (let i = 0; i < p0.length; i++) {
          ua += ((pa[i] as number) - (p0[i] as number)) ** 2;
          ub += ((pb[i] as number) - (p0[i] as number)) ** 2;
        }
        worst = Math.max(worst, relError(Math.sqrt(ub), Math.sqrt(ua)));
      }
      r.adamwUpdateRelWorst = worst;
      if (!(worst <= tol.adamwUpdateRel)) fail(`AdamW: update norm or pre-clip gradient norm rel ${worst.toExponential(2)} > ${tol.adamwUpdateRel}`);
    }
  } finally {
    await cpu.dispose();
    await dev.dispose();
  }
  return r;
}
