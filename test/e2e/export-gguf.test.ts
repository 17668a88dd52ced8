// GGUF export checked by a real client sftkit did not write: node-llama-cpp 3.21.1 (llama.cpp, prebuilt binary from
// npm) loads every exported file. Greedy generation of 32 tokens from a prompt equals sftkit's own greedy generation
// for f32 on the real TinyStories-656K (llama), stories260K (llama2.c import) and the tiny random gpt2, qwen2 and
// qwen3 models; f16/bf16/q8_0 are compared by teacher-forced top-1 agreement with sftkit's fp32 forward (at least
// 90% for f16/bf16 and 80% for q8_0 on the two real models; the figures of all models are printed and written to
// test-artifacts/export/agreement.json). The tokenizer inside the file tokenizes text as sftkit does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { exportGguf, readGguf, type GgufOutType } from '../../src/export/index.ts';
import { loadModel } from '../../src/native/model.ts';
import { loadTokenizer } from '../../src/tokenize/tokenizer.ts';
import { EXPORT_TYPES, prepareExportCases, type ExportCase } from './helpers/export-cases.ts';

const root = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'sftkit-e2e-gguf-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const TYPES = EXPORT_TYPES;
const STORY =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog. ' +
  'One day, she saw a big red ball under a tree. She ran to the ball and picked it up. "Look, Mom!" she said. ' +
  'Her mom smiled and said, "What a nice ball! Be careful and share it with your friends." Lily played with her ' +
  'friends all day, and they were very happy. When the sun went down, they all went home to eat dinner.';

interface Case extends ExportCase {
  prompt: number[];
  teacherForced: number[];
  texts: string[];
  contextSize: number;
}

function seeded(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % (vocab - 3));
  });
}

/** The smallest top-1 / top-2 logit gap over the generated positions of `ids` (prompt of `from` tokens). */
async function minMargin(model: Awaited<ReturnType<typeof loadModel>>, ids: number[], from: number): Promise<number> {
  const { logits, shape } = await model.forward({ inputIds: Int32Array.from(ids), shape: [1, ids.length] });
  const V = shape[2];
  let min = Infinity;
  for (let t = from - 1; t < ids.length - 1; t++) {
    let a = -Infinity;
    let b = -Infinity;
    for (let v = 0; v < V; v++) {
      const x = logits[t * V + v]!;
      if (x > a) [a, b] = [x, a];
      else if (x > b) b = x;
    }
    min = Math.min(min, a - b);
  }
  return min;
}

const cases: Case[] = [];
const sftkitResults = new Map<string, { generated: number[]; top1: number[]; tokenized: number[][] }>();
let llamaResults: Array<{ path: string; generated: number[]; top1: number[]; tokenized: number[][]; ms: number }> = [];
const files = new Map<string, string>(); // `${case}/${type}` -> gguf path

