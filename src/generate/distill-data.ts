// Sequence-level distillation data (seed 004's RLAIF step): a teacher answers every prompt of a file in batched
// generation and the answers become a chat dataset `{"messages": [..., {"role": "assistant", ...}]}` for fine-tuning
// a student. Output goes to OUT.partial (appended and fsynced batch by batch, with OUT.partial.json recording how
// far it got) and is renamed to OUT when complete, so a crash leaves an earlier OUT intact and the run resumable.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { open, readFile, rename, rm, truncate } from 'node:fs/promises';
import { createPipeline } from '../pipeline/index.ts';
import { type Example, type FieldMap, hashDataFiles, openDataset, type RecordFormat } from '../data/index.ts';
import { SftkitError, invalidParameterError } from '../errors.ts';
import type { Model } from '../native/index.ts';
import { writeFileAtomic } from '../shared/index.ts';
import { examplePromptIds, stopIdsFor } from './prompt.ts';
import { replyText } from './stream-text.ts';

export interface DistillDataOptions {
  /** The teacher's directory (its tokenizer renders the prompts). */
  teacherDir: string;
  /** Prompts: alpaca, prompt-completion, chat, sharegpt or preference records (answers in the file are ignored). */
  prompts: string;
  out: string;
  format?: RecordFormat | 'auto';
  template?: string;
  fieldMap?: FieldMap;
  limit?: number;
  batchSize?: number;
  maxNewTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  log?: (message: string) => void;
}

export interface DistillDataResult {
  out: string;
  /** Prompts read, records written, prompts whose answer was empty (skipped), prompts done by an earlier run. */
  prompts: number;
  written: number;
  empty: number;
  resumed: number;
}

interface Progress {
  fingerprint: string;
  /** Prompts answered so far and the bytes of OUT.partial holding their records. */
  done: number;
  written: number;
  empty: number;
  bytes: number;
}

/** The chat messages of a prompt: the example without its answer, alpaca inputs joined to the instruction. */
export function promptMessages(e: Example): { role: string; content: string }[] {
  const messages = [...e.messages];
  while (messages.length > 0 && messages[messages.length - 1]?.role === 'assistant') messages.pop();
  return messages.map((m) => ({ role: m.role, content: m.input ? `${m.content}\n\n${m.input}` : m.content }));
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value));
}

/** Answers every prompt of `o.prompts` with `teacher` and writes the chat dataset to `o.out`. */
export async function distillDataset(teacher: Model, o: DistillDataOptions): Promise<DistillDataResult> {
  const batchSize = o.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw invalidParameterError('batchSize', 'a positive integer', batchSize);
  const log = o.log ?? (() => {});
  const opened = await openDataset(o.prompts, { format: o.format ?? 'auto', fieldMap: o.fieldMap ?? {}, ...(o.limit !== undefined ? { limit: o.limit } : {}) });
  if (opened.format === 'text') throw new SftkitError('SFTKIT_DATA', `${opened.displayName}: text records have no prompt; distillation needs instructions, prompts or chats`);
  const { pipeline } = await createPipeline(opened.format, { tokenizer: o.teacherDir, template: o.template });
  const examples: Example[] = [];
  for await (const e of opened.examples) {
    if (!e.messages.some((m) => m.role === 'user')) throw new SftkitError('SFTKIT_DATA', `${e.where.file}:${e.where.line} (record ${e.where.record}): no user turn to answer`);
    examples.push(e);
  }
  const generation = {
    maxNewTokens: o.maxNewTokens ?? 256,
    temperature: o.temperature ?? 0,
    topK: o.topK ?? 0,
    topP: o.topP ?? 1,
    seed: o.seed ?? 0,
  };
  const h = createHash('sha256');
  h.update(await hashDataFiles(opened.files));
  h.update(readFileSync(`${o.teacherDir}/config.json`));
  h.update(JSON.stringify([pipeline.template.id, opened.format, o.fieldMap ?? {}, o.limit ?? null, batchSize, generation]));
  const fingerprint = h.digest('hex').slice(0, 32);
  const partial = `${o.out}.partial`;
  const progressFile = `${partial}.json`;
  let progress: Progress = { fingerprint, done: 0, written: 0, empty: 0, bytes: 0 };
  if (existsSync(partial) && existsSync(progressFile)) {
    const p = JSON.parse(await readFile(progressFile, 'utf8')) as Progress;
    if (p.fingerprint === fingerprint) {
      progress = p;
      await truncate(partial, p.bytes); // drops a batch written after the last progress record
      log(`sftkit distill: resuming ${partial} after ${p.done} of ${examples.length} prompts`);
    }
  }
  const resumed = progress.done;
  const fh = await open(partial, progress.done > 0 ? 'r+' : 'w');
  const stopIds = stopIdsFor(pipeline.tokenizer, teacher.spec.eosTokenIds);
  try {
    for (let i = progress.done; i < examples.length; i += batchSize) {
      const chunk = examples.slice(i, i + batchSize);
      // The batch is left-padded together; the seed is offset per batch so a resumed run samples the same tokens.
      const replies = await teacher.generate(
        chunk.map((e) => examplePromptIds(e, pipeline.tokenizer, pipeline.template)),
        { ...generation, seed: generation.seed + i, stopIds },
      );
      let text = '';
      chunk.forEach((e, j) => {
        const answer = replyText(pipeline.tokenizer, replies[j] ?? [], stopIds);
        if (answer === '') {
          progress.empty++;
          return;
        }
        text += `${JSON.stringify({ messages: [...promptMessages(e), { role: 'assistant', content: answer }] })}\n`;
        progress.written++;
      });
      const data = Buffer.from(text, 'utf8');
      await fh.write(data, 0, data.length, progress.bytes);
      await fh.sync();
      progress = { ...progress, done: i + chunk.length, bytes: progress.bytes + data.length };
      await writeJsonAtomic(progressFile, progress);
      log(`sftkit distill: ${progress.done}/${examples.length} prompts answered`);
    }
  } finally {
    await fh.close();
  }
  if (progress.written === 0) throw new SftkitError('SFTKIT_DATA', `the teacher ${o.teacherDir} gave an empty answer to every prompt of ${opened.displayName}; nothing written`);
  await rename(partial, o.out);
  await rm(progressFile, { force: true });
  return { out: o.out, prompts: examples.length, written: progress.written, empty: progress.empty, resumed };
}
