// The house's layout, checked: no import cycle among src/ modules (type-only imports included), every cross-room
// import goes through the room's door (its index.ts; recipes are each their own door, cli's is main.ts), no room
// imports its own door, and the C++ engine (native/engine) knows nothing of N-API.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = resolve(import.meta.dirname, '../../..');
const SRC = join(ROOT, 'src');

function walk(dir: string, keep: (p: string) => boolean, skipDir: (name: string) => boolean = () => false): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) return skipDir(name) ? [] : walk(p, keep, skipDir);
      return keep(p) ? [p] : [];
    });
}

// The web front end (src/ui/web) is bundled for the browser on its own and is not part of the module graph.
const files = walk(SRC, (p) => p.endsWith('.ts') && !p.endsWith('.d.ts'), (name) => name === 'web');

function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles.map((i) => i.fileName).filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s));
}

const graph = new Map(files.map((f) => [f, importsOf(f)]));
const rel = (p: string): string => relative(SRC, p);
const roomOf = (p: string): string => {
  const parts = rel(p).split('/');
  return parts.length === 1 ? '(top)' : (parts[0] as string);
};
/** Rooms whose files may be imported directly: the package's top-level files, each recipe, the CLI's main. */
const NO_DOOR = new Set(['(top)', 'recipes']);
const doorOf = (room: string): string => join(SRC, room, room === 'cli' ? 'main.ts' : 'index.ts');

test('src/ has no import cycle (type-only imports included)', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, stack: string[]): void => {
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) {
      if (!graph.has(t)) continue;
      if (state.get(t) === 'open') cycles.push([...stack.slice(stack.indexOf(t)), t].map(rel).join(' -> '));
      else if (!state.has(t)) visit(t, [...stack, t]);
    }
    state.set(f, 'done');
  };
  for (const f of files) if (!state.has(f)) visit(f, [f]);
  assert.deepEqual(cycles, []);
});

test('every import resolves to a file that exists', () => {
  const missing = [...graph].flatMap(([f, ts_]) => ts_.filter((t) => !existsSync(t)).map((t) => `${rel(f)} -> ${t}`));
  assert.deepEqual(missing, []);
});

test('rooms are entered through their door only, and never through their own', () => {
  const wrong: string[] = [];
  for (const [f, targets] of graph) {
    const from = roomOf(f);
    for (const t of targets) {
      const to = roomOf(t);
      if (from === to) {
        if (from !== '(top)' && t === doorOf(from) && f !== t) wrong.push(`${rel(f)} imports its own door ${rel(t)}`);
      } else if (!NO_DOOR.has(to) && t !== doorOf(to)) {
        wrong.push(`${rel(f)} -> ${rel(t)} (door: ${rel(doorOf(to))})`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('every room has its door', () => {
  const rooms = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory() && !NO_DOOR.has(n));
  assert.deepEqual(rooms.filter((r) => !existsSync(doorOf(r))), []);
});

test('native/engine is plain C++ over libtorch: no N-API in it', () => {
  const engine = join(ROOT, 'native', 'engine');
  assert.ok(existsSync(engine), 'native/engine exists');
  const sources = walk(engine, (p) => /\.(cc|h|hpp|cpp)$/.test(p));
  assert.ok(sources.length > 0);
  const napi = sources.filter((p) => /napi|node_api/i.test(readFileSync(p, 'utf8')));
  assert.deepEqual(napi.map((p) => relative(ROOT, p)), []);
});
