// llama2.c import: the real stories260K becomes an HF llama directory whose weights, config and tokenizer match
// what scripts/gen-fixtures/llama2c.py verified with transformers (greedy story == SOURCE.md ids) and HF tokenizers
// (== llama2.c's own BPE). The generation test itself needs the model forward and is added with it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { convertCommand } from '../../src/cli/convert.ts';
import { convertLlama2c, permuteRope } from '../../src/convert/llama2c.ts';
import { loadSafetensors, safetensorsInfo, type LoadedTensor } from '../../src/native/safetensors.ts';

const here = dirname(fileURLToPath(import.meta.url));
const assets = join(here, '..', 'fixtures', 'models', 'stories260K');
const checkpoint = join(assets, 'stories260K.bin');
const tokenizer = join(assets, 'tok512.bin');
const golden = JSON.parse(readFileSync(join(here, '..', 'fixtures', 'llama2c', 'stories260K-hf.json'), 'utf8')) as {
  tensors: Record<string, { shape: number[]; sha256: string; sum: number }>;
  greedyFromBos: number[];
  logitsPos0: number[];
  encodings: Array<{ text: string; ids: number[]; decoded: string }>;
  fileSha256: Record<string, string>;
};
const tmp = mkdtempSync(join(tmpdir(), 'sftkit-llama2c-'));
const out = join(tmp, 'stories260K-hf');
after(() => rmSync(tmp, { recursive: true, force: true }));

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytesOf = (t: LoadedTensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

describe('convertLlama2c(stories260K)', () => {
  let tensors: Record<string, LoadedTensor>;
  before(async () => {
    const r = await convertLlama2c({ checkpoint, tokenizer, out });
    assert.equal(r.numParameters, 260032);
    tensors = await loadSafetensors(join(out, 'model.safetensors'));
  });

  test('the converted model generates the story recorded in SOURCE.md (greedy from BOS, sftkit engine)', async () => {
    const { loadModel } = await import('../../src/native/model.ts');
    const expected = (JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'llama2c', 'stories260K-hf.json'), 'utf8')) as { greedyFromBos: number[] }).greedyFromBos;
    assert.equal(expected.length, 41);
    const model = await loadModel(out);
    try {
      const [ids] = await model.generate([[1]], { maxNewTokens: expected.length - 1, temperature: 0, stopIds: [] });
      assert.deepEqual([1, ...Array.from(ids ?? [])], expected);
    } finally {
      await model.dispose();
    }
  });

  test('config.json: LlamaForCausalLM with the llama2.c hyper-parameters', () => {
    const c = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(c.architectures, ['LlamaForCausalLM']);
    assert.equal(c.model_type, 'llama');
    for (const [k, v] of Object.entries({ hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, head_dim: 8, vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2 })) {
      assert.equal(c[k], v, k);
    }
    const g = JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(g.bos_token_id, 1);
    assert.equal(g.eos_token_id, 2);
  });

  test('files are byte-identical to the ones verified with transformers / tokenizers', () => {
    for (const [file, hash] of Object.entries(golden.fileSha256)) assert.equal(sha256(readFileSync(join(out, file))), hash, file);
  });

  test('weights: HF names, shapes and bytes (q/k permuted to rotate_half) match the Python-verified tensors', () => {
    const info = safetensorsInfo(join(out, 'model.safetensors'));
    assert.deepEqual(info.metadata, { format: 'pt' });
    assert.ok(info.tensors.every((t) => t.dtype === 'F32'));
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(golden.tensors).sort());
    assert.ok(!('lm_head.weight' in tensors), 'tied: only model.embed_tokens.weight is stored');
    for (const [name, g] of Object.entries(golden.tensors)) {
      assert.deepEqual(tensors[name]!.shape, g.shape, name);
      assert.equal(sha256(bytesOf(tensors[name]!)), g.sha256, name);
    }
  });

  test('position-0 logits of a plain TS forward equal the HF logits', () => {
    // One token at position 0: RoPE is the identity and attention returns v, so the forward is a few mat-vecs.
    const C = 64, H = 172, L = 5, heads = 8, kvHeads = 4, hd = 8, V = 512;
    const w = (n: string) => tensors[n]!.data as Float32Array;
    const matvec = (m: Float32Array, x: Float64Array, rows: number, cols: number) => {
      const y = new Float64Array(rows);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += m[r * cols + c]! * x[c]!;
        y[r] = s;
      }
      return y;
    };
    const rms = (x: Float64Array, g: Float32Array) => {
      const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
      const inv = 1 / Math.sqrt(ms + 1e-5);
      return x.map((v, i) => v * inv * g[i]!);
    };
    const emb = w('model.embed_tokens.weight');
    let x = Float64Array.from(emb.subarray(1 * C, 2 * C));
    for (let l = 0; l < L; l++) {
      const p = `model.layers.${l}`;
      const v = matvec(w(`${p}.self_attn.v_proj.weight`), rms(x, w(`${p}.input_layernorm.weight`)), kvHeads * hd, C);
      const att = new Float64Array(C);
      for (let h = 0; h < heads; h++) for (let i = 0; i < hd; i++) att[h * hd + i] = v[Math.floor(h / (heads / kvHeads)) * hd + i]!;
      const o = matvec(w(`${p}.self_attn.o_proj.weight`), att, C, C);
      x = x.map((a, i) => a + o[i]!);
      const xn = rms(x, w(`${p}.post_attention_layernorm.weight`));
      const gate = matvec(w(`${p}.mlp.gate_proj.weight`), xn, H, C);
      const up = matvec(w(`${p}.mlp.up_proj.weight`), xn, H, C);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      const down = matvec(w(`${p}.mlp.down_proj.weight`), act, C, H);
      x = x.map((a, i) => a + down[i]!);
    }
    const logits = matvec(emb, rms(x, w('model.norm.weight')), V, C);
    assert.equal(golden.logitsPos0.length, V);
    let maxErr = 0;
    logits.forEach((z, i) => (maxErr = Math.max(maxErr, Math.abs(z - golden.logitsPos0[i]!))));
    assert.ok(maxErr < 1e-4, `max |logit - HF| = ${maxErr}`);
    const argmax = logits.indexOf(Math.max(...logits));
    assert.equal(argmax, golden.greedyFromBos[1]);
  });

  test('tokenizer.json encodes like llama2.c (HF BPE semantics: lowest merge rank first, byte fallback)', () => {
    const tj = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number>; merges: string[]; byte_fallback: boolean };
      added_tokens: Array<{ id: number; content: string; special: boolean }>;
    };
    assert.equal(tj.model.byte_fallback, true);
    assert.deepEqual(tj.added_tokens.map((t) => [t.id, t.content, t.special]), [[0, '<unk>', true], [1, '<s>', true], [2, '</s>', true]]);
    assert.equal(Object.keys(tj.model.vocab).length, 512);
    const rank = new Map(tj.model.merges.map((m, i) => [m, i]));
    const encode = (text: string): number[] => {
      if (text === '') return [];
      const norm = '\u2581' + text.replaceAll(' ', '\u2581');
      let syms: string[] = [];
      for (const ch of norm) {
        if (ch in tj.model.vocab) syms.push(ch);
        else for (const b of Buffer.from(ch, 'utf8')) syms.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
      }
      for (;;) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i + 1 < syms.length; i++) {
          const r = rank.get(`${syms[i]} ${syms[i + 1]}`);
          if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
        }
        if (best < 0) break;
        syms = [...syms.slice(0, best), syms[best]! + syms[best + 1]!, ...syms.slice(best + 2)];
      }
      return syms.map((s) => tj.model.vocab[s]!);
    };
    for (const e of golden.encodings) assert.deepEqual(encode(e.text), e.ids, JSON.stringify(e.text));
  });
});