before(async () => {
  for (const c of await prepareExportCases(scratch)) {
    if (c.real) {
      const tok = await loadTokenizer(c.dir);
      const bos = tok.tokenToId(tok.bosToken ?? '') ?? 1;
      const story = [bos, ...tok.encode(STORY)].slice(0, 128);
      cases.push({ ...c, prompt: [bos, ...tok.encode('Once upon a time')], teacherForced: story, texts: [STORY, 'The cat sat on the mat.\nIt was happy!'], contextSize: 256 });
    } else {
      cases.push({ ...c, prompt: [1, ...seeded(7, 128, 7)], teacherForced: [1, ...seeded(47, 128, 11)], texts: ['then the thin cat sat in the hat.\nIt is 2024, "he" said: x+y=z!'], contextSize: 64 });
    }
  }
  const out = join(scratch, 'gguf');
  mkdirSync(out);
  for (const c of cases) {
    for (const type of TYPES) {
      const file = join(out, `${c.name}-${type}.gguf`);
      await exportGguf(c.dir, file, { type });
      files.set(`${c.name}/${type}`, file);
    }
    const model = await loadModel(c.dir, { threads: 2 });
    try {
      // Random tiny models have near-ties (logit margins ~1e-5) where fp32 rounding order decides the argmax: their
      // prompt is the first of a few seeded ones whose greedy path never comes within 1e-3 of a tie.
      let gen: Int32Array | undefined;
      for (let seed = 7; ; seed++) {
        if (!c.real) c.prompt = [1, ...seeded(7, 128, seed)];
        [gen] = await model.generate([c.prompt], { maxNewTokens: 32, temperature: 0 });
        if (c.real || (await minMargin(model, [...c.prompt, ...Array.from(gen!)], c.prompt.length)) >= 1e-3 || seed > 40) break;
      }
      const T = c.teacherForced.length;
      const { logits, shape } = await model.forward({ inputIds: Int32Array.from(c.teacherForced), shape: [1, T] });
      const V = shape[2];
      const top1 = Array.from({ length: T }, (_, t) => {
        let best = 0;
        for (let v = 1; v < V; v++) if (logits[t * V + v]! > logits[t * V + best]!) best = v;
        return best;
      });
      const tokenized = await loadTokenizer(c.dir).then((tok) => c.texts.map((s) => tok.encode(s)));
      sftkitResults.set(c.name, { generated: Array.from(gen!).filter((id) => id >= 0), top1, tokenized });
    } finally {
      await model.dispose();
    }
  }
  const job = {
    threads: 1, // more threads than one make node-llama-cpp ~20x slower per token on a 2-core machine
    models: cases.flatMap((c) =>
      TYPES.map((type) => ({ path: files.get(`${c.name}/${type}`), contextSize: c.contextSize, prompt: c.prompt, maxTokens: 32, teacherForced: c.teacherForced, texts: type === 'f32' ? c.texts : [] })),
    ),
  };
  const jobFile = join(scratch, 'job.json');
  writeFileSync(jobFile, JSON.stringify(job));
  const r = spawnSync(process.execPath, [join(import.meta.dirname, 'helpers', 'llama-cpp-generate.mjs'), jobFile], { cwd: root, encoding: 'utf8', timeout: 240_000, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `node-llama-cpp helper failed:\n${r.stderr}\n${r.stdout}`);
  llamaResults = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { results: typeof llamaResults }).results;
});

function llamaFor(name: string, type: GgufOutType) {
  const path = files.get(`${name}/${type}`);
  const r = llamaResults.find((x) => x.path === path);
  assert.ok(r, `no node-llama-cpp result for ${name} ${type}`);
  return r;
}

test('every exported file is a GGUF v3 that node-llama-cpp loaded and generated from', () => {
  assert.equal(llamaResults.length, cases.length * TYPES.length);
  for (const c of cases) {
    for (const type of TYPES) {
      const g = readGguf(files.get(`${c.name}/${type}`)!);
      assert.equal(g.version, 3);
      assert.equal(llamaFor(c.name, type).generated.length, 32, `${c.name} ${type}`);
    }
  }
});

test('f32: node-llama-cpp greedy 32 tokens equal sftkit greedy generation (llama, llama2.c import, gpt2, qwen2, qwen3)', () => {
  for (const c of cases) {
    assert.deepEqual(llamaFor(c.name, 'f32').generated, sftkitResults.get(c.name)!.generated, `${c.name}: llama.cpp vs sftkit`);
  }
});

test('the tokenizer inside the file tokenizes as sftkit does (llama/SentencePiece-style and byte-level BPE with gpt-2 and qwen2 pre-tokenizers)', () => {
  for (const c of cases) {
    const want = sftkitResults.get(c.name)!.tokenized;
    assert.ok(want.length > 0 && want.every((ids) => ids.length > 5), c.name);
    assert.deepEqual(llamaFor(c.name, 'f32').tokenized, want, c.name);
  }
});

