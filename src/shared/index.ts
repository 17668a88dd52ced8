// Helpers written once for every room: the atomic file write, the cache root, number formatting, the seeded PRNG.

export * from './atomic-write.ts';
export * from './cache-root.ts';
export * from './format.ts';
export * from './prng.ts';
