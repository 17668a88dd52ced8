// `sftkit inspect`: the --json contract (one {"input_ids","labels"} per example, dataset order) and the human view.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspectCommand } from '../../../src/cli/inspect.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
const gpt2 = join(fixtures, 'tokenizers', 'gpt2');
const minimind = join(fixtures, 'tokenizers', 'minimind');

function io(tty = false) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: Object.assign({ write: (s: string) => out.push(s) > 0 }, { isTTY: tty }) as never,
      stderr: { write: (s: string) => err.push(s) > 0 } as never,
    },
  };
}

test('--json prints one object per example in dataset order, equal to the parity fixture', async () => {
  const c = io();
  const code = await inspectCommand.run(['--model', minimind, '--data', join(fixtures, 'data', 'minimind-toy', 'tiny_sft.jsonl'), '--json'], c.io);
  assert.equal(code, 0);
  const lines = c.out.join('').trimEnd().split('\n').map((l) => JSON.parse(l) as { input_ids: number[]; labels: number[] });
  const fx = JSON.parse(readFileSync(join(fixtures, 'tokens', 'minimind.json'), 'utf8')) as { cases: { name: string; input_ids: number[]; labels: number[] }[] };
  const expected = fx.cases.filter((x) => x.name.startsWith('minimind tiny_sft'));
  assert.equal(lines.length, expected.length);
  lines.forEach((l, i) => {
    assert.deepEqual(Object.keys(l), ['input_ids', 'labels']);
    assert.deepEqual(l.input_ids, expected[i]?.input_ids);
    assert.deepEqual(l.labels, expected[i]?.labels);
  });
  assert.match(c.err.join(''), /kept 3\/3, dropped 0/);
});

test('the human view marks trained text and prints the counts (colour on a TTY)', async () => {
  const c = io();
  await inspectCommand.run(['--model', gpt2, '--data', join(fixtures, 'data', 'instruction-data.json'), '--limit', '2'], c.io);
  const text = c.out.join('');
  assert.match(text, /format alpaca, template alpaca, mask completion/);
  assert.match(text, /### Response:\n\[\[The spelling of the given phrase "freind" is incorrect, the correct spelling is "friend"\.<\|endoftext\|>\]\]/);
  assert.match(text, /kept 2\/2, dropped 0, truncated 0, trained \d+ \/ masked \d+ tokens/);
  const tty = io(true);
  await inspectCommand.run(['--model', gpt2, '--data', join(fixtures, 'data', 'instruction-data.json'), '--limit', '1'], tty.io);
  assert.match(tty.out.join(''), /\u001b\[1;32mThe spelling/);
});

test('dropped examples are shown and counted; options are validated', async () => {
  const c = io();
  await inspectCommand.run(['--model', gpt2, '--data', join(fixtures, 'data', 'instruction-data.json'), '--limit', '3', '--max-length', '20'], c.io);
  assert.match(c.out.join(''), /dropped \(truncated-away, 20 tokens\)/);
  assert.match(c.out.join(''), /kept 0\/3, dropped 3 \(truncated-away 3\)/);
  await assert.rejects(inspectCommand.run(['--data', 'x'], io().io), /Missing required inspect option --model: directory with tokenizer\.json/);
  await assert.rejects(inspectCommand.run(['--model', gpt2, '--data', 'x', '--limit', 'ten'], io().io), /Expected an integer >= 1 for --limit but received "ten"/);
  await assert.rejects(inspectCommand.run(['--model', gpt2, '--data', 'x', '--bogus'], io().io), (e: Error & { code?: string }) => e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION');
  await assert.rejects(
    inspectCommand.run(['--model', gpt2, '--data', join(fixtures, 'data', 'minimind-toy', 'tiny_sft.jsonl')], io().io),
    /--add-special-tokens/,
  );
  const added = io();
  await inspectCommand.run(['--model', gpt2, '--data', join(fixtures, 'data', 'minimind-toy', 'tiny_sft.jsonl'), '--add-special-tokens'], added.io);
  assert.match(added.out.join(''), /added tokens: <\|im_start\|>=50257 <\|im_end\|>=50258 \(vocab 50259\)/);
});

test('a template the tokenizer cannot represent: one warning per dataset with the unknown-token count and an example', async () => {
  const tinystories = join(fixtures, 'models', 'tinystories-656k');
  const data = join(fixtures, 'data', 'instruction-data.json');
  for (const json of [false, true]) {
    const c = io();
    const args = ['--model', tinystories, '--data', data, '--limit', '2', '--template', 'alpaca', ...(json ? ['--json'] : [])];
    assert.equal(await inspectCommand.run(args, c.io), 0);
    const warnings = c.err.join('').split('\n').filter((l) => l.startsWith('warning:'));
    assert.equal(warnings.length, 1, c.err.join(''));
    const m = /: (\d+) unknown tokens? \(<unk>\) in (\d+) of 2 examples, e\.g\. "###" from the template text \(line \d+, record 0\)/.exec(warnings[0] as string);
    assert.ok(m, warnings[0]);
    assert.ok(Number(m[1]) > 0);
    assert.ok(Number(m[2]) >= 1);
    if (json) assert.ok(c.out.join('').split('\n').filter(Boolean).every((l) => Object.keys(JSON.parse(l)).join() === 'input_ids,labels'));
  }
  // The same data without `###` (plain), and a byte-level tokenizer with no unknown token: no warning.
  for (const [model, template] of [[tinystories, 'plain'], [minimind, 'alpaca']] as const) {
    const c = io();
    assert.equal(await inspectCommand.run(['--model', model, '--data', data, '--limit', '2', '--template', template], c.io), 0);
    assert.doesNotMatch(c.err.join('') + c.out.join(''), /unknown token/);
  }
});
