// The door of the option system: one zod schema per command -> types, flags, --help, config keys, validation.
export * from './command-options.ts';
export * from './fragments.ts';
