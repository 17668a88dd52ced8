// The record layout of test/fixtures/tokens/*.json (scripts/gen-fixtures/tokens.py): one type for the parity tests
// that read them (tokens-masks: every tokenizer; tokenizers-llama3-gemma3: the whole-rendering checks).
import type { RecordFormat } from '../../src/data/types.ts';
import type { MaskMode } from '../../src/mask/mask-mode.ts';

export interface TokenCase {
  name: string;
  format: RecordFormat;
  record: unknown;
  template: string;
  mask: MaskMode;
  max_length?: number;
  truncation?: 'cut' | 'drop';
  input_ids?: number[];
  labels?: number[];
  dropped?: string;
  text: string;
  prompt_alone_ids?: number[];
  whole_text_ids?: number[];
  /** Chat cases through the tokenizer's own template: the pieces trained, and transformers' whole-rendering ids. */
  trained_text?: string[];
  hf_rendered_ids?: number[];
}

export interface TokenFixture {
  versions: Record<string, string>;
  tokenizer: string;
  tokenizer_dir: string;
  added_tokens: { content: string; id: number }[];
  prefix_ids: number[];
  eos_id: number;
  pad_id: number;
  encode: { text: string; hf_ids: number[]; hf_ids_with_special_tokens: number[]; ids: number[]; continuation_ids: number[] }[];
  cases: TokenCase[];
  packing: {
    capacity: number;
    case_names: string[];
    bins: number[][];
    rows: { input_ids: number[]; labels: number[]; position_ids: number[]; attention_mask: number[]; doc_lengths: number[] }[];
  };
}
