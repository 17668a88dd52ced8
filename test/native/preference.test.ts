// DPO building blocks: per-sequence log-probabilities (chunked, no full logits) against logits computed the plain
// way, the preference step's loss and gradients, TRL's metric definitions, and `sftkit dpo --eval-only --json`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadModel } from '../../src/native/model.ts';
import { batchOf } from './helpers/batches.ts';
import { preferenceMetrics } from '../../src/training/preference.ts';

const root = join(import.meta.dirname, '..', '..');
const MODEL = join(root, 'test', 'fixtures', 'models', 'tinystories-656k');

test('sequenceLogps equals the sum of log-softmax of full logits over the labelled tokens', async () => {
  const model = await loadModel(MODEL, { threads: 1 });
  try {
    const b = batchOf([[1, 80, 147, 201, 282, 215, 286, 1890], [1, 80, 147, 9, 33]], [4, 2]);
    const { logps, tokens } = await model.sequenceLogps(b);
    const { logits, shape } = await model.forward(b);
    const [B, T, V] = shape;
    for (let r = 0; r < B; r++) {
      let sum = 0;
      let n = 0;
      for (let t = 0; t + 1 < T; t++) {
        const y = b.labels[r * T + t + 1] as number;
        if (y === -100) continue;
        const row = logits.subarray((r * T + t) * V, (r * T + t + 1) * V);
        const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
        const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
        sum += (row[y] as number) - lse;
        n++;
      }
      assert.equal(tokens[r], n);
      assert.ok(Math.abs((logps[r] as number) - sum) <= 1e-5 * Math.abs(sum), `row ${r}: ${logps[r]} vs ${sum}`);
    }
  } finally {
    await model.dispose();
  }
});

test('preferenceStep: loss log 2 against itself, and the gradient of (beta/2) x the chosen answer\'s CE', async () => {
  const beta = 0.3;
  const model = await loadModel(MODEL, { threads: 1 });
  try {
    // Pair: a chosen answer and a rejected row with no labelled token (its log-prob sum is 0, without gradient).
    const pair = batchOf([[1, 80, 147, 201, 282, 215], [1, 80, 147, 201]], [3, 99]);
    const ref = (await model.sequenceLogps(pair)).logps;
    const r = await model.preferenceStep(pair, { refLogps: ref, beta });
    assert.ok(Math.abs(r.lossSum - Math.log(2)) < 1e-6, `${r.lossSum}`);
    assert.equal(r.pairs, 1);
    assert.ok(Math.abs(r.chosenRewards[0] as number) < 1e-6);
    const dpo = await model.gradNorms();
    await model.zeroGrad();
    // d/dθ of -logsigmoid(beta * (pc - rc)) at pc = rc is -(beta / 2) ∇pc = (beta / 2) ∇CE(chosen).
    await model.step(batchOf([[1, 80, 147, 201, 282, 215]], [3]), { lossScale: beta / 2 });
    const ce = await model.gradNorms();
    for (const [name, g] of Object.entries(ce)) {
      assert.ok(Math.abs((dpo[name] as number) - g) <= 1e-4 * Math.max(g, 1e-8), `${name}: ${dpo[name]} vs ${g}`);
    }
    await model.zeroGrad();
    await assert.rejects(async () => model.preferenceStep(pair, { refLogps: new Float64Array(3) }), { code: 'SFTKIT_BAD_ARGUMENT' });
  } finally {
    await model.dispose();
  }
});

test('preferenceMetrics follows TRL: sigmoid with label smoothing, IPO on token-averaged log-probs, rewards, accuracy', () => {
  const policy = Float64Array.from([-10, -14, -20, -18]);
  const reference = Float64Array.from([-12, -13, -19, -19]);
  const tokens = Float64Array.from([4, 5, 8, 2]);
  const ls = (x: number) => -Math.log1p(Math.exp(-x));
  const m = preferenceMetrics(policy, reference, tokens, { beta: 0.1, labelSmoothing: 0.1, lossType: 'sigmoid' });
  const m1 = (-10 + 12) - (-14 + 13);
  const m2 = (-20 + 19) - (-18 + 19);
  const expected = ((-0.9 * ls(0.1 * m1) - 0.1 * ls(-0.1 * m1)) + (-0.9 * ls(0.1 * m2) - 0.1 * ls(-0.1 * m2))) / 2;
  assert.ok(Math.abs(m.loss - expected) < 1e-12);
  assert.ok(Math.abs(m.rewards_chosen - (0.1 * 2 + 0.1 * -1) / 2) < 1e-12);
  assert.ok(Math.abs(m.rewards_rejected - (0.1 * -1 + 0.1 * 1) / 2) < 1e-12);
  assert.equal(m.accuracy, 0.5);
  const ipo = preferenceMetrics(policy, reference, tokens, { beta: 0.1, labelSmoothing: 0, lossType: 'ipo' });
  const i1 = 2 / 4 - -1 / 5;
  const i2 = -1 / 8 - 1 / 2;
  assert.ok(Math.abs(ipo.loss - ((i1 - 5) ** 2 + (i2 - 5) ** 2) / 2) < 1e-12);
});

test('sftkit dpo --eval-only --json: the fixed keys; a policy against itself has loss ln 2 and zero rewards', () => {
  const args = ['bin/sftkit.js', 'dpo', '--model', MODEL, '--data', 'test/fixtures/data/instruction-data-with-preference-24.json', '--eval-only', '--template', 'alpaca', '--limit', '6', '--json'];
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ['loss', 'rewards_chosen', 'rewards_rejected', 'accuracy', 'pairs']);
  assert.equal(out.pairs, 6);
  // Reference and policy are two model instances run one after the other: equal up to the last bits of the
  // log-probability sums (MKL may pick its threads per call on a busy host; one fresh-clone run saw a difference).
  assert.ok(Math.abs(out.loss - Math.log(2)) < 1e-5, `loss ${out.loss}`);
  assert.ok(Math.abs(out.rewards_chosen) < 1e-5, `rewards_chosen ${out.rewards_chosen}`);
  const mm = spawnSync(process.execPath, ['bin/sftkit.js', 'dpo', '--model', MODEL, '--data', 'test/fixtures/data/minimind-toy/dpo_data.jsonl', '--eval-only', '--template', 'chatml', '--json'], { cwd: root, encoding: 'utf8' });
  // The TinyStories tokenizer has no ChatML tokens: a clear error, not a wrong mask.
  assert.notEqual(mm.status, 0);
  assert.match(mm.stderr, /needs the tokens <\|im_start\|>/);
  const training = spawnSync(process.execPath, ['bin/sftkit.js', 'dpo', '--model', MODEL, '--data', 'x.json'], { cwd: root, encoding: 'utf8' });
  assert.notEqual(training.status, 0);
  assert.match(training.stderr, /Missing required dpo option --out/);
});