describe('llama2.c import errors and helpers', () => {
  test('permuteRope moves interleaved pairs (2i, 2i+1) to rotate_half halves (i, i + hd/2)', () => {
    const rows = Float32Array.from({ length: 8 }, (_, i) => i); // 2 heads x hd 4, 1 column
    assert.deepEqual(Array.from(permuteRope(rows, 2, 4, 1)), [0, 2, 1, 3, 4, 6, 5, 7]);
  });

  test('a truncated checkpoint, a mismatched tokenizer and missing files are SFTKIT_IO', async () => {
    const bad = join(tmp, 'truncated.bin');
    writeFileSync(bad, readFileSync(checkpoint).subarray(0, 5000));
    await assert.rejects(convertLlama2c({ checkpoint: bad, tokenizer, out: join(tmp, 'x') }), (e: unknown) => (e as { code?: string }).code === 'SFTKIT_IO' && /describes 1056540 bytes/.test((e as Error).message));
    const badTok = join(tmp, 'tok.bin');
    writeFileSync(badTok, readFileSync(tokenizer).subarray(0, 3000));
    await assert.rejects(convertLlama2c({ checkpoint, tokenizer: badTok, out: join(tmp, 'y') }), (e: unknown) => (e as { code?: string }).code === 'SFTKIT_IO' && /not a llama2.c tokenizer/.test((e as Error).message));
    await assert.rejects(convertLlama2c({ checkpoint: join(tmp, 'nope.bin'), tokenizer, out: join(tmp, 'z') }), (e: unknown) => (e as { code?: string }).code === 'SFTKIT_IO');
    await assert.rejects(convertLlama2c({ checkpoint, tokenizer, out: '' }), (e: unknown) => (e as { code?: string }).code === 'SFTKIT_BAD_ARGUMENT');
    assert.ok(!existsSync(join(tmp, 'x')) && !existsSync(join(tmp, 'y')), 'nothing written on failure');
  });
});

