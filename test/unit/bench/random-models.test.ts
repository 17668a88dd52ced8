// Issue 22's bench shapes: the configs `sftkit bench build-model --shape llama3.2-1b|gemma3-1b` writes are those of
// Llama-3.2-1B and Gemma-3-1B, and sftkit reads them as such (Llama 3 RoPE scaling; Gemma 3's two RoPEs and 5:1
// sliding layers). The weights themselves (4-5 GB) are not built here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matmulParameters } from '../../../src/bench/flops.ts';
import { BENCH_SHAPES, gemma3Config, llama32Config } from '../../../src/bench/random-models.ts';
import { parseModelConfig } from '../../../src/native/model-config.ts';

test('bench shapes: llama3.2-1b is Llama-3.2-1B (llama3 RoPE, GQA 32/8, tied, 128256 tokens)', () => {
  assert.ok(BENCH_SHAPES.includes('llama3.2-1b'));
  const { spec } = parseModelConfig(llama32Config());
  assert.equal(spec.arch, 'llama');
  assert.deepEqual(
    [spec.vocabSize, spec.hiddenSize, spec.intermediateSize, spec.numLayers, spec.numHeads, spec.numKvHeads, spec.headDim, spec.tieWordEmbeddings],
    [128256, 2048, 8192, 16, 32, 8, 64, true],
  );
  const rope = spec.ropes[0]!;
  assert.deepEqual([rope.type, rope.theta, rope.factor, rope.lowFreqFactor, rope.highFreqFactor, rope.originalMaxPositions], ['llama3', 500000, 32, 1, 4, 8192]);
  // The matmul parameters: the layers plus the tied V x C once (1.236B parameters with the norms).
  assert.equal(matmulParameters(spec), 1_235_746_816);
});

test('bench shapes: gemma3-1b is Gemma-3-1B (gemma3_text, 262144 tokens, 5 sliding : 1 full, two RoPEs)', () => {
  assert.ok(BENCH_SHAPES.includes('gemma3-1b'));
  const { spec } = parseModelConfig(gemma3Config());
  assert.equal(spec.arch, 'gemma3_text');
  assert.deepEqual(
    [spec.vocabSize, spec.hiddenSize, spec.intermediateSize, spec.numLayers, spec.numHeads, spec.numKvHeads, spec.headDim, spec.tieWordEmbeddings],
    [262144, 1152, 6912, 26, 4, 1, 256, true],
  );
  assert.equal(spec.slidingWindow, 512);
  assert.deepEqual(spec.slidingLayers!.map((s, i) => (s ? -1 : i)).filter((i) => i >= 0), [5, 11, 17, 23]);
  assert.deepEqual(spec.ropes.map((r) => r.theta).sort((a, b) => a - b), [10000, 1000000]);
  assert.equal(matmulParameters(spec), 999_751_680);
});
