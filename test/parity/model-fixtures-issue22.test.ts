// The parity fixtures of issue 22's architectures (scripts/gen-fixtures/models.py NEW_FIXTURES: rope scaling,
// Gemma 2/3, Phi-3, sliding windows, NoPE layers) are well formed before any native code reads them: the record
// format of models.test.ts, every parameter of model.safetensors has a gradient norm and an AdamW delta, the
// distinctive feature changes the logits (ablations), greedy decoding is not on a near-tie, the sequences and the
// generations run past the sliding window, and each fixture stays small. No addon needed.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readParityFixture } from './model-fixture.ts';

const fixtures = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fixtures', 'models');

/** name -> model_type and the layer kinds its pattern must show (undefined: no per-layer pattern). */
const NEW: Record<string, { arch: string; window?: number; layerKinds?: string[] }> = {
  'llama3-rope': { arch: 'llama' },
  'llama-linear': { arch: 'llama' },
  'llama-dynamic': { arch: 'llama' },
  'llama-yarn': { arch: 'llama' },
  gemma2: { arch: 'gemma2', window: 4, layerKinds: ['sliding_attention', 'full_attention'] },
  'gemma3-text': { arch: 'gemma3_text', window: 4, layerKinds: ['sliding_attention', 'full_attention'] },
  phi3: { arch: 'phi3' },
  mistral: { arch: 'mistral', window: 4 },
  'qwen2-sliding': { arch: 'qwen2', window: 4, layerKinds: ['sliding_attention', 'full_attention'] },
  smollm3: { arch: 'smollm3' },
};

interface Extra {
  arch: string;
  versions: Record<string, string>;
  attnImplementation: string;
  features: string[];
  layerTypes?: string[];
  ablations: Record<string, number>;
  hfPackedVsSeparate: number;
  greedyMargins: { single: number; batch: number };
  notes: string[];
}

/** Tensor names of a safetensors file (its JSON header). */
function tensorNames(file: string): string[] {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  return Object.keys(header).filter((k) => k !== '__metadata__');
}

for (const [name, want] of Object.entries(NEW)) {
  describe(`tiny-${name} fixture (issue 22)`, () => {
    const dir = join(fixtures, `tiny-${name}`);
    const ref = readParityFixture(dir);
    const extra = JSON.parse(readFileSync(join(dir, 'parity.json'), 'utf8')) as Extra;
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;

    test('record format, transformers 5.x, features named', () => {
      assert.equal(extra.arch, want.arch);
      assert.equal(config.model_type, want.arch);
      assert.match(extra.versions.transformers ?? '', /^5\./);
      assert.ok(['sdpa', 'eager'].includes(extra.attnImplementation));
      assert.ok(extra.features.length >= 1);
      assert.equal(config.num_hidden_layers, 3);
      for (const c of [ref.padded, ref.packed]) {
        const [B, T] = c.shape;
        assert.equal(c.inputIds.length, B * T);
        assert.equal(c.logits.length, B);
        for (const row of c.logits) for (const l of row) if (l) assert.equal(l.length, config.vocab_size);
        assert.ok(c.lossSum > 0 && c.tokens > 0);
      }
    });

    test('every parameter has a gradient norm and an AdamW record', () => {
      const names = tensorNames(join(dir, 'model.safetensors')).sort();
      const tied = config.tie_word_embeddings === true;
      const params = Object.keys(ref.gradNorms).filter((n) => !(tied && n === 'lm_head.weight')).sort();
      assert.deepEqual(params, names.filter((n) => !(tied && n === 'lm_head.weight')));
      assert.deepEqual(Object.keys(ref.adamw.params).sort(), Object.keys(ref.gradNorms).sort());
      for (const [n, g] of Object.entries(ref.gradNorms)) assert.ok(Number.isFinite(g) && g > 0, `${n} gradient`);
    });

    test('the distinctive features change the logits; greedy decoding is not on a near-tie', () => {
      assert.ok(Object.keys(extra.ablations).length >= 1);
      for (const [f, d] of Object.entries(extra.ablations)) assert.ok(d > 1e-2, `${f}: ${d}`);
      assert.ok(extra.greedyMargins.single > 1e-3 && extra.greedyMargins.batch > 1e-3);
      // transformers' own packed forward equals the separate documents the packed logits come from
      assert.ok(extra.hfPackedVsSeparate < 1e-4);
    });

    test('sequences and generations run past the sliding window; layer patterns show both kinds', () => {
      if (want.window !== undefined) {
        assert.equal(config.sliding_window, want.window);
        assert.ok(ref.padded.shape[1] > want.window);
        const g = ref.generate.single;
        assert.ok(g.prompt.length + g.maxNewTokens > want.window);
      }
      if (want.layerKinds) {
        for (const k of want.layerKinds) assert.ok(extra.layerTypes?.includes(k), `${k} in ${extra.layerTypes}`);
      }
      if (name === 'smollm3') assert.deepEqual(config.no_rope_layers, [1, 0, 1]);
    });

    test('config.legacy.json: the same model in the 4.x key layout of hub checkpoints', () => {
      const legacy = JSON.parse(readFileSync(join(dir, 'config.legacy.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(legacy.rope_parameters, undefined);
      assert.equal(legacy.layer_types, undefined);
      assert.equal(typeof legacy.rope_theta, 'number');
      assert.ok('rope_scaling' in legacy);
      assert.equal(legacy.model_type, config.model_type);
      if (name === 'gemma3-text') assert.equal(typeof legacy.rope_local_base_freq, 'number');
      if (name === 'phi3') assert.equal(legacy.original_max_position_embeddings, 8);
    });

    if (want.arch.startsWith('gemma')) {
      test('embedding scale sqrt(hidden) in each weight dtype', () => {
        const e = (extra as unknown as { embedScale: Record<string, number> }).embedScale;
        assert.equal(e.float32, Math.fround(Math.sqrt(32)));
        assert.equal(e.bfloat16, 5.65625);
        assert.equal(e.float16, 5.65625);
      });
    }

    test('small files (< 200 KB each)', () => {
      for (const f of ['model.safetensors', 'parity.json', 'config.json', 'config.legacy.json']) {
        assert.ok(statSync(join(dir, f)).size < 200_000, `${f} size`);
      }
    });
  });
}
