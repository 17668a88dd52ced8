// LoRA in a training run: the train options -> the model's LoRA options, and the rule that a resumed run keeps the
// LoRA options it was started with (its checkpoints hold adapters of that shape). Any objective that trains through
// Model.step / preferenceStep / optimizerStep gets the adapters from the model itself.
import { SftkitError } from '../errors.ts';
import type { LoraOptions } from '../native/index.ts';
import type { TrainOptions } from './options.ts';

// The base's format is part of what the adapters were trained over (--base-dtype, --double-quant).
const LORA_KEYS = ['loraR', 'loraAlpha', 'loraDropout', 'loraTargets', 'baseDtype', 'doubleQuant'] as const;

type LoraTrainOptions = Pick<TrainOptions, 'loraR' | 'loraAlpha' | 'loraDropout' | 'loraTargets' | 'seed'> & Partial<Pick<TrainOptions, 'baseDtype' | 'doubleQuant'>>;

/** The `lora` load option of a run (undefined: full fine-tuning). The run's seed seeds A's init and the dropout. */
export function loraFromTrainOptions(o: LoraTrainOptions): LoraOptions | undefined {
  if (!(o.loraR > 0)) return undefined;
  const targets = o.loraTargets?.split(',').map((t) => t.trim()).filter((t) => t.length > 0);
  return {
    r: o.loraR,
    alpha: o.loraAlpha,
    dropout: o.loraDropout,
    seed: o.seed,
    ...(targets !== undefined && targets.length > 0 ? { targets } : {}),
  };
}

/** Throws when `now` changes a LoRA option of the run that wrote `checkpoint` (whose options are `before`). */
export function checkLoraResume(before: Partial<LoraTrainOptions>, now: LoraTrainOptions, checkpoint: string): void {
  const defaults: Partial<LoraTrainOptions> = { loraR: 0, loraAlpha: 8, loraDropout: 0, baseDtype: 'float32', doubleQuant: false };
  if ((before.loraR ?? 0) === 0 && now.loraR === 0) return;
  for (const k of LORA_KEYS) {
    const was = before[k] ?? defaults[k];
    const is = now[k] ?? defaults[k];
    if (was !== is) {
      throw new SftkitError(
        'SFTKIT_BAD_ARGUMENT',
        `--resume: ${checkpoint} was trained with ${k} ${JSON.stringify(was ?? null)}, now ${JSON.stringify(is ?? null)}; ` +
          'resume with the same LoRA and base options or use a new --out',
      );
    }
  }
}
