// Errors shared by every room: stable codes, sharp-style parameter validation messages.

/** Codes carried by every error sftkit throws (`err.code`). The native ones come from native/engine/errors.h. */
export type SftkitErrorCode =
  | 'SFTKIT_BAD_ARGUMENT'
  | 'SFTKIT_NATIVE'
  | 'SFTKIT_IO'
  | 'SFTKIT_UNSUPPORTED'
  | 'SFTKIT_DATA'
  | 'SFTKIT_LOAD';

export class SftkitError extends Error {
  readonly code: SftkitErrorCode;
  constructor(code: SftkitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SftkitError';
    this.code = code;
  }
}

function describe(actual: unknown): string {
  if (typeof actual === 'string') return `${JSON.stringify(actual)} (string)`;
  if (actual === null) return 'null';
  if (Array.isArray(actual)) return `an array of length ${actual.length}`;
  if (ArrayBuffer.isView(actual)) return `a ${actual.constructor.name} of ${actual.byteLength} bytes`;
  if (typeof actual === 'object') return 'an object';
  return `${String(actual)} (${typeof actual})`;
}

/** `Expected <expected> for <name> but received <actual>` with code SFTKIT_BAD_ARGUMENT. */
export function invalidParameterError(name: string, expected: string, actual: unknown): SftkitError {
  return new SftkitError('SFTKIT_BAD_ARGUMENT', `Expected ${expected} for ${name} but received ${describe(actual)}`);
}

/**
 * A data problem located in a file: `<file>:<line> (record <n>) field "<field>": <message>`.
 * `line` is 1-based (JSONL line or the line where a JSON array element starts); `record` is 0-based.
 */
export function dataError(
  where: { file: string; line?: number; record?: number; field?: string },
  message: string,
): SftkitError {
  let loc = where.file;
  if (where.line !== undefined) loc += `:${where.line}`;
  if (where.record !== undefined) loc += ` (record ${where.record})`;
  if (where.field !== undefined) loc += ` field "${where.field}"`;
  return new SftkitError('SFTKIT_DATA', `${loc}: ${message}`);
}
