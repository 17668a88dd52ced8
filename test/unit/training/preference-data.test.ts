// Preference pairs as DPO reads them: both sides of every record are counted in one summary (kept, dropped, unknown
// tokens), so a template the tokenizer cannot represent is reported for DPO as it is for SFT.
import { strict as assert } from 'node:assert';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { formatUnkWarning } from '../../../src/mask/index.ts';
import { preparePreferencePairs } from '../../../src/training/index.ts';

const fixtures = resolve(import.meta.dirname, '../../fixtures');
const tinystories = join(fixtures, 'models', 'tinystories-656k');
const data = join(fixtures, 'data', 'instruction-data-with-preference-24.json');

test('preference pairs: the summary counts both sides; alpaca on TinyStories is warned about, plain is not', async () => {
  const alpaca = await preparePreferencePairs({ data, tokenizer: tinystories, template: 'alpaca', limit: 4, maxLength: 256 });
  assert.equal(alpaca.summary.examples, 8);
  assert.equal(alpaca.summary.kept + alpaca.summary.droppedTotal, 8);
  assert.ok(alpaca.summary.kept >= alpaca.pairs.length * 2);
  assert.ok(alpaca.summary.unkTokens > 0);
  assert.equal(alpaca.summary.unkExample?.source, 'template');
  const warning = formatUnkWarning(alpaca.summary, data, '<unk>');
  assert.match(warning ?? '', /unknown tokens? \(<unk>\) in \d+ of 8 examples, e\.g\. "###" from the template text \(line \d+, record 0\)/);

  const plain = await preparePreferencePairs({ data, tokenizer: tinystories, template: 'plain', limit: 4, maxLength: 256 });
  assert.equal(plain.summary.examples, 8);
  assert.equal(plain.summary.unkTokens, 0);
  assert.equal(formatUnkWarning(plain.summary, data, '<unk>'), undefined);
});
