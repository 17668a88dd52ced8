// The convert room's door: imports into Hugging Face model directories (llama2.c) and model surgery (layer truncation).

export * from './llama2c.ts';
export * from './truncate-layers.ts';
