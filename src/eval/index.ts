// The eval room's door: loss and perplexity over a data file, generated responses, and judge scoring.

export * from './evaluate.ts';
export * from './judge.ts';
export * from './responses.ts';
