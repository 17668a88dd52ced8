// fp32 -> the stored ggml types, and back (the reader's dequantisation), element for element as gguf-py's
// quants.py computes them (llama.cpp's own convert_hf_to_gguf.py path):
// - f16: IEEE half, round to nearest even (numpy's astype(float16), x86 F16C);
// - bf16: the top 16 bits rounded to nearest even, NaN kept quiet (gguf-py's __compute_fp32_to_bf16);
// - Q8_0: per block of 32 values d = amax / 127 (fp32), q = round-half-away-from-zero(x * (1 / d)), d stored as f16.
import { GgmlType, Q8_0_BLOCK, Q8_0_BLOCK_BYTES, type GgmlType as GgmlTypeT } from './gguf-format.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The IEEE binary16 bits of `value` (round to nearest, ties to even). */
export function f16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** The value of binary16 bits. */
export function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The bfloat16 bits of `value` (gguf-py's rounding). */
export function bf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0xffff) | 64;
  return Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 65536) & 0xffff;
}

export function bf16Value(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** round-half-away-from-zero of an fp32 value (gguf-py's np_roundf). */
function roundf(x: number): number {
  const a = Math.abs(x);
  const r = Math.floor(a) + Math.floor(2 * (a - Math.floor(a)));
  return x < 0 ? -r : r;
}

/** Q8_0 blocks of `values` (length a multiple of 32): per block 2 bytes f16 scale + 32 int8. */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0) throw new RangeError(`Q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${values.length}`);
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const at = b * Q8_0_BLOCK;
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(values[at + i]!));
    const d = Math.fround(amax / 127);
    const id = d === 0 ? 0 : Math.fround(1 / d);
    const o = b * Q8_0_BLOCK_BYTES;
    view.setUint16(o, f16Bits(d), true);
    for (let i = 0; i < Q8_0_BLOCK; i++) view.setInt8(o + 2 + i, roundf(Math.fround(values[at + i]! * id)));
  }
  return out;
}

/** The stored bytes of fp32 `values` in `type` (little-endian). */
export function encodeTensor(values: Float32Array, type: GgmlTypeT): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength); // little-endian platforms (x64, arm64)
    case GgmlType.F16:
    case GgmlType.BF16: {
      const out = new Uint16Array(values.length);
      const conv = type === GgmlType.F16 ? f16Bits : bf16Bits;
      for (let i = 0; i < values.length; i++) out[i] = conv(values[i]!);
      return new Uint8Array(out.buffer);
    }
    case GgmlType.Q8_0:
      return quantizeQ8_0(values);
  }
}

/** fp32 values of stored bytes (the reader's side; exact for f32, the stored value for the others). */
export function decodeTensor(bytes: Uint8Array, type: GgmlTypeT, elements: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(elements);
  switch (type) {
    case GgmlType.F32:
      for (let i = 0; i < elements; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    case GgmlType.F16:
      for (let i = 0; i < elements; i++) out[i] = f16Value(view.getUint16(i * 2, true));
      return out;
    case GgmlType.BF16:
      for (let i = 0; i < elements; i++) out[i] = bf16Value(view.getUint16(i * 2, true));
      return out;
    case GgmlType.Q8_0:
      for (let b = 0; b < elements / Q8_0_BLOCK; b++) {
        const o = b * Q8_0_BLOCK_BYTES;
        const d = f16Value(view.getUint16(o, true));
        for (let i = 0; i < Q8_0_BLOCK; i++) out[b * Q8_0_BLOCK + i] = d * view.getInt8(o + 2 + i);
      }
      return out;
  }
}
