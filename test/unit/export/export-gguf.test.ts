// exportGguf's edges without the addon: options checked before anything is read, a model without tokenizer.json,
// a corrupt safetensors file (the error names the tensor, no file is left), the Modelfile beside the output.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportGguf, readGguf } from '../../../src/export/index.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'models');
const dir = mkdtempSync(join(tmpdir(), 'sftkit-export-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('options are validated first', async () => {
  await assert.rejects(exportGguf(join(fixtures, 'tinystories-656k'), join(dir, 'x.gguf'), { type: 'q4_0' as 'f32' }), { code: 'SFTKIT_BAD_ARGUMENT', message: /options\.type/ });
  await assert.rejects(exportGguf(join(fixtures, 'tinystories-656k'), join(dir, 'no', 'such', 'x.gguf')), /output directory does not exist/);
  await assert.rejects(exportGguf('', join(dir, 'x.gguf')), /modelDir/);
});

test('a model without tokenizer.json is refused: GGUF runtimes need the tokenizer inside', async () => {
  await assert.rejects(exportGguf(join(fixtures, 'tiny-qwen3'), join(dir, 'q.gguf')), { code: 'SFTKIT_IO', message: /no tokenizer\.json/ });
  assert.equal(existsSync(join(dir, 'q.gguf')), false);
});

test('a truncated safetensors file: the error names the tensor and no file is left', async () => {
  const model = join(dir, 'broken');
  cpSync(join(fixtures, 'tinystories-656k'), model, { recursive: true });
  const st = join(model, 'model.safetensors');
  truncateSync(st, statSync(st).size - 1000);
  const out = join(dir, 'broken.gguf');
  await assert.rejects(exportGguf(model, out), (e: Error) => /tensor [\w.]+ \(F32, shape \[\d+(,\d+)*\]\): .*truncated/.test(e.message));
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('broken.gguf')), []);
});

test('TinyStories-656K: f32 export with a Modelfile beside it (no run file, no chat template: no TEMPLATE)', async () => {
  const out = join(dir, 'ts.gguf');
  const r = await exportGguf(join(fixtures, 'tinystories-656k'), out, { modelfile: true, name: 'tiny stories' });
  assert.equal(r.arch, 'llama');
  assert.equal(r.tensors, 20);
  const g = readGguf(out);
  assert.equal(g.fileBytes, r.bytes);
  assert.equal(g.metadata['general.name'], 'tiny stories');
  assert.equal(g.metadata['general.architecture'], 'llama');
  assert.equal(g.metadata['llama.vocab_size'], 2048 + 256);
  assert.deepEqual(g.tensors.find((t) => t.name === 'token_embd.weight')!.shape, [2048 + 256, 128]);
  const modelfile = readFileSync(join(dir, 'Modelfile'), 'utf8');
  assert.match(modelfile, /^FROM \.\/ts\.gguf$/m);
  assert.doesNotMatch(modelfile, /^TEMPLATE/m);
  assert.match(modelfile, /^PARAMETER num_ctx 512$/m);
  const q = await exportGguf(join(fixtures, 'tinystories-656k'), join(dir, 'ts-q8.gguf'), { type: 'q8_0', modelfile: join(dir, 'Q8.Modelfile'), template: 'alpaca' });
  assert.equal(q.modelfile, join(dir, 'Q8.Modelfile'));
  assert.match(readFileSync(q.modelfile, 'utf8'), /^TEMPLATE """.*Below is an instruction/m);
  assert.equal(readGguf(join(dir, 'ts-q8.gguf')).metadata['general.file_type'], 7);
});