describe('sftkit convert (CLI)', () => {
  const io = () => {
    const chunks = { stdout: '', stderr: '' };
    const stream = (k: 'stdout' | 'stderr') => new Writable({ write(c, _e, cb) { chunks[k] += String(c); cb(); } });
    return { io: { stdout: stream('stdout'), stderr: stream('stderr') }, chunks };
  };

  test('--from llama2c writes the directory', async () => {
    const { io: cli, chunks } = io();
    const dir = join(tmp, 'cli-out');
    const code = await convertCommand.run(['--from', 'llama2c', '--checkpoint', checkpoint, '--tokenizer', tokenizer, '--out', dir], cli);
    assert.equal(code, 0, chunks.stderr);
    assert.match(chunks.stdout, /260,032 parameters/);
    assert.equal(sha256(readFileSync(join(dir, 'tokenizer.json'))), golden.fileSha256['tokenizer.json']);
  });

  test('usage errors: missing options and an unknown source name the flags (SFTKIT_BAD_ARGUMENT), unknown flag (throws ERR_PARSE_ARGS_*)', async () => {
    await assert.rejects(
      convertCommand.run(['--from', 'llama2c', '--out', tmp], io().io),
      (e: Error & { code?: string }) => e.code === 'SFTKIT_BAD_ARGUMENT' && /Missing required convert options --checkpoint, --tokenizer/.test(e.message),
    );
    await assert.rejects(
      convertCommand.run(['--from', 'gguf', '--checkpoint', 'a', '--tokenizer', 'b', '--out', 'c'], io().io),
      (e: Error & { code?: string }) => e.code === 'SFTKIT_BAD_ARGUMENT' && /Expected one of 'llama2c' for --from but received "gguf"/.test(e.message),
    );
    await assert.rejects(convertCommand.run(['--bogus'], io().io), (e: unknown) => String((e as { code?: string }).code).startsWith('ERR_PARSE_ARGS'));
    const r = io();
    assert.equal(await convertCommand.run(['--help'], r.io), 0);
    assert.match(r.chunks.stdout, /Usage: sftkit convert --from llama2c/);
  });
});
