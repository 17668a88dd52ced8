// Learning-rate schedules (constant, linear, cosine, each with linear warmup from 0), matching transformers'
// get_{constant,linear,cosine}_schedule_with_warmup, plus the `--warmup X` ratio-or-steps rule.
import { invalidParameterError } from '../errors.ts';

export type ScheduleName = 'constant' | 'linear' | 'cosine';
export const SCHEDULE_NAMES: readonly ScheduleName[] = ['constant', 'linear', 'cosine'];

export interface ScheduleOptions {
  schedule: ScheduleName;
  /** Peak learning rate (reached at the end of warmup). */
  lr: number;
  /** Optimizer steps of linear warmup from 0 to `lr`. */
  warmupSteps: number;
  /** Total optimizer steps of the run (linear reaches its floor here; cosine completes its half cycle). */
  totalSteps: number;
  /**
   * Floor of linear and cosine decay as a fraction of `lr` (0 <= r <= 1, default 0). With 0 the curves are exactly
   * transformers'; with r > 0 cosine equals get_cosine_with_min_lr_schedule_with_warmup(min_lr_rate=r) and linear
   * decays to r * lr instead of 0.
   */
  minLrRatio?: number;
}

function checkOptions(o: ScheduleOptions): void {
  if (!SCHEDULE_NAMES.includes(o.schedule)) {
    throw invalidParameterError('schedule', SCHEDULE_NAMES.map((s) => `'${s}'`).join(', '), o.schedule);
  }
  if (!Number.isFinite(o.lr) || o.lr < 0) throw invalidParameterError('lr', 'a finite number >= 0', o.lr);
  if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0) {
    throw invalidParameterError('warmupSteps', 'an integer >= 0', o.warmupSteps);
  }
  if (!Number.isInteger(o.totalSteps) || o.totalSteps < 0) {
    throw invalidParameterError('totalSteps', 'an integer >= 0', o.totalSteps);
  }
  const r = o.minLrRatio ?? 0;
  if (!Number.isFinite(r) || r < 0 || r > 1) throw invalidParameterError('minLrRatio', 'a number in [0, 1]', r);
}

/**
 * The multiplier of `lr` at optimizer step `step` (0-based, as HF's LambdaLR: step 0 is the first update, so with
 * warmup the first update uses lr 0). Past `totalSteps` linear stays at its floor and cosine stays at its minimum
 * (transformers' cosine would rise again; the loop never gets there).
 */
export function lrFactor(step: number, options: ScheduleOptions): number {
  checkOptions(options);
  if (!Number.isInteger(step) || step < 0) throw invalidParameterError('step', 'an integer >= 0', step);
  const { schedule, warmupSteps, totalSteps } = options;
  const minRatio = options.minLrRatio ?? 0;
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  if (schedule === 'constant') return 1;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  if (schedule === 'linear') {
    // transformers: max(0, (total - step) / max(1, total - warmup)) == 1 - progress, clamped at 0.
    const f = Math.max(0, 1 - progress);
    return minRatio + (1 - minRatio) * f;
  }
  // cosine, num_cycles = 0.5: 0.5 * (1 + cos(pi * 2 * 0.5 * progress))
  const f = 0.5 * (1 + Math.cos(Math.PI * progress));
  return Math.max(0, minRatio + (1 - minRatio) * f);
}

/** The learning rate at optimizer step `step` (0-based): `lr * lrFactor(step)`. */
export function lrAt(step: number, options: ScheduleOptions): number {
  return options.lr * lrFactor(step, options);
}

/**
 * `--warmup X` to a step count: 0 <= X < 1 is a ratio of the total steps (rounded up, as transformers'
 * get_warmup_steps), X >= 1 must be an integer step count. The result is capped at `totalSteps`.
 */
export function warmupSteps(warmup: number, totalSteps: number): number {
  if (!Number.isInteger(totalSteps) || totalSteps < 0) {
    throw invalidParameterError('totalSteps', 'an integer >= 0', totalSteps);
  }
  if (!Number.isFinite(warmup) || warmup < 0) {
    throw invalidParameterError('warmup', 'a ratio in [0, 1) or an integer step count >= 1', warmup);
  }
  if (warmup < 1) return Math.min(totalSteps, Math.ceil(warmup * totalSteps));
  if (!Number.isInteger(warmup)) {
    throw invalidParameterError('warmup', 'a ratio in [0, 1) or an integer step count >= 1', warmup);
  }
  return Math.min(totalSteps, warmup);
}
