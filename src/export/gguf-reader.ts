// Reads a GGUF file's header (metadata and tensor infos) without loading the tensor data, and single tensors on
// demand (dequantised to fp32). Used by the tests and by anyone checking an export.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { SftkitError } from '../errors.ts';
import { GGML_TYPE_NAMES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufValueType, tensorBytes, type GgmlType } from './gguf-format.ts';
import { decodeTensor } from './quantize.ts';

/** A metadata value as read: numbers (u64/i64 as bigint), booleans, strings, arrays of them. */
export type GgufReadValue = number | bigint | boolean | string | GgufReadValue[];

export interface GgufTensorInfo {
  name: string;
  /** numpy order, outermost first (GGUF's ne reversed). */
  shape: number[];
  type: GgmlType;
  /** 'F32', 'F16', 'BF16', 'Q8_0' (or `type <n>` for other ggml types). */
  typeName: string;
  /** Absolute byte offset of the data in the file. */
  offset: number;
  bytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  metadata: Record<string, GgufReadValue>;
  /** The GGUF value type of each key (arrays: `array<elemtype>`), e.g. `u32`, `string`, `array<string>`. */
  metadataTypes: Record<string, string>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
  fileBytes: number;
}

const TYPE_NAMES: Record<number, string> = {
  0: 'u8', 1: 'i8', 2: 'u16', 3: 'i16', 4: 'u32', 5: 'i32', 6: 'f32', 7: 'bool', 8: 'string', 9: 'array', 10: 'u64', 11: 'i64', 12: 'f64',
};

/** Sequential reads over a file descriptor through a buffer. */
class Cursor {
  private buf = Buffer.alloc(1 << 20);
  private start = 0; // file position of buf[0]
  private end = 0; // valid bytes in buf
  pos = 0;
  constructor(private readonly fd: number, private readonly path: string, private readonly size: number) {}
  private need(n: number): number {
    if (this.pos + n > this.size) throw new SftkitError('SFTKIT_IO', `${this.path}: truncated GGUF header (needs byte ${this.pos + n}, file has ${this.size})`);
    if (this.pos < this.start || this.pos + n > this.start + this.end) {
      if (n > this.buf.length) this.buf = Buffer.alloc(n * 2);
      this.start = this.pos;
      this.end = readSync(this.fd, this.buf, 0, Math.min(this.buf.length, this.size - this.pos), this.pos);
    }
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }
  u8(): number { return this.buf.readUInt8(this.need(1)); }
  i8(): number { return this.buf.readInt8(this.need(1)); }
  u16(): number { return this.buf.readUInt16LE(this.need(2)); }
  i16(): number { return this.buf.readInt16LE(this.need(2)); }
  u32(): number { return this.buf.readUInt32LE(this.need(4)); }
  i32(): number { return this.buf.readInt32LE(this.need(4)); }
  f32(): number { return this.buf.readFloatLE(this.need(4)); }
  f64(): number { return this.buf.readDoubleLE(this.need(8)); }
  u64(): bigint { return this.buf.readBigUInt64LE(this.need(8)); }
  i64(): bigint { return this.buf.readBigInt64LE(this.need(8)); }
  count(what: string): number {
    const n = this.u64();
    if (n > BigInt(this.size)) throw new SftkitError('SFTKIT_IO', `${this.path}: implausible ${what} ${n}`);
    return Number(n);
  }
  string(): string {
    const n = this.count('string length');
    const at = this.need(n);
    return this.buf.toString('utf8', at, at + n);
  }
}

