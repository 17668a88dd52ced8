// Types of libtorch.mjs (plain JavaScript, run at install time) for the TypeScript tests.

import type { LibtorchRecord as RecordedLibtorch } from '../src/native/binding.ts';

/** What resolveLibtorch returns (the loader's LibtorchRecord, as recorded now: never the old 'wheel' source). */
export type LibtorchRecord = Omit<RecordedLibtorch, 'source' | 'recordedAt'> & { source: Exclude<RecordedLibtorch['source'], 'wheel'> };

export const PINNED_TORCH: { version: string; variant: string };
export const PACKAGE_ROOT: string;
export const RECORD_PATH: string;

export class LibtorchError extends Error {
  code: 'SFTKIT_LIBTORCH';
  constructor(reasons: string | string[]);
}

export function cacheRoot(env?: NodeJS.ProcessEnv): string;
export function readTorchVersion(includeDir: string): string | null;
export function inspectLibtorchDir(
  dir: string,
  source: LibtorchRecord['source'],
): { ok: true; record: LibtorchRecord } | { ok: false; reason: string };
export function resolveLibtorch(options?: {
  log?: (message: string) => void;
  onProgress?: (event: { phase: 'download' | 'unpack'; label: string; done: number; total: number | null; start?: number; end?: boolean }) => void;
}): Promise<LibtorchRecord>;
export function writeRecord(record: LibtorchRecord): void;
