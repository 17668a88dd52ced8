// The bench room's door: the training-step benchmark, random-weight model directories and FLOP accounting.

export * from './flops.ts';
export * from './random-models.ts';
export * from './train-bench.ts';
