// What the pickers of the inspector, playground and responses views offer: model directories, data files and
// responses files found below the allowed roots (a bounded walk; any other allowed path can still be typed).
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';

export type CandidateKind = 'model' | 'data' | 'responses';
export const CANDIDATE_KINDS: readonly CandidateKind[] = ['model', 'data', 'responses'];

export interface Candidate {
  path: string;
  /** The allowed root it was found under. */
  root: string;
}

/** JSON files a run or a model directory holds that are not data. */
const NOT_DATA = new Set([
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'trainer_state.json',
  'sftkit_run.json',
  'metrics.jsonl',
  'package.json',
  'package-lock.json',
  'libtorch.json',
]);

const MAX_DEPTH = 5;
const MAX_VISITS = 4000;
const MAX_RESULTS = 300;

function isModelDir(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'tokenizer.json'));
}

function fileMatches(kind: CandidateKind, name: string): boolean {
  if (kind === 'data' && /\.(parquet|csv|tsv)$/i.test(name)) return true;
  if (!/\.jsonl?$/i.test(name) || NOT_DATA.has(name) || name.endsWith('.index.json')) return false;
  if (kind === 'responses') return /response/i.test(name) && name.endsWith('.json');
  return kind === 'data';
}

export async function listCandidates(roots: readonly string[], kind: CandidateKind): Promise<Candidate[]> {
  const out: Candidate[] = [];
  let visits = 0;
  for (const root of roots) {
    let st;
    try {
      st = statSync(root);
    } catch {
      continue;
    }
    if (st.isFile()) {
      if (kind !== 'model' && fileMatches(kind, basename(root))) out.push({ path: root, root });
      continue;
    }
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (out.length >= MAX_RESULTS || ++visits > MAX_VISITS) return;
      if (kind === 'model' && isModelDir(dir)) out.push({ path: dir, root });
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      entries.sort((a, b) => a.name.localeCompare(b.name));
      if (kind !== 'model') {
        for (const e of entries) if (e.isFile() && fileMatches(kind, e.name) && out.length < MAX_RESULTS) out.push({ path: join(dir, e.name), root });
      }
      if (depth >= MAX_DEPTH) return;
      for (const e of entries) {
        if (!e.isDirectory() || e.name.startsWith('.') || e.name === 'node_modules') continue;
        // Checkpoints are models; their JSON files are not data.
        if (kind !== 'model' && e.name.startsWith('checkpoint-')) continue;
        await walk(join(dir, e.name), depth + 1);
      }
    };
    await walk(root, 0);
  }
  return out;
}
