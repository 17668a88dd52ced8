// The training room's door: the shared loop and its metric events, the run wiring (run directory, lock, distributed
// setup, resume), checkpoints, metrics.jsonl, schedules, launch of worker processes, train/dpo options, LoRA options,
// preference pairs, split files and the second-model tokenizer check. Recipes (src/recipes/) and other rooms import
// from here.
export * from './checkpoint.ts';
export * from './launch.ts';
export * from './lock.ts';
export * from './loop.ts';
export * from './lora.ts';
export * from './options.ts';
export * from './preference.ts';
export * from './run.ts';
export * from './same-tokenizer.ts';
export * from './schedule.ts';
export * from './split-files.ts';
