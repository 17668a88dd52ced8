// FLOP accounting for training-throughput benches: the matmul FLOPs of one training token (forward + backward),
// 6 x the matmul parameters (every projection of every layer and the LM head; embedding lookups cost none) plus
// causal-agnostic attention as in the PaLM paper / nanoGPT's estimate_mfu: 12 x layers x heads x head_dim x T.
import type { ModelSpec } from '../native/index.ts';

/** Parameters that take part in matrix multiplications (per token, once each), LM head included. */
export function matmulParameters(spec: ModelSpec): number {
  const C = spec.hiddenSize, I = spec.intermediateSize, qDim = spec.numHeads * spec.headDim, kvDim = spec.numKvHeads * spec.headDim;
  const attention = spec.arch === 'gpt2' ? 4 * C * C : C * qDim + 2 * C * kvDim + qDim * C;
  const mlp = spec.arch === 'gpt2' ? 2 * C * I : 3 * C * I;
  return spec.numLayers * (attention + mlp) + spec.vocabSize * C;
}

/** The LM head's parameters (V x C), part of matmulParameters. */
export function headParameters(spec: ModelSpec): number {
  return spec.vocabSize * spec.hiddenSize;
}

/** Training FLOPs per token at sequence length T: 6 N_matmul + 12 L H D T. */
export function trainFlopsPerToken(spec: ModelSpec, seqLen: number): number {
  return 6 * matmulParameters(spec) + 12 * spec.numLayers * spec.numHeads * spec.headDim * seqLen;
}

/**
 * FLOPs a training step executes when `tokens` positions run through the layers and `headRows` of them through the
 * LM head (an engine that computes every position has headRows = tokens).
 */
export function executedTrainFlops(spec: ModelSpec, seqLen: number, tokens: number, headRows: number): number {
  const perToken = trainFlopsPerToken(spec, seqLen) - 6 * headParameters(spec);
  return tokens * perToken + 6 * headParameters(spec) * headRows;
}

/** Model FLOP utilisation: achieved training FLOP/s over a measured ceiling (GFLOP/s). */
export function mfu(tokensPerSecond: number, flopsPerToken: number, ceilingGflops: number): number {
  return (tokensPerSecond * flopsPerToken) / (ceilingGflops * 1e9);
}
