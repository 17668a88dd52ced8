// GGUF v3 constants (llama.cpp's ggml/include/gguf.h, ggml.h and gguf-py's constants.py): value types, the ggml
// tensor types sftkit writes, token types, file types, and the sizes that follow from them.
//
// File layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 key-value count; the key-value pairs
// (string key, u32 value type, value); the tensor infos (string name, u32 n_dims, u64 ne[n_dims] innermost first,
// u32 ggml type, u64 offset from the data section); padding to `general.alignment` (32); the tensor data, each
// tensor starting at a multiple of the alignment. A string is a u64 byte length + UTF-8 bytes (no NUL).

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type: the type of a metadata value. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** The ggml tensor types sftkit writes (and reads back). */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

export const GGML_TYPE_NAMES: Readonly<Record<number, string>> = { 0: 'F32', 1: 'F16', 8: 'Q8_0', 30: 'BF16' };

/** Q8_0: blocks of 32 values along the innermost dimension, each an fp16 scale + 32 int8. */
export const Q8_0_BLOCK = 32;
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

/** Bytes of a tensor of `rowLength * rows` values (rowLength = ne[0], a multiple of 32 for Q8_0). */
export function tensorBytes(type: GgmlType, elements: number): number {
  switch (type) {
    case GgmlType.F32:
      return elements * 4;
    case GgmlType.F16:
    case GgmlType.BF16:
      return elements * 2;
    case GgmlType.Q8_0:
      return (elements / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
  }
}

/** llama_token_type as stored in `tokenizer.ggml.token_type`. */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** llama_ftype as stored in `general.file_type` (the type of most weights). */
export const LlamaFileType = { ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q8_0: 7, MOSTLY_BF16: 32 } as const;

/** `--type`: the type 2-D weights are stored in. */
export type GgufOutType = 'f32' | 'f16' | 'bf16' | 'q8_0';
export const GGUF_OUT_TYPES: readonly GgufOutType[] = ['f32', 'f16', 'bf16', 'q8_0'];

export const FILE_TYPE_OF: Readonly<Record<GgufOutType, number>> = {
  f32: LlamaFileType.ALL_F32,
  f16: LlamaFileType.MOSTLY_F16,
  bf16: LlamaFileType.MOSTLY_BF16,
  q8_0: LlamaFileType.MOSTLY_Q8_0,
};

/** A metadata value as written: the GGUF type is explicit (a JS number alone does not say u32 or f32). */
export type GgufValue =
  | { type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { type: 'u64' | 'i64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; of: 'u32' | 'i32' | 'f32' | 'string' | 'bool'; value: readonly (number | string | boolean)[] };

export type GgufMetadata = Array<[key: string, value: GgufValue]>;

export const u32 = (value: number): GgufValue => ({ type: 'u32', value });
export const f32 = (value: number): GgufValue => ({ type: 'f32', value });
export const str = (value: string): GgufValue => ({ type: 'string', value });
export const bool = (value: boolean): GgufValue => ({ type: 'bool', value });
export const strings = (value: readonly string[]): GgufValue => ({ type: 'array', of: 'string', value });
export const f32s = (value: readonly number[]): GgufValue => ({ type: 'array', of: 'f32', value });
export const i32s = (value: readonly number[]): GgufValue => ({ type: 'array', of: 'i32', value });
