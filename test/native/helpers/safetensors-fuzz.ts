// Seeded mutations of a small valid safetensors file, shared by the in-process fuzz test and its child-process batch.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { loadSafetensors, safetensorsInfo } from '../../../src/native/safetensors.ts';

/** mulberry32: a tiny deterministic PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Assembles a file: u64 LE header length (or `lengthOverride`), header bytes, data bytes. */
export function assemble(header: string | Buffer, data: Buffer, lengthOverride?: bigint): Buffer {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

export function pad8(header: string): string {
  return header + ' '.repeat((8 - (header.length % 8)) % 8);
}

type Entry = { dtype: unknown; shape: unknown; data_offsets: unknown; [k: string]: unknown };
export type Header = Record<string, Entry | Record<string, unknown>>;

/** The base file: 4 tensors of different dtypes, contiguous, plus __metadata__. */
export function baseFile(): { header: Header; data: Buffer } {
  const data = Buffer.alloc(48);
  for (let i = 0; i < 6; i++) data.writeFloatLE(i * 0.5 - 1, i * 4);
  data.writeBigInt64LE(-7n, 24);
  data.writeBigInt64LE(1234567890123n, 32);
  data.writeUInt16LE(0x3f80, 40); // bf16 1.0
  data.writeUInt16LE(0xc000, 42); // bf16 -2.0
  data.writeUInt16LE(0x4040, 44); // bf16 3.0
  data[46] = 7;
  data[47] = 255;
  const header: Header = {
    __metadata__: { format: 'pt' },
    a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    b: { dtype: 'I64', shape: [2], data_offsets: [24, 40] },
    c: { dtype: 'BF16', shape: [3], data_offsets: [40, 46] },
    d: { dtype: 'U8', shape: [2], data_offsets: [46, 48] },
  };
  return { header, data };
}

const NAMES = ['a', 'b', 'c', 'd'] as const;
const BAD_VALUES: unknown[] = [-1, 1.5, 1e300, '8', null, true, [], {}, 2 ** 53, -(2 ** 62), 9007199254740993, 48, 47, 0];
const DTYPES: unknown[] = ['F32', 'I32', 'F16', 'BF16', 'F64', 'I64', 'I16', 'I8', 'U8', 'BOOL', 'f32', 'FLOAT', '', 'F3', 'Q4_0', 7, null, ['F32']];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

function deep(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/** One mutated file for `seed` (deterministic) and a label of what was done. */
export function mutate(seed: number): { bytes: Buffer; label: string } {
  const r = rng(seed);
  const { header, data } = baseFile();
  const entry = (): Entry => header[pick(r, NAMES)] as Entry;
  const kind = Math.floor(r() * 16);
  const text = () => pad8(JSON.stringify(header));
  switch (kind) {
    case 0: { // bit flips in the header text
      const h = Buffer.from(text());
      const flips = 1 + Math.floor(r() * 4);
      for (let i = 0; i < flips; i++) {
        const at = Math.floor(r() * h.length);
        h[at] = (h[at] as number) ^ (1 << Math.floor(r() * 8));
      }
      return { bytes: assemble(h, data), label: `header bit flips x${flips}` };
    }
    case 1: { // bit flip in the length
      const bytes = assemble(text(), data);
      const bit = Math.floor(r() * 64);
      bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7));
      return { bytes, label: `length bit ${bit}` };
    }
    case 2: { // truncation anywhere
      const bytes = assemble(text(), data);
      const cut = Math.floor(r() * bytes.length);
      return { bytes: bytes.subarray(0, cut), label: `truncated to ${cut}` };
    }
    case 3: { // absurd or off-by-some lengths
      const h = text();
      const lens = [0n, 1n, 2n ** 64n - 1n, 2n ** 63n, 2n ** 32n, 100000001n, BigInt(h.length + data.length + 1), BigInt(h.length - 1), BigInt(h.length + 8)];
      const len = pick(r, lens);
      return { bytes: assemble(h, data, len), label: `length ${len}` };
    }
    case 4: { // swapped offsets
      const e = entry();
      const [b0, e0] = e.data_offsets as [number, number];
      e.data_offsets = [e0, b0];
      return { bytes: assemble(text(), data), label: 'swapped offsets' };
    }
    case 5: { // overlapping / shifted ranges
      const e = entry();
      const [b0, e0] = e.data_offsets as [number, number];
      const d = 1 + Math.floor(r() * 8);
      e.data_offsets = r() < 0.5 ? [b0 - d, e0 - d] : [b0 + d, e0 + d];
      return { bytes: assemble(text(), data), label: `shifted offsets by ${d}` };
    }
    case 6: { // bad offset values
      const e = entry();
      const offs = [...(e.data_offsets as unknown[])];
      offs[Math.floor(r() * 2)] = pick(r, BAD_VALUES);
      e.data_offsets = r() < 0.15 ? offs.slice(0, 1) : r() < 0.15 ? [...offs, 0] : offs;
      return { bytes: assemble(text(), data), label: `offsets ${JSON.stringify(e.data_offsets)}` };
    }
    case 7: { // dtype changes
      const e = entry();
      e.dtype = pick(r, DTYPES);
      return { bytes: assemble(text(), data), label: `dtype ${JSON.stringify(e.dtype)}` };
    }
    case 8: { // shape changes
      const e = entry();
      const shapes: unknown[] = [[], [0], [-1, 6], [1.5, 4], [2 ** 62, 2 ** 62], [2 ** 31, 2 ** 31, 4], ['2', 3], [[2], 3], null, 6, [6], [3, 2], [1, 1, 1, 6], [2, 3, 0]];
      e.shape = pick(r, shapes);
      return { bytes: assemble(text(), data), label: `shape ${JSON.stringify(e.shape)}` };
    }
    case 9: { // missing or extra keys
      const e = entry();
      const key = pick(r, ['dtype', 'shape', 'data_offsets']);
      if (r() < 0.7) delete e[key];
      else e.extra = { nested: [1, 2, 3] };
      return { bytes: assemble(text(), data), label: `entry keys edited (${key})` };
    }
    case 10: { // duplicate names
      const h = text().trimEnd();
      const dup = h.slice(0, -1) + ',"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}';
      return { bytes: assemble(pad8(dup), data), label: 'duplicate name' };
    }
    case 11: { // non-UTF-8 bytes in a name or a string value
      const h = Buffer.from(text());
      const quote = h.indexOf('"a"');
      const bad = pick(r, [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]);
      const out = Buffer.concat([h.subarray(0, quote + 1), Buffer.from(bad), h.subarray(quote + 1)]);
      return { bytes: assemble(out, data), label: `non-UTF-8 ${bad.map((x) => x.toString(16)).join(' ')}` };
    }
    case 12: { // deep nesting in various places
      const depth = pick(r, [9, 100, 10000, 100000]);
      const where = Math.floor(r() * 3);
      const h =
        where === 0 ? `{"x":${deep(depth)}}` : where === 1 ? deep(depth) : text().trimEnd().slice(0, -1) + `,"__x":{"dtype":"U8","shape":${deep(depth)},"data_offsets":[0,0]}}`;
      return { bytes: assemble(h, data), label: `nesting ${depth} at ${where}` };
    }
    case 13: { // not a JSON object / broken JSON
      const h = pick(r, ['[]', '1', '"x"', 'null', '{', '{"a":}', '{}x', '{"a":1,}', "{'a':1}", '{"a":NaN}', '\u0000'.repeat(8), '{"__metadata__":{"k":1}}', '{"__metadata__":[]}', '{"a":"F32"}', '{}']);
      return { bytes: assemble(pad8(h), data), label: `header ${JSON.stringify(h)}` };
    }
    case 14: { // data region too short / too long
      const extra = Math.floor(r() * 16) - 8;
      const d = extra >= 0 ? Buffer.concat([data, Buffer.alloc(extra + 1)]) : data.subarray(0, data.length + extra);
      return { bytes: assemble(text(), d), label: `data length ${d.length}` };
    }
    default: { // random bytes overwritten anywhere in the first 8 + header bytes
      const bytes = assemble(text(), data);
      const at = Math.floor(r() * (8 + text().length));
      bytes[at] = Math.floor(r() * 256);
      return { bytes, label: `byte ${at} overwritten` };
    }
  }
}

