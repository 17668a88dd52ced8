// The tokenize room's door: tokenizer.json / tokenizer_config.json, special tokens, encode/decode, token pieces.

export * from './tokenizer.ts';
export * from './token-pieces.ts';