function readValue(c: Cursor, type: number, path: string): GgufReadValue {
  switch (type) {
    case GgufValueType.UINT8: return c.u8();
    case GgufValueType.INT8: return c.i8();
    case GgufValueType.UINT16: return c.u16();
    case GgufValueType.INT16: return c.i16();
    case GgufValueType.UINT32: return c.u32();
    case GgufValueType.INT32: return c.i32();
    case GgufValueType.FLOAT32: return c.f32();
    case GgufValueType.FLOAT64: return c.f64();
    case GgufValueType.UINT64: return c.u64();
    case GgufValueType.INT64: return c.i64();
    case GgufValueType.BOOL: return c.u8() !== 0;
    case GgufValueType.STRING: return c.string();
    case GgufValueType.ARRAY: {
      const of = c.u32();
      const n = c.count('array length');
      const out: GgufReadValue[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readValue(c, of, path);
      return out;
    }
    default:
      throw new SftkitError('SFTKIT_IO', `${path}: unknown GGUF value type ${type}`);
  }
}

/** Reads the header of a GGUF file (metadata and tensor infos); no tensor data is read. */
export function readGguf(path: string): GgufFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new SftkitError('SFTKIT_IO', `cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const size = fstatSync(fd).size;
    const c = new Cursor(fd, path, size);
    if (size < 24 || c.u32() !== GGUF_MAGIC) throw new SftkitError('SFTKIT_IO', `${path}: not a GGUF file (no "GGUF" magic)`);
    const version = c.u32();
    if (version !== 2 && version !== 3) throw new SftkitError('SFTKIT_IO', `${path}: GGUF version ${version} is not supported (2 or 3)`);
    const nTensors = c.count('tensor count');
    const nKv = c.count('key-value count');
    const metadata: Record<string, GgufReadValue> = {};
    const metadataTypes: Record<string, string> = {};
    for (let i = 0; i < nKv; i++) {
      const key = c.string();
      const type = c.u32();
      if (type === GgufValueType.ARRAY) {
        const at = c.pos;
        const of = c.u32();
        c.pos = at;
        metadataTypes[key] = `array<${TYPE_NAMES[of] ?? of}>`;
      } else {
        metadataTypes[key] = TYPE_NAMES[type] ?? String(type);
      }
      metadata[key] = readValue(c, type, path);
    }
    const alignment = typeof metadata['general.alignment'] === 'number' ? metadata['general.alignment'] : GGUF_DEFAULT_ALIGNMENT;
    const infos: Array<Omit<GgufTensorInfo, 'offset'> & { rel: number }> = [];
    for (let i = 0; i < nTensors; i++) {
      const name = c.string();
      const nDims = c.u32();
      const ne: number[] = [];
      for (let d = 0; d < nDims; d++) ne.push(Number(c.u64()));
      const type = c.u32() as GgmlType;
      const rel = Number(c.u64());
      const elements = ne.reduce((a, b) => a * b, 1);
      const typeName = GGML_TYPE_NAMES[type] ?? `type ${type}`;
      const bytes = GGML_TYPE_NAMES[type] !== undefined ? tensorBytes(type, elements) : 0;
      infos.push({ name, shape: ne.reverse(), type, typeName, rel, bytes });
    }
    const dataOffset = Math.ceil(c.pos / alignment) * alignment;
    const tensors = infos.map(({ rel, ...t }) => ({ ...t, offset: dataOffset + rel }));
    for (const t of tensors) {
      if (t.offset + t.bytes > size) throw new SftkitError('SFTKIT_IO', `${path}: tensor ${t.name} runs past the end of the file`);
    }
    return { path, version, metadata, metadataTypes, tensors, alignment, dataOffset, fileBytes: size };
  } finally {
    closeSync(fd);
  }
}

/** One tensor's values as fp32 (dequantised: f16/bf16 exact, Q8_0 as d * q). */
export function readGgufTensor(file: GgufFile, name: string): Float32Array {
  const t = file.tensors.find((x) => x.name === name);
  if (t === undefined) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${file.path}: no tensor named ${name}`);
  if (GGML_TYPE_NAMES[t.type] === undefined) throw new SftkitError('SFTKIT_UNSUPPORTED', `${file.path}: tensor ${name} has ggml type ${t.type}, which sftkit does not read`);
  const fd = openSync(file.path, 'r');
  try {
    const buf = Buffer.alloc(t.bytes);
    let at = 0;
    while (at < t.bytes) {
      const n = readSync(fd, buf, at, t.bytes - at, t.offset + at);
      if (n === 0) throw new SftkitError('SFTKIT_IO', `${file.path}: tensor ${name} is truncated`);
      at += n;
    }
    return decodeTensor(buf, t.type, t.shape.reduce((a, b) => a * b, 1));
  } finally {
    closeSync(fd);
  }
}
