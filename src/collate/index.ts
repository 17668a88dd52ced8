// The collate room's door: tokenized examples -> batches (padding, packing, length-grouped epoch plans), and the one
// `Batch` type handed to the native step.

export * from './batch.ts';
export * from './pack.ts';
export * from './batch-plan.ts';
export * from './batches.ts';
