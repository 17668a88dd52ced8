// Streams a GGUF v3 file: the header (metadata, tensor infos with their offsets, all known from shapes and types
// before any tensor is computed), then each tensor's bytes as its `values()` produce them, one tensor in memory at a
// time. The file appears whole or not at all (shared/atomic-write.ts); a failure names the tensor.
import { Readable } from 'node:stream';
import { SftkitError } from '../errors.ts';
import { writeStreamAtomic } from '../shared/index.ts';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgufValueType,
  Q8_0_BLOCK,
  GgmlType,
  GGML_TYPE_NAMES,
  tensorBytes,
  type GgufMetadata,
  type GgufValue,
} from './gguf-format.ts';
import { encodeTensor } from './quantize.ts';

export interface GgufTensor {
  /** llama.cpp's name, e.g. `blk.0.attn_q.weight`. */
  name: string;
  /** numpy/PyTorch order, outermost first ([rows, cols]); GGUF stores it reversed (ne[0] = cols). */
  shape: readonly number[];
  type: GgmlType;
  /** The fp32 values in row-major order of `shape`; called once, when the tensor's turn to be written comes. */
  values: () => Promise<Float32Array> | Float32Array;
}

/** Little-endian byte sink for the header. */
class Bytes {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.length = this.buf.writeUInt8(v, this.length);
  }
  u32(v: number): void {
    this.room(4);
    this.length = this.buf.writeUInt32LE(v, this.length);
  }
  i32(v: number): void {
    this.room(4);
    this.length = this.buf.writeInt32LE(v, this.length);
  }
  u64(v: number | bigint): void {
    this.room(8);
    this.length = this.buf.writeBigUInt64LE(BigInt(v), this.length);
  }
  f32(v: number): void {
    this.room(4);
    this.length = this.buf.writeFloatLE(v, this.length);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.room(b.length);
    this.length += b.copy(this.buf, this.length);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.room(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

const SCALAR_TYPES = {
  u8: GgufValueType.UINT8,
  i8: GgufValueType.INT8,
  u16: GgufValueType.UINT16,
  i16: GgufValueType.INT16,
  u32: GgufValueType.UINT32,
  i32: GgufValueType.INT32,
  f32: GgufValueType.FLOAT32,
  f64: GgufValueType.FLOAT64,
  u64: GgufValueType.UINT64,
  i64: GgufValueType.INT64,
  bool: GgufValueType.BOOL,
  string: GgufValueType.STRING,
} as const;

function writeScalar(out: Bytes, type: keyof typeof SCALAR_TYPES, v: number | bigint | boolean | string): void {
  switch (type) {
    case 'u8':
      return out.u8(v as number);
    case 'i8':
      return out.u8((v as number) & 0xff);
    case 'u16':
    case 'i16': {
      out.u8((v as number) & 0xff);
      return out.u8(((v as number) >> 8) & 0xff);
    }
    case 'u32':
      return out.u32(v as number);
    case 'i32':
      return out.i32(v as number);
    case 'f32':
      return out.f32(v as number);
    case 'f64': {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(v as number);
      for (const x of b) out.u8(x);
      return;
    }
    case 'u64':
    case 'i64':
      return out.u64(BigInt.asUintN(64, BigInt(v as bigint)));
    case 'bool':
      return out.u8(v ? 1 : 0);
    case 'string':
      return out.string(v as string);
  }
}

function writeValue(out: Bytes, value: GgufValue): void {
  if (value.type === 'array') {
    out.u32(GgufValueType.ARRAY);
    out.u32(SCALAR_TYPES[value.of]);
    out.u64(value.value.length);
    for (const v of value.value) writeScalar(out, value.of, v);
    return;
  }
  out.u32(SCALAR_TYPES[value.type]);
  writeScalar(out, value.type, value.value);
}

function elementsOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkTensor(t: GgufTensor): void {
  if (!(t.shape.length >= 1 && t.shape.length <= 4 && t.shape.every((d) => Number.isInteger(d) && d > 0))) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', `tensor ${t.name}: shape ${JSON.stringify(t.shape)} is not 1 to 4 positive sizes`);
  }
  if (GGML_TYPE_NAMES[t.type] === undefined) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `tensor ${t.name}: unknown ggml type ${t.type}`);
  if (t.type === GgmlType.Q8_0 && t.shape[t.shape.length - 1]! % Q8_0_BLOCK !== 0) {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', `tensor ${t.name}: Q8_0 needs rows of a multiple of ${Q8_0_BLOCK} values, shape ${JSON.stringify(t.shape)}`);
  }
}

/** The header bytes (through the padding before the data) and each tensor's byte size. */
export function ggufHeader(metadata: GgufMetadata, tensors: readonly GgufTensor[], alignment = GGUF_DEFAULT_ALIGNMENT): { header: Uint8Array; sizes: number[] } {
  const names = new Set<string>();
  for (const t of tensors) {
    checkTensor(t);
    if (names.has(t.name)) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `tensor ${t.name} appears twice`);
    names.add(t.name);
  }
  const out = new Bytes();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(tensors.length);
  const kv = alignment === GGUF_DEFAULT_ALIGNMENT ? metadata : [...metadata, ['general.alignment', { type: 'u32', value: alignment }] as const];
  out.u64(kv.length);
  for (const [key, value] of kv) {
    out.string(key);
    writeValue(out, value);
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    out.string(t.name);
    out.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) out.u64(d);
    out.u32(t.type);
    out.u64(offset);
    const size = tensorBytes(t.type, elementsOf(t.shape));
    sizes.push(size);
    offset += size + ((alignment - (size % alignment)) % alignment);
  }
  out.pad(alignment);
  return { header: out.bytes(), sizes };
}

/**
 * Writes `metadata` and `tensors` to `path` as GGUF v3, streamed and atomically. A tensor whose `values()` fails or
 * returns the wrong number of values aborts the write with an error naming it; `path` is then left as it was.
 */
export async function writeGguf(
  path: string,
  metadata: GgufMetadata,
  tensors: readonly GgufTensor[],
  options: { alignment?: number } = {},
): Promise<{ bytes: number }> {
  const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const { header, sizes } = ggufHeader(metadata, tensors, alignment);
  let bytes = header.length;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield header;
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      let data: Uint8Array;
      try {
        const values = await t.values();
        const want = elementsOf(t.shape);
        if (values.length !== want) throw new Error(`${values.length} values for shape ${JSON.stringify(t.shape)} (${want})`);
        data = encodeTensor(values, t.type);
      } catch (e) {
        throw new SftkitError('SFTKIT_IO', `${path}: tensor ${t.name} (${GGML_TYPE_NAMES[t.type]}, shape ${JSON.stringify(t.shape)}): ${(e as Error).message}`, { cause: e });
      }
      if (data.length !== sizes[i]) throw new SftkitError('SFTKIT_IO', `${path}: tensor ${t.name}: ${data.length} bytes encoded, ${sizes[i]} expected`);
      yield data;
      const pad = (alignment - (data.length % alignment)) % alignment;
      if (pad > 0) yield new Uint8Array(pad);
      bytes += data.length + pad;
    }
  }
  // One chunk read ahead at most (Readable.from's default would pull 16 tensors into memory before the disk drains).
  await writeStreamAtomic(path, Readable.from(chunks(), { objectMode: true, highWaterMark: 1 }));
  return { bytes };
}
