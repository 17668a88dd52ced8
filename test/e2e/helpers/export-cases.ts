// The models every GGUF export check runs on (test/e2e/export-gguf.test.ts and scripts/gen-fixtures/export-gguf.ts,
// whose gguf-py report the test compares against): the real TinyStories-656K (HF llama) and stories260K (imported
// from llama2.c), and the tiny random gpt2, qwen2 and qwen3 fixtures with a 128-token tokenizer of their own; and
// issue 22's tiny fixtures (ARCHITECTURE_CASES: test/e2e/export-gguf-architectures.test.ts, f32).
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertLlama2c } from '../../../src/convert/index.ts';
import type { GgufOutType } from '../../../src/export/index.ts';
import { writeTinyTokenizer } from './tiny-tokenizer.ts';

export const EXPORT_TYPES: GgufOutType[] = ['f32', 'f16', 'bf16', 'q8_0'];

export interface ExportCase {
  name: string;
  dir: string;
  /** A real pretrained model (agreement thresholds apply), not a random one. */
  real: boolean;
}

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'models');

/** Prepares the model directories under `scratch` (the llama2.c import, tokenizers for the tiny models). */
export async function prepareExportCases(scratch: string): Promise<ExportCase[]> {
  const stories = join(scratch, 'stories260K');
  await convertLlama2c({ checkpoint: join(fixtures, 'stories260K', 'stories260K.bin'), tokenizer: join(fixtures, 'stories260K', 'tok512.bin'), out: stories });
  const cases: ExportCase[] = [
    { name: 'tinystories-656k', dir: join(fixtures, 'tinystories-656k'), real: true },
    { name: 'stories260K', dir: stories, real: true },
  ];
  for (const [arch, pre] of [['gpt2', 'gpt-2'], ['qwen2', 'qwen2'], ['qwen3', 'qwen2']] as const) {
    const dir = join(scratch, `tiny-${arch}`);
    cpSync(join(fixtures, `tiny-${arch}`), dir, { recursive: true });
    writeTinyTokenizer(dir, pre);
    cases.push({ name: `tiny-${arch}`, dir, real: false });
  }
  return cases;
}

/** One of issue 22's tiny fixtures for the export (test/e2e/export-gguf-architectures.test.ts). */
export interface ArchitectureCase extends ExportCase {
  fixture: string;
  /** llama.cpp's architecture name. */
  arch: string;
  /** config.json changes (a variant within llama.cpp's math); none: the fixture as recorded in parity.json. */
  patch?: Record<string, unknown>;
  /** The prompt (default: parity.json's). */
  prompt?: number[];
}

/**
 * `general.name` of their exports (llama.cpp looks up Phi-3's special tokens, which the tiny vocabulary lacks, when
 * the name says phi3).
 */
export const ARCHITECTURE_EXPORT_NAME = 'tiny';

export const ARCHITECTURE_CASES: ReadonlyArray<Omit<ArchitectureCase, 'dir' | 'real'>> = [
  { name: 'gemma2', fixture: 'tiny-gemma2', arch: 'gemma2' },
  { name: 'gemma3', fixture: 'tiny-gemma3-text', arch: 'gemma3' },
  // longrope: transformers picks the long factors once the sequence is longer than original_max_position_embeddings
  // (8), llama.cpp once the context is (64 in the test): the same from a prompt of 9 tokens or more.
  { name: 'phi3', fixture: 'tiny-phi3', arch: 'phi3', prompt: [1, 17, 42, 99, 5, 63, 7, 8, 9, 10, 11, 12] },
  // Mistral without a sliding window (Mistral 7B v0.2 and later) is llama's math.
  { name: 'mistral-no-window', fixture: 'tiny-mistral', patch: { sliding_window: null }, arch: 'llama' },
  // llama.cpp's smollm3 leaves out RoPE on layers 3, 7, ...: with 3 layers every layer applies RoPE.
  { name: 'smollm3-default-nope', fixture: 'tiny-smollm3', patch: { no_rope_layers: [1, 1, 1] }, arch: 'smollm3' },
];

/** Copies issue 22's fixtures under `scratch` (config patched, a tokenizer of their own). */
export function prepareArchitectureCases(scratch: string): ArchitectureCase[] {
  return ARCHITECTURE_CASES.map((c) => {
    const dir = join(scratch, c.name);
    cpSync(join(fixtures, c.fixture), dir, { recursive: true });
    if (c.patch) {
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, ...c.patch }));
    }
    writeTinyTokenizer(dir, 'gpt-2');
    return { ...c, dir, real: false };
  });
}
