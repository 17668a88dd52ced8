// The generate room's door: prompts rendered as in training, chat histories, streaming text, distillation data.

export * from './prompt.ts';
export * from './chat-prompter.ts';
export * from './stream-text.ts';
export * from './distill-data.ts';
