// The one number formatting (src/shared/format.ts): progress lines and the dashboard show counts the same way.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCount, formatDuration } from '../../../src/shared/format.ts';
import * as progress from '../../../src/report/progress.ts';

test('formatCount: k/M/G with 3 significant digits, rounded below 1000', () => {
  assert.deepEqual([0, 950, 845.6, 1234, 5000, 12345, 51234, 1234567, 2.5e6, 3e9, -12345].map(formatCount),
    ['0', '950', '846', '1.23k', '5.00k', '12.3k', '51.2k', '1.23M', '2.50M', '3.00G', '-12.3k']);
  assert.equal(formatCount(Number.NaN), '--');
});

test('formatDuration: s, m+s, h+m, d+h', () => {
  assert.deepEqual([0, 59.4, 245, 7380, 273605].map(formatDuration), ['0s', '59s', '4m05s', '2h03m', '3d04h']);
  assert.equal(formatDuration(-1), '--');
});

test('the progress module uses the shared functions', () => {
  assert.equal(progress.formatCount, formatCount);
  assert.equal(progress.formatDuration, formatDuration);
});
