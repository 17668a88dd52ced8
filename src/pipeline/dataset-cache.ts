// On-disk cache of tokenized datasets, keyed by a hash of data, tokenizer, template and options.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TokenizedExample } from '../mask/index.ts';
import { writeFileAtomic } from '../shared/index.ts';

const MAGIC = 'SFTKTOK1';
/** Bump when the tokenization rules change so that old cache entries are not reused. */
export const DATASET_CACHE_VERSION = 1;

export async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Everything that decides the token ids and labels, hashed into one key. */
export interface DatasetCacheKeyParts {
  dataHash: string;
  tokenizerFingerprint: string;
  templateId: string;
  options: Record<string, unknown>;
}

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableStringify(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export function datasetCacheKey(parts: DatasetCacheKeyParts): string {
  return createHash('sha256')
    .update(stableStringify({ v: DATASET_CACHE_VERSION, ...parts }))
    .digest('hex')
    .slice(0, 32);
}

export interface CachedDataset<M = unknown> {
  examples: TokenizedExample[];
  /** Anything JSON the writer wants back (summary, resolved format/template/mask...). */
  meta: M;
}

function entryPath(dir: string, key: string): string {
  return join(dir, `${key}.sftktok`);
}

/**
 * Layout: 8-byte magic, u32 LE header length, JSON header {count, meta}, padding to 4 bytes, then Int32 LE arrays:
 * lengths[count], all inputIds, all labels.
 */
export async function writeCachedDataset<M>(dir: string, key: string, data: CachedDataset<M>): Promise<string> {
  await mkdir(dir, { recursive: true });
  const count = data.examples.length;
  const header = Buffer.from(JSON.stringify({ count, meta: data.meta }), 'utf8');
  const headerEnd = 12 + header.length;
  const dataStart = Math.ceil(headerEnd / 4) * 4;
  const total = data.examples.reduce((s, e) => s + e.inputIds.length, 0);
  const buf = Buffer.alloc(dataStart + 4 * (count + 2 * total));
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(header.length, 8);
  header.copy(buf, 12);
  const ints = new Int32Array(buf.buffer, buf.byteOffset + dataStart, count + 2 * total);
  let at = count;
  data.examples.forEach((e, i) => {
    ints[i] = e.inputIds.length;
    ints.set(e.inputIds, at);
    at += e.inputIds.length;
  });
  for (const e of data.examples) {
    ints.set(e.labels, at);
    at += e.labels.length;
  }
  const path = entryPath(dir, key);
  await writeFileAtomic(path, buf);
  return path;
}

/** The cached dataset, or undefined when absent or unreadable (a corrupt entry is treated as a miss). */
export async function readCachedDataset<M>(dir: string, key: string): Promise<CachedDataset<M> | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(entryPath(dir, key));
  } catch {
    return undefined;
  }
  try {
    if (buf.toString('latin1', 0, 8) !== MAGIC) return undefined;
    const hlen = buf.readUInt32LE(8);
    const header = JSON.parse(buf.toString('utf8', 12, 12 + hlen)) as { count: number; meta: M };
    const dataStart = Math.ceil((12 + hlen) / 4) * 4;
    const aligned = new Uint8Array(buf.length - dataStart);
    aligned.set(buf.subarray(dataStart));
    const ints = new Int32Array(aligned.buffer, 0, aligned.length / 4);
    const count = header.count;
    let total = 0;
    for (let i = 0; i < count; i++) total += ints[i] as number;
    if (ints.length !== count + 2 * total) return undefined;
    const examples: TokenizedExample[] = [];
    let idAt = count;
    let labelAt = count + total;
    for (let i = 0; i < count; i++) {
      const n = ints[i] as number;
      examples.push({ inputIds: ints.slice(idAt, idAt + n), labels: ints.slice(labelAt, labelAt + n) });
      idAt += n;
      labelAt += n;
    }
    return { examples, meta: header.meta };
  } catch {
    return undefined;
  }
}
