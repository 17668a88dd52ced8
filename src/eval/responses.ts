// Response text from generated text (no prompt echo, stopped at the end token or at the next prompt header), and the
// ch. 7 `{instruction, input, output, model_response}` records file, written atomically.
import { readFile } from 'node:fs/promises';
import { dataError, invalidParameterError, SftkitError } from '../errors.ts';
import { writeFileAtomic } from '../shared/index.ts';
import type { ResponseRecord } from './judge.ts';

/** End-of-text tokens of the common tokenizers (GPT-2, Llama/TinyStories, Qwen/ChatML, Phi-3, Llama 3). */
export const DEFAULT_END_TOKENS: readonly string[] = ['<|endoftext|>', '</s>', '<|im_end|>', '<|end|>', '<|eot_id|>', '<|end_of_text|>'];

/** Where a next turn starts: Alpaca `### Instruction:`-style headers and chat turn openers. */
const NEXT_HEADER = /(?:^|\n)[ \t]*###[ \t]*(?:Instruction|Input|Response)[ \t]*:|<\|im_start\|>|<\|user\|>|<\|assistant\|>|<\|system\|>|<\|start_header_id\|>/;

export interface ExtractOptions {
  /** The prompt the model was given; stripped when the generated text starts with it (the echo). */
  prompt?: string;
  /** Header after which the response starts (`### Response:`); removed when the text starts with it, or everything
   *  up to its first occurrence when the prompt echo was not exact. Default `### Response:`. Empty string: none. */
  responseHeader?: string;
  /** End tokens to cut at (default DEFAULT_END_TOKENS plus none else). */
  endTokens?: readonly string[];
  /** Also cut at a following `### Instruction:`/`### Input:`/`### Response:` header or chat turn opener. Default true. */
  cutAtNextHeader?: boolean;
}

/** The response text in `generated`: prompt echo stripped, cut at the end token / next header, trimmed. */
export function extractResponse(generated: string, options: ExtractOptions = {}): string {
  const header = options.responseHeader ?? '### Response:';
  let text = generated;
  if (options.prompt && text.startsWith(options.prompt)) text = text.slice(options.prompt.length);
  else if (options.prompt && header) {
    const at = text.indexOf(header);
    if (at >= 0) text = text.slice(at);
  }
  if (header) {
    const lead = text.trimStart();
    if (lead.startsWith(header)) text = lead.slice(header.length);
  }
  let cut = text.length;
  for (const token of options.endTokens ?? DEFAULT_END_TOKENS) {
    if (!token) continue;
    const at = text.indexOf(token);
    if (at >= 0 && at < cut) cut = at;
  }
  text = text.slice(0, cut);
  if (options.cutAtNextHeader ?? true) {
    const m = NEXT_HEADER.exec(text);
    if (m) text = text.slice(0, m.index);
  }
  return text.trim();
}

function checkRecord(r: unknown, where: (field?: string) => Error): ResponseRecord {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw where();
  const v = r as Record<string, unknown>;
  for (const f of ['instruction', 'output', 'model_response'] as const) if (typeof v[f] !== 'string') throw where(f);
  if (v.input !== undefined && typeof v.input !== 'string') throw where('input');
  if (v.score !== undefined && v.score !== null && typeof v.score !== 'number') throw where('score');
  return {
    instruction: v.instruction as string,
    input: (v.input as string | undefined) ?? '',
    output: v.output as string,
    model_response: v.model_response as string,
    ...(v.score !== undefined ? { score: v.score as number | null } : {}),
  };
}

/**
 * Writes the records as a JSON array (indent 2, keys in the order instruction, input, output, model_response) to a
 * temp file next to `path`, fsyncs it and renames it over `path` (writeFileAtomic).
 */
export async function writeResponsesFile(path: string, records: readonly ResponseRecord[]): Promise<void> {
  const clean = records.map((r, i) =>
    checkRecord(r, (field) => invalidParameterError(field ? `records[${i}].${field}` : `records[${i}]`, field === 'input' ? 'a string or undefined' : 'a string', field ? (r as unknown as Record<string, unknown>)[field] : r)),
  );
  try {
    await writeFileAtomic(path, JSON.stringify(clean, null, 2) + '\n');
  } catch (e) {
    throw new SftkitError('SFTKIT_IO', `Cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Reads a responses file written by writeResponsesFile (or by the book's code). Errors name the record and field. */
export async function readResponsesFile(path: string): Promise<ResponseRecord[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw new SftkitError('SFTKIT_IO', `Cannot read ${path}: ${(e as Error).message}`, { cause: e });
    throw dataError({ file: path }, 'not valid JSON');
  }
  if (!Array.isArray(parsed)) throw dataError({ file: path }, 'expected a JSON array of records');
  return parsed.map((r, i) => checkRecord(r, (field) => dataError({ file: path, record: i, ...(field ? { field } : {}) }, field ? 'must be a string' : 'must be an object')));
}