test('teacher-forced top-1 agreement with sftkit fp32: f32 ~100%, f16/bf16 >= 90%, q8_0 >= 80% on the real models', () => {
  const table: Record<string, Record<string, number>> = {};
  for (const c of cases) {
    const want = sftkitResults.get(c.name)!.top1;
    table[c.name] = {};
    for (const type of TYPES) {
      const got = llamaFor(c.name, type).top1;
      assert.equal(got.length, want.length);
      const agree = got.filter((t, i) => t === want[i]).length / want.length;
      table[c.name]![type] = Math.round(agree * 1000) / 10;
    }
  }
  const art = join(root, 'test-artifacts', 'export');
  mkdirSync(art, { recursive: true });
  writeFileSync(join(art, 'agreement.json'), `${JSON.stringify({ positions: Object.fromEntries(cases.map((c) => [c.name, c.teacherForced.length])), percent: table }, null, 2)}\n`);
  console.log(`teacher-forced top-1 agreement (%): ${JSON.stringify(table)}`);
  for (const c of cases) {
    const row = table[c.name]!;
    assert.ok(row['f32']! >= 98, `${c.name} f32 ${row['f32']}%`);
    if (!c.real) continue;
    assert.ok(row['f16']! >= 90, `${c.name} f16 ${row['f16']}%`);
    assert.ok(row['bf16']! >= 90, `${c.name} bf16 ${row['bf16']}%`);
    assert.ok(row['q8_0']! >= 80, `${c.name} q8_0 ${row['q8_0']}%`);
  }
});

test('sizes: f16/bf16 about half of f32, q8_0 about a quarter (2-D weights)', () => {
  const c = cases[0]!;
  const size = (t: GgufOutType) => readGguf(files.get(`${c.name}/${t}`)!).fileBytes;
  assert.ok(size('f16') < size('f32') * 0.6 && size('bf16') < size('f32') * 0.6);
  assert.ok(size('q8_0') < size('f32') * 0.35);
});

test("gguf-py's report: every export has the keys, value types, tensor names, shapes and types llama.cpp's gguf-py read, and the same bytes it checked", () => {
  // test/fixtures/gguf/gguf-py-report.json: scripts/gen-fixtures/export-gguf.ts + check_gguf.py (gguf-py checked the
  // names against its MODEL_TENSORS and Keys tables and every tensor byte for byte against its own quantize() of the
  // safetensors source); regenerate it when the writer changes on purpose.
  const report = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'gguf', 'gguf-py-report.json'), 'utf8')) as {
    files: Record<string, { sha256: string; keys: Record<string, string>; tensors: Array<[string, number[], string]>; tokens: number; problems: string[] }>;
  };
  const gguffy = (t: string) => t.replace(/^u(\d+)$/, 'uint$1').replace(/^i(\d+)$/, 'int$1').replace(/^f(\d+)$/, 'float$1').replace(/<u(\d+)>/, '<uint$1>').replace(/<i(\d+)>/, '<int$1>').replace(/<f(\d+)>/, '<float$1>');
  for (const c of cases) {
    for (const type of TYPES) {
      const name = `${c.name}-${type}`;
      const want = report.files[name];
      assert.ok(want, `${name} is in the gguf-py report`);
      assert.deepEqual(want.problems, [], `${name}: gguf-py found problems`);
      const file = files.get(`${c.name}/${type}`)!;
      const g = readGguf(file);
      assert.deepEqual(Object.fromEntries(Object.entries(g.metadataTypes).map(([k, v]) => [k, gguffy(v)]).sort((x, y) => (x[0]! < y[0]! ? -1 : 1))), want.keys, `${name} keys`);
      assert.deepEqual(g.tensors.map((t) => [t.name, t.shape, t.typeName]), want.tensors, `${name} tensors`);
      assert.equal((g.metadata['tokenizer.ggml.tokens'] as string[]).length, want.tokens);
      assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), want.sha256, `${name}: bytes differ from those gguf-py checked`);
    }
  }
});
