// The models every GGUF export check runs on (test/e2e/export-gguf.test.ts and scripts/gen-fixtures/export-gguf.ts,
// whose gguf-py report the test compares against): the real TinyStories-656K (HF llama) and stories260K (imported
// from llama2.c), and the tiny random gpt2, qwen2 and qwen3 fixtures with a 128-token tokenizer of their own.
import { cpSync } from 'node:fs';
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
