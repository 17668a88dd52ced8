// The mask room's public surface.

export * from './mask-mode.ts';
export * from './tokenize-with-mask.ts';
export * from './mask-summary.ts';
export * from './masked-pieces.ts';
