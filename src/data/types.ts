// The conversation model every record format is turned into: messages with a role and a trained flag.

/** Who speaks in a message. `tool` turns are never trained. */
export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface Message {
  role: Role;
  content: string;
  /** Whether the loss is computed on this message (its content and its end-of-turn token). */
  trained: boolean;
  /**
   * The optional `input` block of an instruction-style user turn (alpaca `input`, instruct `input`), kept apart so
   * that the alpaca style can print it under `### Input:`; other styles append it to the content.
   */
  input?: string;
}

/**
 * Where a record came from, for error messages: the file, the 1-based line (JSON: where the record starts; CSV/TSV:
 * the line the record starts on; Parquet: the row) and the 0-based record index (counted on across the files of a
 * dataset directory's split).
 */
export interface RecordLocation {
  file: string;
  line: number;
  record: number;
}

/** The record layouts sftkit reads (`auto` detects one from the keys of the first record). */
export type RecordFormat =
  | 'alpaca' // {instruction, input?, output}
  | 'instruct' // {instruct, input?, label}  (seed 001)
  | 'prompt-completion' // {prompt, completion}: strings or message lists
  | 'chat' // {messages | conversations: [{role, content}]}
  | 'sharegpt' // {conversations: [{from, value}]}  (human / gpt / system)
  | 'text' // {text}  (pretraining)
  | 'preference'; // {prompt?, chosen, rejected}: strings or message lists

export const RECORD_FORMATS: readonly RecordFormat[] = [
  'alpaca',
  'instruct',
  'prompt-completion',
  'chat',
  'sharegpt',
  'text',
  'preference',
];

/**
 * What an example is, which decides how templates render it: `instruction` (one prompt, one response, e.g. alpaca),
 * `chat` (turns), `text` (raw text for pretraining: no prompt style at all).
 */
export type ExampleKind = 'instruction' | 'chat' | 'text';

export interface Example {
  kind: ExampleKind;
  /** For preference records: prompt + chosen. The trained flags mark the completion part as read from the record. */
  messages: Message[];
  /** Preference records only: prompt + rejected (for preference training; SFT uses `messages`). */
  rejected?: Message[];
  where: RecordLocation;
}

/** The names a record's fields are looked up by; a field map renames them (`{ instruction: 'question' }`). */
export type CanonicalField =
  | 'instruction'
  | 'input'
  | 'output'
  | 'instruct'
  | 'label'
  | 'prompt'
  | 'completion'
  | 'messages'
  | 'conversations'
  | 'role'
  | 'content'
  | 'from'
  | 'value'
  | 'text'
  | 'chosen'
  | 'rejected'
  | 'system';

export const CANONICAL_FIELDS: readonly CanonicalField[] = [
  'instruction',
  'input',
  'output',
  'instruct',
  'label',
  'prompt',
  'completion',
  'messages',
  'conversations',
  'role',
  'content',
  'from',
  'value',
  'text',
  'chosen',
  'rejected',
  'system',
];

export type FieldMap = Partial<Record<CanonicalField, string>>;

/** One parsed JSON value from a data file and where it starts. */
export interface RawRecord {
  value: unknown;
  where: RecordLocation;
}
