// f16, bf16 and Q8_0 encodings byte for byte against llama.cpp's gguf-py (quants.quantize), on values with ties,
// zero blocks, subnormals, overflow and random normals (test/fixtures/gguf/quants-reference.json, written by
// scripts/gen-fixtures/gguf_quants.py), and the reader's decoding back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GgmlType } from '../../../src/export/gguf-format.ts';
import { bf16Bits, decodeTensor, encodeTensor, f16Bits, f16Value, quantizeQ8_0 } from '../../../src/export/quantize.ts';

const ref = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'gguf', 'quants-reference.json'), 'utf8')) as Record<string, string>;
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const raw = Buffer.from(ref['values_f32_hex']!, 'hex');
const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));

test('f16 bytes equal gguf-py (numpy astype(float16): round to nearest even, subnormals, overflow to inf)', () => {
  assert.equal(hex(encodeTensor(values, GgmlType.F16)), ref['f16_hex']);
});

test('bf16 bytes equal gguf-py (round to nearest even on the top 16 bits)', () => {
  assert.equal(hex(encodeTensor(values, GgmlType.BF16)), ref['bf16_hex']);
});

test('Q8_0 blocks equal gguf-py (32 values, fp16 scale amax/127, round half away from zero)', () => {
  assert.equal(values.length % 32, 0);
  assert.equal(hex(quantizeQ8_0(values)), ref['q8_0_hex']);
  assert.throws(() => quantizeQ8_0(new Float32Array(31)), /multiple of 32/);
});

test('decoding: f32 exact, f16/bf16 the stored value, Q8_0 within half a step of each block', () => {
  assert.deepEqual(decodeTensor(encodeTensor(values, GgmlType.F32), GgmlType.F32, values.length), values);
  const f16 = decodeTensor(encodeTensor(values, GgmlType.F16), GgmlType.F16, values.length);
  for (let i = 0; i < values.length; i++) assert.equal(f16Bits(f16[i]!), f16Bits(values[i]!));
  const bf16 = decodeTensor(encodeTensor(values, GgmlType.BF16), GgmlType.BF16, values.length);
  for (let i = 0; i < values.length; i++) if (Number.isFinite(bf16[i]!)) assert.equal(bf16Bits(bf16[i]!), bf16Bits(values[i]!));
  const normals = values.subarray(3 * 32, 9 * 32);
  const q = decodeTensor(quantizeQ8_0(normals), GgmlType.Q8_0, normals.length);
  for (let b = 0; b < normals.length / 32; b++) {
    const block = normals.subarray(b * 32, b * 32 + 32);
    const step = Math.max(...Array.from(block, Math.abs)) / 127;
    for (let i = 0; i < 32; i++) assert.ok(Math.abs(q[b * 32 + i]! - block[i]!) <= step * 0.51, `block ${b} value ${i}`);
  }
  assert.equal(f16Value(0x3c00), 1);
  assert.equal(f16Value(0x0001), 2 ** -24);
  assert.equal(f16Value(0xfc00), -Infinity);
});