/** Writes the case, reads it; passes when it loads consistently or fails with SFTKIT_IO. Returns the outcome. */
export async function runCase(file: string, bytes: Buffer): Promise<'ok' | 'error'> {
  writeFileSync(file, bytes);
  let info;
  try {
    info = safetensorsInfo(file);
  } catch (e) {
    assert.ok(e instanceof Error, 'throws an Error');
    assert.equal((e as Error & { code?: string }).code, 'SFTKIT_IO', (e as Error).message);
    assert.ok((e as Error).message.includes(file), `message names the file: ${(e as Error).message}`);
    return 'error';
  }
  // A file that passes validation must load, and every tensor must be the bytes at its offsets.
  const tensors = await loadSafetensors(file);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  for (const t of info.tensors) {
    const loaded = tensors[t.name];
    assert.ok(loaded, t.name);
    assert.deepEqual(loaded.shape, t.shape);
    const stored = bytes.subarray(8 + headerLen + t.offsets[0], 8 + headerLen + t.offsets[1]);
    if (t.dtype !== 'F16' && t.dtype !== 'BF16') {
      const got = Buffer.from(loaded.data.buffer, loaded.data.byteOffset, loaded.data.byteLength);
      if (t.dtype === 'BOOL') assert.equal(got.length, stored.length);
      else assert.ok(got.equals(stored), `${t.name} bytes`);
    } else {
      assert.equal(loaded.data.length * 2, stored.length);
    }
  }
  return 'ok';
}
