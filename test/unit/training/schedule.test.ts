// LR schedules against transformers' formulas (values computed with the Python expressions of
// get_{linear,cosine}_schedule_with_warmup) and the --warmup ratio-or-steps rule.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lrAt, lrFactor, warmupSteps } from '../../../src/training/schedule.ts';

const close = (a: number, b: number, tol = 1e-15): void =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} != ${b}`);

test('cosine matches transformers get_cosine_schedule_with_warmup', () => {
  const o = { schedule: 'cosine', lr: 5e-5, warmupSteps: 3, totalSteps: 17 } as const;
  const expected = [0.0, 1.6666666666666667e-5, 3.3333333333333335e-5, 5e-5, 4.058724504646834e-5, 6.268021954544096e-7, 0];
  [0, 1, 2, 3, 7, 16, 17].forEach((s, i) => close(lrAt(s, o), expected[i]!));
  // hand: progress 1/2 -> 0.5, progress 1/3 -> 0.75
  const h = { schedule: 'cosine', lr: 1, warmupSteps: 10, totalSteps: 100 } as const;
  close(lrFactor(55, h), 0.5);
  close(lrFactor(40, h), 0.75);
  assert.equal(lrFactor(100, h), 0);
  assert.equal(lrFactor(150, h), 0, 'stays at the minimum past the end');
});

test('cosine with a floor matches get_cosine_with_min_lr_schedule_with_warmup', () => {
  const o = { schedule: 'cosine', lr: 5e-5, warmupSteps: 3, totalSteps: 17, minLrRatio: 0.1 } as const;
  close(lrAt(7, o), 4.1528520541821506e-5);
  close(lrAt(17, o), 5e-6);
  close(lrAt(1000, o), 5e-6);
});

test('linear matches transformers get_linear_schedule_with_warmup', () => {
  const o = { schedule: 'linear', lr: 5e-5, warmupSteps: 3, totalSteps: 17 } as const;
  const expected = [0.0, 1.6666666666666667e-5, 3.3333333333333335e-5, 5e-5, 3.571428571428572e-5, 3.5714285714285714e-6, 0];
  [0, 1, 2, 3, 7, 16, 17].forEach((s, i) => close(lrAt(s, o), expected[i]!));
  assert.equal(lrAt(30, o), 0);
  close(lrFactor(55, { schedule: 'linear', lr: 1, warmupSteps: 10, totalSteps: 100 }), 0.5);
  close(lrFactor(100, { schedule: 'linear', lr: 1, warmupSteps: 10, totalSteps: 100, minLrRatio: 0.2 }), 0.2);
});

test('constant: warmup then flat', () => {
  const o = { schedule: 'constant', lr: 2e-4, warmupSteps: 4, totalSteps: 10 } as const;
  const expected = [0, 5e-5, 1e-4, 1.5e-4, 2e-4, 2e-4, 2e-4];
  [0, 1, 2, 3, 4, 9, 50].forEach((s, i) => close(lrAt(s, o), expected[i]!));
});

test('no warmup: step 0 runs at the full rate; degenerate totals do not divide by zero', () => {
  for (const schedule of ['constant', 'linear', 'cosine'] as const) {
    assert.equal(lrAt(0, { schedule, lr: 1e-3, warmupSteps: 0, totalSteps: 10 }), 1e-3);
    const f = lrFactor(0, { schedule, lr: 1, warmupSteps: 0, totalSteps: 0 });
    assert.ok(Number.isFinite(f));
    // warmup == total: the last warmup step then the decay floor
    assert.ok(Number.isFinite(lrFactor(5, { schedule, lr: 1, warmupSteps: 5, totalSteps: 5 })));
  }
});

test('bad schedule options name the parameter', () => {
  const base = { schedule: 'cosine', lr: 1, warmupSteps: 0, totalSteps: 10 } as const;
  assert.throws(() => lrAt(-1, base), /for step but received -1/);
  assert.throws(() => lrAt(1.5, base), /for step/);
  assert.throws(() => lrAt(0, { ...base, schedule: 'exp' as 'cosine' }), /for schedule but received "exp"/);
  assert.throws(() => lrAt(0, { ...base, lr: Number.NaN }), /for lr/);
  assert.throws(() => lrAt(0, { ...base, warmupSteps: -2 }), /for warmupSteps/);
  assert.throws(() => lrAt(0, { ...base, minLrRatio: 2 }), /for minLrRatio/);
});

test('--warmup: below 1 is a ratio of total steps (rounded up), 1 and above a step count', () => {
  assert.equal(warmupSteps(0, 100), 0);
  assert.equal(warmupSteps(0.1, 30), 3);
  assert.equal(warmupSteps(0.05, 30), 2); // ceil(1.5)
  assert.equal(warmupSteps(0.5, 7), 4);
  assert.equal(warmupSteps(1, 100), 1);
  assert.equal(warmupSteps(20, 100), 20);
  assert.equal(warmupSteps(500, 100), 100, 'capped at the total');
  assert.throws(() => warmupSteps(2.5, 100), /for warmup but received 2.5/);
  assert.throws(() => warmupSteps(-0.1, 100), /for warmup/);
  assert.throws(() => warmupSteps(0.1, -1), /for totalSteps/);
});
