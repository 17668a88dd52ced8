// The collate room's public surface.

export * from './prng.ts';
export * from './split.ts';
export * from './batch.ts';
export * from './pack.ts';
export * from './batch-plan.ts';
export * from './dataset-cache.ts';
