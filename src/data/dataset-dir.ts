// A dataset directory: its data files sorted into train / validation / test by name, as Hugging Face `datasets`
// names splits (`train.csv`, `val.jsonl`, `data/train-00000-of-00002.parquet`, ...).

import { readdir, stat } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { SftkitError } from '../errors.ts';

export type SplitName = 'train' | 'validation' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'validation', 'test'];
/** What evaluation (`sftkit eval`, `sftkit dpo --eval-only`) reads of a dataset directory: test, else validation, else train. */
export const EVAL_SPLITS: readonly SplitName[] = ['test', 'validation', 'train'];

/** The files of one split, read in order as one dataset (record numbers run on across the files). */
export interface DataFiles {
  /** The dataset directory. */
  dir: string;
  split: SplitName;
  /** Paths, sorted by name (shards in order). */
  files: string[];
  /** How messages name the split: `<dir> (<split> split)`. */
  displayName: string;
}

export interface DatasetDirectory {
  dir: string;
  /** The splits that have files. Without any split-named file, every data file is train. */
  splits: Partial<Record<SplitName, DataFiles>>;
  /** Whether some file names a split (false: every data file counts as train). */
  named: boolean;
}

/** The extensions read as data (`.json` holds a JSON array or JSONL, like `.jsonl`). */
export const DATA_EXTENSIONS: readonly string[] = ['.parquet', '.csv', '.tsv', '.json', '.jsonl'];

/** The words of a path that name a split (those `datasets` recognises). */
const SPLIT_WORDS: Record<string, SplitName> = {
  train: 'train',
  training: 'train',
  validation: 'validation',
  valid: 'validation',
  val: 'validation',
  dev: 'validation',
  test: 'test',
  testing: 'test',
  eval: 'test',
  evaluation: 'test',
};

/** JSON files `datasets` writes next to its data that are not records. */
const NOT_DATA = new Set(['dataset_info.json', 'dataset_dict.json', 'state.json', 'dataset_infos.json']);

const MAX_DEPTH = 4;
const collator = new Intl.Collator('en', { numeric: true });

/** The split a path (relative to the dataset directory) names: its first word that is a split name. */
export function splitOfPath(relativePath: string): SplitName | undefined {
  const stem = relativePath.slice(0, relativePath.length - extname(relativePath).length);
  for (const word of stem.toLowerCase().split(/[^a-z]+/)) {
    const split = SPLIT_WORDS[word];
    if (split !== undefined) return split;
  }
  return undefined;
}

function isDataFile(name: string): boolean {
  return DATA_EXTENSIONS.includes(extname(name).toLowerCase()) && !NOT_DATA.has(name);
}

async function listFiles(dir: string): Promise<{ data: string[]; arrow: number }> {
  const data: string[] = [];
  let arrow = 0;
  const walk = async (d: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      throw new SftkitError('SFTKIT_IO', `${d}: cannot list the dataset directory (${(err as Error).message})`, { cause: err });
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue; // .git, .cache (hub downloads), .DS_Store
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (depth < MAX_DEPTH) await walk(p, depth + 1);
      } else if (e.isFile() || e.isSymbolicLink()) {
        if (isDataFile(e.name)) data.push(p);
        else if (extname(e.name).toLowerCase() === '.arrow') arrow++;
      }
    }
  };
  await walk(dir, 0);
  return { data, arrow };
}

function describeSplit(dir: string, split: SplitName, files: string[]): DataFiles {
  files.sort((a, b) => collator.compare(relative(dir, a), relative(dir, b)));
  const exts = [...new Set(files.map((f) => extname(f).toLowerCase()))];
  if (exts.length > 1) {
    throw new SftkitError(
      'SFTKIT_DATA',
      `${dir}: the ${split} split has files in several formats (${files.map((f) => relative(dir, f)).join(', ')}); ` +
        'keep one format per split, or pass the file itself as --data',
    );
  }
  return { dir, split, files, displayName: `${dir} (${split} split)` };
}

/**
 * Sorts the data files below `dir` (`.parquet`, `.csv`, `.tsv`, `.json`, `.jsonl`; hidden folders skipped) into
 * splits by the first word of their path that names one: `train`/`training`, `validation`/`valid`/`val`/`dev`,
 * `test`/`testing`/`eval`/`evaluation` (`train.csv`, `val.jsonl`, `data/train-00000-of-00002.parquet`,
 * `test/part-0.parquet`). Files that name no split are left out when others do; when none does, all are train. The
 * files of a split are read in name order (shards in order) and must share one format.
 */
export async function readDatasetDirectory(dir: string): Promise<DatasetDirectory> {
  const { data, arrow } = await listFiles(dir);
  if (data.length === 0) {
    throw new SftkitError(
      'SFTKIT_DATA',
      `${dir}: no data files (${DATA_EXTENSIONS.join(', ')}) in this directory` +
        (arrow > 0 ? `; its .arrow files (datasets' save_to_disk) are not read: write Parquet with Dataset.to_parquet` : ''),
    );
  }
  const bySplit = new Map<SplitName, string[]>();
  for (const f of data) {
    const split = splitOfPath(relative(dir, f).split(sep).join('/'));
    if (split === undefined) continue;
    bySplit.set(split, [...(bySplit.get(split) ?? []), f]);
  }
  const named = bySplit.size > 0;
  if (!named) bySplit.set('train', data);
  const splits: Partial<Record<SplitName, DataFiles>> = {};
  for (const s of SPLIT_NAMES) {
    const files = bySplit.get(s);
    if (files !== undefined) splits[s] = describeSplit(dir, s, files);
  }
  return { dir, splits, named };
}

/**
 * The files of the first of `wanted` that the directory has. A directory whose files name no split gives all its
 * files for any split (a folder of validation shards passed as --val-data).
 */
export async function directorySplit(dir: string, wanted: SplitName | readonly SplitName[]): Promise<DataFiles> {
  const d = await readDatasetDirectory(dir);
  const list: readonly SplitName[] = typeof wanted === 'string' ? [wanted] : wanted;
  if (!d.named) {
    const all = d.splits.train as DataFiles;
    const split = list[0] ?? 'train';
    return { ...all, split, displayName: `${dir} (${split} split)` };
  }
  for (const s of list) {
    const files = d.splits[s];
    if (files !== undefined) return files;
  }
  const found = SPLIT_NAMES.filter((s) => d.splits[s] !== undefined)
    .map((s) => `${s}: ${(d.splits[s] as DataFiles).files.map((f) => relative(dir, f)).join(', ')}`)
    .join('; ');
  throw new SftkitError('SFTKIT_DATA', `${dir}: no ${list.join(' or ')} split in this dataset directory (found ${found})`);
}

/** The dataset directory `source` is, or undefined for a file, a URL or a path that does not exist. */
export async function datasetDirectory(source: string): Promise<DatasetDirectory | undefined> {
  if (/^https?:\/\//i.test(source)) return undefined;
  try {
    if (!(await stat(source)).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  return readDatasetDirectory(source);
}
