// What varlen attention costs on packed rows: the same documents trained once packed into rows of T (positions
// restarting per document, attention kept inside each document by the engine's length-bucketed SDPA) and once as
// rows of their own ([B*T/L, L], no padding). Equal tokens, equal model FLOPs; attention FLOPs are equal too
// (each document attends causally to itself in both layouts), so the ratio is the overhead of the packed layout.
// Prints one JSON object per document length.
//   node --import tsx bench/packed.ts [--model gpt2-124m|DIR] [--batch 2] [--seq 1024] [--doc-lens 32,64,256,1024]
//                                     [--steps 2] [--warmup 1] [--threads 2]
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, type Batch } from '../src/native/model.ts';
import { BENCH_MODEL_SHAPES, benchModel, type BenchModelShape } from './bench-models.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'gpt2-124m' },
    batch: { type: 'string', default: '2' },
    seq: { type: 'string', default: '1024' },
    'doc-lens': { type: 'string', default: '32,64,256,1024' },
    steps: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '1' },
    threads: { type: 'string', default: '2' },
  },
});
const B = Number(values.batch), T = Number(values.seq), steps = Number(values.steps), warmup = Number(values.warmup), threads = Number(values.threads);

/** n documents of L random tokens; each document's first token unlabelled (nothing before it to predict it from). */
function documents(n: number, L: number, vocab: number, seed: number): Int32Array {
  let s = seed >>> 0;
  const ids = new Int32Array(n * L);
  for (let i = 0; i < ids.length; i++) ids[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % vocab;
  return ids;
}

function packed(ids: Int32Array, L: number): Batch {
  const labels = Int32Array.from(ids, (id, i) => (i % L === 0 ? -100 : id));
  const positionIds = Int32Array.from(ids, (_, i) => i % L);
  const docLengths = Array.from({ length: B }, () => new Int32Array(T / L).fill(L));
  return { inputIds: ids, labels, positionIds, docLengths, shape: [B, T] };
}

function separate(ids: Int32Array, L: number): Batch {
  const labels = Int32Array.from(ids, (id, i) => (i % L === 0 ? -100 : id));
  return { inputIds: ids, labels, attentionMask: new Uint8Array(ids.length).fill(1), shape: [ids.length / L, L] };
}

const named = (BENCH_MODEL_SHAPES as readonly string[]).includes(values.model);
const model = await loadModel(named ? benchModel(values.model as BenchModelShape) : resolve(values.model), { threads });
try {
  for (const L of values['doc-lens'].split(',').map(Number)) {
    if (!Number.isInteger(L) || L < 2 || T % L !== 0) throw new Error(`--doc-lens: ${L} does not divide --seq ${T}`);
    const ms: Record<'packed' | 'separate', number[]> = { packed: [], separate: [] };
    for (let i = 0; i < warmup + steps; i++) {
      const ids = documents(B * T / L, L, model.spec.vocabSize, 7 + i);
      for (const layout of ['packed', 'separate'] as const) {
        const t0 = performance.now();
        await model.step(layout === 'packed' ? packed(ids, L) : separate(ids, L));
        await model.zeroGrad();
        if (i >= warmup) ms[layout].push(performance.now() - t0);
      }
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    const p = mean(ms.packed), s = mean(ms.separate);
    process.stdout.write(`${JSON.stringify({
      model: values.model, rows: B, seq: T, doc_len: L, docs: B * T / L, threads,
      packed_ms: p, separate_ms: s, packed_over_separate: p / s,
      packed_tokens_per_s: (B * T) / (p / 1000), separate_tokens_per_s: (B * T) / (s / 1000),
    })}\n`);
  }
} finally {
  await model.dispose();
}
