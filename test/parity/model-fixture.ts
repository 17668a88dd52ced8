// The parity fixtures of the tiny models (test/fixtures/models/tiny-*/parity.json, written by
// scripts/gen-fixtures/models.py): their shape, a reader, and the Batch a fixture case feeds the engine. Used by
// test/parity/models.test.ts (against transformers) and bench/device/parity.ts (CPU against a device).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Batch } from '../../src/native/model.ts';

export interface ParityCase {
  shape: [number, number];
  inputIds: number[];
  labels: number[];
  attentionMask?: number[];
  positionIds?: number[];
  docLengths?: number[][];
  logits: (number[] | null)[][];
  lossSum: number;
  tokens: number;
}

export interface ParityFixture {
  padded: ParityCase;
  packed: ParityCase;
  gradNorms: Record<string, number>;
  adamw: {
    lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; maxGradNorm: number; gradNorm: number;
    params: Record<string, { deltaNorm: number; deltaHead: number[] }>;
  };
  generate: {
    single: { prompt: number[]; maxNewTokens: number; output: number[] };
    batch: { prompts: number[][]; maxNewTokens: number; output: number[][] };
  };
}

export function readParityFixture(modelDir: string): ParityFixture {
  return JSON.parse(readFileSync(join(modelDir, 'parity.json'), 'utf8')) as ParityFixture;
}

/** The engine's Batch for a fixture case (typed arrays; masks, positions and packed document lengths when present). */
export function batchOfCase(c: ParityCase): Batch {
  const b: Batch = { inputIds: Int32Array.from(c.inputIds), labels: Int32Array.from(c.labels), shape: c.shape };
  if (c.attentionMask) b.attentionMask = Uint8Array.from(c.attentionMask);
  if (c.positionIds) b.positionIds = Int32Array.from(c.positionIds);
  if (c.docLengths) b.docLengths = c.docLengths.map((d) => Int32Array.from(d));
  return b;
}
