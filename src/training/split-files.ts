// Writes the split a run used as OUT/data/{train,val,test}.jsonl: the source records (as read, one JSON object per
// line) of the examples in each split, so `sftkit eval --data OUT/data/test.jsonl` evaluates exactly the held-out set.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { PreparedDataset } from '../pipeline/index.ts';
import { readRecords, type DataSource } from '../data/index.ts';
import { writeStreamAtomic } from '../shared/index.ts';

async function recordsByIndex(source: DataSource, wanted: Set<number>): Promise<Map<number, unknown>> {
  const found = new Map<number, unknown>();
  if (wanted.size === 0) return found;
  for await (const r of readRecords(source)) {
    if (wanted.has(r.where.record)) found.set(r.where.record, r.value);
  }
  return found;
}

function* jsonLines(values: readonly unknown[]): Generator<string> {
  for (const v of values) yield `${JSON.stringify(v)}\n`;
}

async function writeJsonl(path: string, values: readonly unknown[]): Promise<void> {
  await writeStreamAtomic(path, jsonLines(values));
}

/** What the split files are written from: the sources and, per split, items that know their source record. */
export interface SplitSource {
  sources: PreparedDataset['sources'];
  train: readonly { record?: number }[];
  val: readonly { record?: number }[];
  test: readonly { record?: number }[];
}

function indices(examples: readonly { record?: number }[]): number[] {
  return examples.map((e) => e.record).filter((r): r is number => typeof r === 'number' && r >= 0);
}

export async function writeSplitFiles(dir: string, prepared: SplitSource): Promise<void> {
  await mkdir(dir, { recursive: true });
  const parts: [name: 'train' | 'val' | 'test', source: DataSource | undefined][] = [
    ['train', prepared.sources.data],
    ['val', prepared.sources.valData ?? prepared.sources.data],
    ['test', prepared.sources.testData ?? prepared.sources.data],
  ];
  const cache = new Map<DataSource, Map<number, unknown>>();
  for (const [, source] of parts) {
    if (source === undefined || cache.has(source)) continue;
    const wanted = new Set<number>();
    for (const [name, s] of parts) if (s === source) for (const i of indices(prepared[name])) wanted.add(i);
    cache.set(source, await recordsByIndex(source, wanted));
  }
  for (const [name, source] of parts) {
    const records = source === undefined ? new Map() : (cache.get(source) as Map<number, unknown>);
    await writeJsonl(join(dir, `${name}.jsonl`), indices(prepared[name]).map((i) => records.get(i)));
  }
}
