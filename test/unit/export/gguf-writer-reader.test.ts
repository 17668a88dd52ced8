// The GGUF writer and reader: every metadata value type round-trips, tensor infos (shape reversed to ne order,
// types, offsets aligned to 32) and data read back; the file is streamed one tensor at a time, and a failing tensor
// aborts the write naming it, leaving no file.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GgmlType, type GgufMetadata } from '../../../src/export/gguf-format.ts';
import { readGguf, readGgufTensor } from '../../../src/export/gguf-reader.ts';
import { writeGguf, type GgufTensor } from '../../../src/export/gguf-writer.ts';

const dir = mkdtempSync(join(tmpdir(), 'sftkit-gguf-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const seq = (n: number, scale = 0.01) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) * scale * (i % 7));

const metadata: GgufMetadata = [
  ['general.architecture', { type: 'string', value: 'llama' }],
  ['a.u8', { type: 'u8', value: 200 }],
  ['a.i8', { type: 'i8', value: -100 }],
  ['a.u16', { type: 'u16', value: 60000 }],
  ['a.i16', { type: 'i16', value: -30000 }],
  ['a.u32', { type: 'u32', value: 4000000000 }],
  ['a.i32', { type: 'i32', value: -2000000000 }],
  ['a.f32', { type: 'f32', value: 0.5 }],
  ['a.f64', { type: 'f64', value: 1e-300 }],
  ['a.u64', { type: 'u64', value: 2n ** 63n }],
  ['a.i64', { type: 'i64', value: -5n }],
  ['a.bool', { type: 'bool', value: true }],
  ['a.unicode', { type: 'string', value: 'Ġhello ▁wörld <0x0A> 🙂' }],
  ['a.strings', { type: 'array', of: 'string', value: ['x', '', 'ÿ'] }],
  ['a.i32s', { type: 'array', of: 'i32', value: [1, -2, 3] }],
  ['a.f32s', { type: 'array', of: 'f32', value: [0.25, -1000] }],
  ['a.bools', { type: 'array', of: 'bool', value: [true, false] }],
];

test('round trip: metadata of every type, tensors of every type, 32-byte aligned offsets', async () => {
  const order: string[] = [];
  const tensors: GgufTensor[] = [
    { name: 'norm', shape: [5], type: GgmlType.F32, values: () => (order.push('norm'), seq(5)) },
    { name: 'w16', shape: [3, 7], type: GgmlType.F16, values: () => (order.push('w16'), seq(21)) },
    { name: 'wb16', shape: [2, 3, 4], type: GgmlType.BF16, values: async () => (order.push('wb16'), seq(24)) },
    { name: 'wq', shape: [3, 64], type: GgmlType.Q8_0, values: () => (order.push('wq'), seq(192)) },
  ];
  const file = join(dir, 'a.gguf');
  const { bytes } = await writeGguf(file, metadata, tensors);
  assert.deepEqual(order, ['norm', 'w16', 'wb16', 'wq']);
  const g = readGguf(file);
  assert.equal(g.version, 3);
  assert.equal(g.fileBytes, bytes);
  assert.equal(g.metadata['a.u8'], 200);
  assert.equal(g.metadata['a.i8'], -100);
  assert.equal(g.metadata['a.u16'], 60000);
  assert.equal(g.metadata['a.i16'], -30000);
  assert.equal(g.metadata['a.u32'], 4000000000);
  assert.equal(g.metadata['a.i32'], -2000000000);
  assert.equal(g.metadata['a.f32'], 0.5);
  assert.equal(g.metadata['a.f64'], 1e-300);
  assert.equal(g.metadata['a.u64'], 2n ** 63n);
  assert.equal(g.metadata['a.i64'], -5n);
  assert.equal(g.metadata['a.bool'], true);
  assert.equal(g.metadata['a.unicode'], 'Ġhello ▁wörld <0x0A> 🙂');
  assert.deepEqual(g.metadata['a.strings'], ['x', '', 'ÿ']);
  assert.deepEqual(g.metadata['a.i32s'], [1, -2, 3]);
  assert.deepEqual(g.metadata['a.f32s'], [0.25, -1000]);
  assert.deepEqual(g.metadata['a.bools'], [true, false]);
  assert.equal(g.metadataTypes['a.u32'], 'u32');
  assert.equal(g.metadataTypes['a.strings'], 'array<string>');
  assert.deepEqual(g.tensors.map((t) => [t.name, t.shape, t.typeName, t.bytes]), [
    ['norm', [5], 'F32', 20],
    ['w16', [3, 7], 'F16', 42],
    ['wb16', [2, 3, 4], 'BF16', 48],
    ['wq', [3, 64], 'Q8_0', 6 * 34],
  ]);
  for (const t of g.tensors) assert.equal((t.offset - g.dataOffset) % 32, 0);
  assert.equal(g.dataOffset % 32, 0);
  assert.deepEqual(readGgufTensor(g, 'norm'), seq(5));
  const w16 = readGgufTensor(g, 'w16');
  seq(21).forEach((v, i) => assert.ok(Math.abs(w16[i]! - v) <= Math.abs(v) * 1e-3 + 1e-7));
  const wq = readGgufTensor(g, 'wq');
  seq(192).forEach((v, i) => assert.ok(Math.abs(wq[i]! - v) <= 0.06 / 127));
  // ne order on disk: the innermost dimension first
  const buf = readFileSync(file);
  const at = buf.indexOf(Buffer.from('w16'));
  assert.equal(buf.readUInt32LE(at + 3), 2);
  assert.deepEqual([Number(buf.readBigUInt64LE(at + 7)), Number(buf.readBigUInt64LE(at + 15))], [7, 3]);
});

test('a failing tensor aborts the write naming it; no file, no temp file is left', async () => {
  const file = join(dir, 'fail.gguf');
  const tensors: GgufTensor[] = [
    { name: 'ok', shape: [4], type: GgmlType.F32, values: () => seq(4) },
    { name: 'blk.3.attn_q.weight', shape: [2, 2], type: GgmlType.F16, values: () => { throw new Error('disk on fire'); } },
  ];
  await assert.rejects(writeGguf(file, metadata, tensors), (e: Error & { code?: string }) => {
    assert.match(e.message, /tensor blk\.3\.attn_q\.weight \(F16, shape \[2,2\]\): disk on fire/);
    assert.equal(e.code, 'SFTKIT_IO');
    return true;
  });
  await assert.rejects(writeGguf(file, metadata, [{ name: 'short', shape: [3, 3], type: GgmlType.F32, values: () => seq(8) }]), /tensor short .*8 values for shape \[3,3\]/);
  assert.equal(existsSync(file), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('fail')), []);
});

test('bad tensors are refused before anything is written', async () => {
  const file = join(dir, 'bad.gguf');
  await assert.rejects(writeGguf(file, [], [{ name: 'q', shape: [2, 33], type: GgmlType.Q8_0, values: () => seq(66) }]), /Q8_0 needs rows of a multiple of 32/);
  await assert.rejects(writeGguf(file, [], [{ name: 'z', shape: [0], type: GgmlType.F32, values: () => seq(0) }]), /positive sizes/);
  const twice: GgufTensor = { name: 'x', shape: [1], type: GgmlType.F32, values: () => seq(1) };
  await assert.rejects(writeGguf(file, [], [twice, twice]), /appears twice/);
  assert.equal(existsSync(file), false);
});

test('the reader refuses what is not GGUF', () => {
  assert.throws(() => readGguf(join(dir, 'missing.gguf')), /cannot open/);
  const json = join(import.meta.dirname, '..', '..', 'fixtures', 'gguf', 'quants-reference.json');
  assert.throws(() => readGguf(json), /not a GGUF file/);
});
