import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SftkitError, dataError, invalidParameterError } from '../../../src/errors.ts';

test('invalidParameterError names the parameter, the expectation and what came', () => {
  const e = invalidParameterError('threads', 'a positive integer', -1);
  assert.ok(e instanceof SftkitError);
  assert.equal(e.code, 'SFTKIT_BAD_ARGUMENT');
  assert.equal(e.message, 'Expected a positive integer for threads but received -1 (number)');
  assert.match(invalidParameterError('dtype', "'float32' or 'bfloat16'", 'fp8').message, /received "fp8" \(string\)/);
  assert.match(invalidParameterError('shape', 'an array', new Int32Array(3)).message, /Int32Array of 12 bytes/);
});

test('dataError locates the problem by file, line, record and field', () => {
  const e = dataError({ file: 'train.jsonl', line: 7, record: 6, field: 'output' }, 'must be a string');
  assert.equal(e.code, 'SFTKIT_DATA');
  assert.equal(e.message, 'train.jsonl:7 (record 6) field "output": must be a string');
  assert.equal(dataError({ file: 'a.json' }, 'empty').message, 'a.json: empty');
});
