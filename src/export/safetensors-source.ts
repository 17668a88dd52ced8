// The tensors of a Hugging Face model directory read one at a time, without the addon: model.safetensors or the
// shards of model.safetensors.index.json. A safetensors file is a u64 header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}} and the little-endian data; F32, F16 and BF16 become fp32.
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { SftkitError } from '../errors.ts';
import { f16Value } from './quantize.ts';

export interface SourceTensor {
  name: string;
  dtype: string;
  shape: number[];
  file: string;
  /** Absolute byte range in `file`. */
  begin: number;
  end: number;
}

function ioError(file: string, message: string): SftkitError {
  return new SftkitError('SFTKIT_IO', `${file}: ${message}`);
}

function readHeader(file: string): SourceTensor[] {
  const fd = openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) throw ioError(file, 'too short for a safetensors header');
    const n = Number(len.readBigUInt64LE(0));
    if (n > 100 << 20) throw ioError(file, `implausible safetensors header length ${n}`);
    const head = Buffer.alloc(n);
    if (readSync(fd, head, 0, n, 8) !== n) throw ioError(file, 'truncated safetensors header');
    let json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    try {
      json = JSON.parse(head.toString('utf8'));
    } catch (e) {
      throw ioError(file, `safetensors header is not JSON: ${(e as Error).message}`);
    }
    return Object.entries(json)
      .filter(([name]) => name !== '__metadata__')
      .map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, file, begin: 8 + n + t.data_offsets[0], end: 8 + n + t.data_offsets[1] }));
  } finally {
    closeSync(fd);
  }
}

/** The tensors of a model directory by name (reads only the headers). */
export function modelTensors(dir: string): Map<string, SourceTensor> {
  const single = join(dir, 'model.safetensors');
  const index = join(dir, 'model.safetensors.index.json');
  let files: string[];
  if (existsSync(single)) files = [single];
  else if (existsSync(index)) {
    const map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {};
    files = [...new Set(Object.values(map))].map((f) => join(dir, f));
  } else throw new SftkitError('SFTKIT_IO', `${dir}: no model.safetensors or model.safetensors.index.json`);
  const out = new Map<string, SourceTensor>();
  for (const f of files) for (const t of readHeader(f)) out.set(t.name, t);
  return out;
}

/** One tensor's values as fp32. */
export function readSourceTensor(t: SourceTensor): Float32Array {
  const bytes = t.end - t.begin;
  const buf = Buffer.alloc(bytes);
  const fd = openSync(t.file, 'r');
  try {
    let at = 0;
    while (at < bytes) {
      const n = readSync(fd, buf, at, bytes - at, t.begin + at);
      if (n === 0) throw ioError(t.file, `tensor ${t.name} is truncated`);
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  const size = t.dtype === 'F32' ? 4 : t.dtype === 'F16' || t.dtype === 'BF16' ? 2 : 0;
  if (size === 0) throw new SftkitError('SFTKIT_UNSUPPORTED', `${t.file}: tensor ${t.name} has dtype ${t.dtype} (F32, F16 or BF16 expected)`);
  if (bytes !== count * size) throw ioError(t.file, `tensor ${t.name}: ${bytes} bytes for shape ${JSON.stringify(t.shape)} ${t.dtype}`);
  // The little-endian data is viewed in place when aligned (a large Buffer.alloc owns its ArrayBuffer at offset 0).
  const aligned = (n: number) => (buf.byteOffset % n === 0 ? buf.buffer : buf.buffer.slice(buf.byteOffset, buf.byteOffset + bytes));
  if (t.dtype === 'F32') return new Float32Array(aligned(4), buf.byteOffset % 4 === 0 ? buf.byteOffset : 0, count);
  const halves = new Uint16Array(aligned(2), buf.byteOffset % 2 === 0 ? buf.byteOffset : 0, count);
  const out = new Float32Array(count);
  if (t.dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = halves[i]! << 16;
  } else for (let i = 0; i < count; i++) out[i] = f16Value(halves[i]!);
  return out;
}
