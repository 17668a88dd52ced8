// Typed wrappers of the addon's safetensors reader/writer: argument validation in TypeScript (clear
// SFTKIT_BAD_ARGUMENT errors before any native call), file work natively (corrupt files -> SFTKIT_IO).
import { invalidParameterError } from '../errors.ts';
import {
  binding,
  type LoadedTensor,
  type SafetensorsDtype,
  type SafetensorsInfo,
  type TensorToSave,
} from './binding.ts';
import { withCallerStack } from './call.ts';

export type { LoadedTensor, SafetensorsDtype, SafetensorsInfo, SafetensorsTensorInfo, TensorToSave } from './binding.ts';

export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];

export interface IoOptions {
  /** Intra-op threads for the native worker (default: the current setting). */
  threads?: number;
}

/** The dtype a typed array is stored as by default, and the dtypes it may be converted to when written. */
function dtypesFor(data: unknown): { natural: SafetensorsDtype; allowed: readonly SafetensorsDtype[] } | null {
  if (data instanceof Float32Array) return { natural: 'F32', allowed: ['F32', 'F16', 'BF16', 'F64'] };
  if (data instanceof Float64Array) return { natural: 'F64', allowed: ['F64', 'F32', 'F16', 'BF16'] };
  if (data instanceof Int32Array) return { natural: 'I32', allowed: ['I32'] };
  if (data instanceof Int16Array) return { natural: 'I16', allowed: ['I16'] };
  if (data instanceof Int8Array) return { natural: 'I8', allowed: ['I8'] };
  if (data instanceof Uint8Array) return { natural: 'U8', allowed: ['U8', 'BOOL'] };
  if (data instanceof BigInt64Array) return { natural: 'I64', allowed: ['I64'] };
  return null;
}

function checkPath(name: string, path: unknown): asserts path is string {
  if (typeof path !== 'string' || path.length === 0) throw invalidParameterError(name, 'a non-empty path string', path);
}

function checkOptions(options: unknown): IoOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw invalidParameterError('options', 'an object', options);
  const { threads } = options as IoOptions;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1 && threads <= 1024)) {
    throw invalidParameterError('options.threads', 'an integer between 1 and 1024', threads);
  }
  return threads === undefined ? {} : { threads };
}

/** Reads the header of a safetensors file (synchronous; reads no tensor data). */
export function safetensorsInfo(path: string): SafetensorsInfo {
  checkPath('path', path);
  return binding().safetensorsInfo(path);
}

/** Loads every tensor of a safetensors file (zero-copy where the data is aligned). */
export function loadSafetensors(path: string, options?: IoOptions): Promise<Record<string, LoadedTensor>> {
  checkPath('path', path);
  const opts = checkOptions(options);
  return withCallerStack(() => binding().loadSafetensors(path, opts));
}

/** Loads a Hugging Face model directory: model.safetensors, or model.safetensors.index.json + shards. */
export function loadSafetensorsDir(
  dir: string,
  options?: IoOptions,
): Promise<{ tensors: Record<string, LoadedTensor>; metadata: Record<string, string> }> {
  checkPath('dir', dir);
  const opts = checkOptions(options);
  return withCallerStack(() => binding().loadSafetensorsDir(dir, opts));
}

/**
 * Writes tensors (in the given order) to a safetensors file in the Hugging Face layout, atomically
 * (temporary file, fsync, rename). `metadata` becomes `__metadata__`.
 */
export function saveSafetensors(
  path: string,
  tensors: TensorToSave[],
  metadata?: Record<string, string>,
  options?: IoOptions,
): Promise<void> {
  checkPath('path', path);
  if (!Array.isArray(tensors)) throw invalidParameterError('tensors', 'an array of { name, data, shape, dtype? }', tensors);
  const names = new Set<string>();
  tensors.forEach((t, i) => {
    const at = `tensors[${i}]`;
    if (typeof t !== 'object' || t === null) throw invalidParameterError(at, 'an object { name, data, shape, dtype? }', t);
    if (typeof t.name !== 'string' || t.name.length === 0 || t.name === '__metadata__') {
      throw invalidParameterError(`${at}.name`, 'a non-empty string other than "__metadata__"', t.name);
    }
    if (names.has(t.name)) throw invalidParameterError(`${at}.name`, 'a name not used by an earlier tensor', t.name);
    names.add(t.name);
    const kinds = dtypesFor(t.data);
    if (!kinds) {
      throw invalidParameterError(
        `${at}.data`,
        'a Float32Array, Float64Array, Int32Array, Int16Array, Int8Array, Uint8Array or BigInt64Array',
        t.data,
      );
    }
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw invalidParameterError(`${at}.shape`, 'an array of non-negative integers', t.shape);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) {
      throw invalidParameterError(`${at}.shape`, `a shape holding ${t.data.length} elements (the data length)`, t.shape);
    }
    if (t.dtype !== undefined && !kinds.allowed.includes(t.dtype)) {
      throw invalidParameterError(`${at}.dtype`, `one of ${kinds.allowed.join(', ')} for a ${t.data.constructor.name}`, t.dtype);
    }
  });
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw invalidParameterError('metadata', 'an object of strings', metadata);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw invalidParameterError(`metadata[${JSON.stringify(k)}]`, 'a string', v);
    }
  }
  const opts = checkOptions(options);
  return withCallerStack(() => binding().saveSafetensors(path, tensors, metadata, opts));
}
