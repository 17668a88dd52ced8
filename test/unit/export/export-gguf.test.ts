// exportGguf's edges without the addon: options checked before anything is read, a model without tokenizer.json,
// a corrupt safetensors file (the error names the tensor, no file is left), the Modelfile beside the output.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { exportGguf, readGguf } from '../../../src/export/index.ts';
import { ggufUnsupported } from '../../../src/export/export-gguf.ts';
import { readModelConfig } from '../../../src/native/model-config.ts';

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

test('a sharded model (model.safetensors.index.json) exports the same file as the single-file model', async () => {
  const src = join(fixtures, 'tinystories-656k');
  const sharded = join(dir, 'sharded');
  cpSync(src, sharded, { recursive: true });
  rmSync(join(sharded, 'model.safetensors'));
  const buf = readFileSync(join(src, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + n)) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const weightMap: Record<string, string> = {};
  names.forEach((name, i) => (weightMap[name] = `model-0000${(i % 2) + 1}-of-00002.safetensors`));
  for (const shard of new Set(Object.values(weightMap))) {
    const mine = names.filter((k) => weightMap[k] === shard);
    const parts: Buffer[] = [];
    const h: Record<string, unknown> = {};
    let at = 0;
    for (const k of mine) {
      const t = header[k]!;
      const data = buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
      h[k] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + data.length] };
      parts.push(data);
      at += data.length;
    }
    const json = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    writeFileSync(join(sharded, shard), Buffer.concat([len, json, ...parts]));
  }
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  await exportGguf(src, join(dir, 'one.gguf'), { name: 'm' });
  await exportGguf(sharded, join(dir, 'two.gguf'), { name: 'm' });
  assert.ok(readFileSync(join(dir, 'one.gguf')).equals(readFileSync(join(dir, 'two.gguf'))));
});

test('safetensors source: F16 and BF16 tensors read as fp32, other dtypes refused naming the tensor', async () => {
  const { modelTensors, readSourceTensor } = await import('../../../src/export/safetensors-source.ts');
  const d = join(dir, 'halves');
  mkdirSync(d);
  const f16 = Buffer.from(Uint16Array.from([0x3c00, 0xc000, 0x3555]).buffer); // 1, -2, 0.333...
  const bf16 = Buffer.from(Uint16Array.from([0x3f80, 0xc040, 0x0000, 0x7f80]).buffer); // 1, -3, 0, inf
  const i32 = Buffer.from(Int32Array.from([7]).buffer);
  const header = JSON.stringify({
    a: { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
    b: { dtype: 'BF16', shape: [2, 2], data_offsets: [6, 14] },
    c: { dtype: 'I32', shape: [1], data_offsets: [14, 18] },
  });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(join(d, 'model.safetensors'), Buffer.concat([len, Buffer.from(header), f16, bf16, i32]));
  const t = modelTensors(d);
  assert.deepEqual(Array.from(readSourceTensor(t.get('a')!)), [1, -2, 0.333251953125]);
  assert.deepEqual(Array.from(readSourceTensor(t.get('b')!)), [1, -3, 0, Infinity]);
  assert.throws(() => readSourceTensor(t.get('c')!), /tensor c has dtype I32/);
});

test('issue 22 models whose math llama.cpp does not have (dynamic NTK, sliding windows outside gemma, NoPE layers off its rule) are refused, not exported differently', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sftkit-gguf-refuse-'));
  try {
    for (const [name, re] of [
      ['tiny-llama-dynamic', /RoPE type dynamic/],
      ['tiny-mistral', /sliding-window attention \(sliding_window 4\) is not implemented for mistral: llama\.cpp's llama attends to the whole context/],
      ['tiny-qwen2-sliding', /sliding-window attention \(sliding_window 4\) is not implemented for qwen2/],
      ['tiny-smollm3', /no_rope_layers \[1, 0, 1\] cannot be written to GGUF/],
    ] as const) {
      await assert.rejects(exportGguf(join(fixtures, name), join(dir, `${name}.gguf`)), { code: 'SFTKIT_UNSUPPORTED', message: re });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ggufUnsupported: what stays refused per architecture', () => {
  const spec = (name: string) => readModelConfig(join(fixtures, name)).spec;
  for (const name of ['tiny-gemma2', 'tiny-gemma3-text', 'tiny-phi3', 'tiny-llama', 'tiny-qwen3']) assert.equal(ggufUnsupported(spec(name)), null, name);
  const g2 = spec('tiny-gemma2');
  assert.match(ggufUnsupported({ ...g2, slidingLayers: [false, true, true] })!, /layer_types \[full, sliding, sliding\]/);
  assert.equal(ggufUnsupported({ ...g2, slidingLayers: [true, true, true] }), null, 'every layer slides: period 4 > 3 layers');
  assert.match(ggufUnsupported({ ...g2, attnSoftcap: 0 })!, /llama\.cpp always applies both/);
  assert.match(ggufUnsupported({ ...g2, slidingWindow: 0, slidingLayers: [] })!, /without sliding layers/);
  const g3 = spec('tiny-gemma3-text');
  assert.match(ggufUnsupported({ ...g3, ropes: [g3.ropes[0]!, { ...g3.ropes[1]!, type: 'linear' }] })!, /on the sliding layers/);
  assert.match(ggufUnsupported({ ...g3, ropes: [{ ...g3.ropes[0]!, type: 'dynamic' }, g3.ropes[1]!] })!, /dynamic on the full-attention layers/);
  const phi3 = spec('tiny-phi3');
  assert.match(ggufUnsupported({ ...phi3, slidingWindow: 4, slidingLayers: [true, true, true] })!, /not implemented for phi3/);
  assert.match(ggufUnsupported({ ...phi3, ropes: [{ ...phi3.ropes[0]!, type: 'yarn' }] })!, /phi3 with RoPE type yarn/);
  assert.match(ggufUnsupported({ ...spec('tiny-llama'), ropes: [{ ...phi3.ropes[0]!, type: 'default' }] })!, /partial rotary/);
  assert.equal(ggufUnsupported({ ...spec('tiny-smollm3'), layerRope: [0, 0, 0] }), null);
});
