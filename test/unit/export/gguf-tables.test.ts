// The pure parts of the GGUF export: layout changes (llama q/k RoPE permutation, GPT-2 Conv1D transpose), tensor
// plans per architecture (names, tied heads), hyperparameter keys, the type rule of --type, Llama 3 rope_freqs, and
// the tokenizer's keys (model, pre-tokenizer, token types, scores, special ids) on real tokenizers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { archMetadata, gemmaQueryFactor, gemmaSwaPeriod, ggufArchOf, llama3RopeFactors, permuteRope, planTensors, ropeScalingMetadata, transpose2d } from '../../../src/export/gguf-arch.ts';
import { GgmlType, TokenType } from '../../../src/export/gguf-format.ts';
import { ggufVocab, preTokenizerName, tokenizerMetadata } from '../../../src/export/gguf-tokenizer.ts';
import { tensorType } from '../../../src/export/export-gguf.ts';
import { modelTensors } from '../../../src/export/safetensors-source.ts';
import { readModelConfig } from '../../../src/native/model-config.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');
const model = (name: string) => join(fixtures, 'models', name);

test('permuteRope: rotate-half rows (per head: first halves, then second halves) become interleaved pairs', () => {
  // 2 heads of size 4, 1 column: head h rows [a0 a1 b0 b1] -> [a0 b0 a1 b1]
  const w = Float32Array.from([10, 11, 20, 21, 30, 31, 40, 41]);
  assert.deepEqual(Array.from(permuteRope(w, 2, 1)), [10, 20, 11, 21, 30, 40, 31, 41]);
  // columns travel with their row
  const m = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // 4 rows x 2 cols, 1 head
  assert.deepEqual(Array.from(permuteRope(m, 1, 2)), [1, 2, 5, 6, 3, 4, 7, 8]);
  assert.throws(() => permuteRope(new Float32Array(6), 2, 1), /even size/);
});

test('transpose2d', () => {
  assert.deepEqual(Array.from(transpose2d(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3)), [1, 4, 2, 5, 3, 6]);
});

test('plans: llama.cpp names per architecture, tied heads, GPT-2 transposes, every source tensor used', () => {
  const plan = (name: string) => {
    const { spec, raw } = readModelConfig(model(name));
    return planTensors(spec, raw, modelTensors(model(name)));
  };
  const ts = plan('tinystories-656k');
  assert.deepEqual(ts.slice(0, 2).map((t) => t.name), ['token_embd.weight', 'blk.0.attn_norm.weight']);
  assert.deepEqual(ts[0]!.sources, ['lm_head.weight'], 'tied, stored as lm_head only: the embedding');
  assert.equal(ts.some((t) => t.name === 'output.weight'), false);
  assert.deepEqual(ts.filter((t) => t.name.startsWith('blk.1.')).map((t) => t.name), [
    'blk.1.attn_norm.weight', 'blk.1.attn_q.weight', 'blk.1.attn_k.weight', 'blk.1.attn_v.weight', 'blk.1.attn_output.weight',
    'blk.1.ffn_norm.weight', 'blk.1.ffn_gate.weight', 'blk.1.ffn_up.weight', 'blk.1.ffn_down.weight',
  ]);
  const gpt2 = plan('tiny-gpt2');
  const qkv = gpt2.find((t) => t.name === 'blk.0.attn_qkv.weight')!;
  assert.deepEqual(qkv.shape, [96, 32], 'Conv1D [in, out] -> [out, in]');
  assert.deepEqual(gpt2.slice(-3).map((t) => [t.name, t.sources]), [
    ['output_norm.weight', ['transformer.ln_f.weight']],
    ['output_norm.bias', ['transformer.ln_f.bias']],
    ['output.weight', ['transformer.wte.weight']],
  ]);
  assert.ok(gpt2.some((t) => t.name === 'position_embd.weight'));
  const qwen2 = plan('tiny-qwen2');
  assert.ok(qwen2.some((t) => t.name === 'blk.0.attn_q.bias'));
  assert.equal(qwen2.at(-1)!.name, 'output.weight');
  const qwen3 = plan('tiny-qwen3');
  assert.ok(qwen3.some((t) => t.name === 'blk.1.attn_k_norm.weight'));
  const q = qwen3.find((t) => t.name === 'blk.0.attn_q.weight')!;
  const v = Float32Array.from({ length: 64 * 32 }, (_, i) => i);
  assert.equal(q.build([v]), v, 'qwen: NEOX RoPE in llama.cpp, no permutation');
  const { spec, raw } = readModelConfig(model('tiny-qwen3'));
  const extra = new Map([...modelTensors(model('tiny-qwen3'))].map(([k, t]) => [k, t] as const));
  extra.set('model.layers.0.self_attn.mystery.weight', { ...extra.get('model.norm.weight')!, name: 'model.layers.0.self_attn.mystery.weight' });
  assert.throws(() => planTensors(spec, raw, extra), /mystery\.weight has no GGUF counterpart/);
});

test('hyperparameter keys', () => {
  const md = Object.fromEntries(archMetadata(readModelConfig(model('tiny-qwen3')).spec).map(([k, v]) => [k, v.value]));
  assert.deepEqual(md, {
    'qwen3.vocab_size': 128, 'qwen3.context_length': 64, 'qwen3.embedding_length': 32, 'qwen3.block_count': 2,
    'qwen3.feed_forward_length': 64, 'qwen3.attention.head_count': 4, 'qwen3.attention.head_count_kv': 2,
    'qwen3.rope.freq_base': 1000000, 'qwen3.attention.layer_norm_rms_epsilon': 1e-6, 'qwen3.rope.dimension_count': 16,
    'qwen3.attention.key_length': 16, 'qwen3.attention.value_length': 16,
  });
  const g = Object.fromEntries(archMetadata(readModelConfig(model('tiny-gpt2')).spec).map(([k, v]) => [k, v.value]));
  assert.equal(g['gpt2.attention.layer_norm_epsilon'], 1e-5);
  assert.equal(g['gpt2.feed_forward_length'], 128);
});

test('--type: 1-D tensors and norms stay f32; q8_0 falls back to f16 for rows not a multiple of 32', () => {
  assert.equal(tensorType('blk.0.attn_q.weight', [64, 32], 'f32'), GgmlType.F32);
  assert.equal(tensorType('blk.0.attn_q.weight', [64, 32], 'f16'), GgmlType.F16);
  assert.equal(tensorType('blk.0.attn_q.weight', [64, 32], 'bf16'), GgmlType.BF16);
  assert.equal(tensorType('blk.0.attn_q.weight', [64, 32], 'q8_0'), GgmlType.Q8_0);
  assert.equal(tensorType('blk.0.ffn_down.weight', [64, 172], 'q8_0'), GgmlType.F16);
  assert.equal(tensorType('blk.0.attn_q.bias', [64], 'q8_0'), GgmlType.F32);
  assert.equal(tensorType('blk.0.attn_norm.weight', [64], 'bf16'), GgmlType.F32);
});

test('Llama 3 RoPE scaling -> rope_freqs factors (convert_hf_to_gguf.py formula)', () => {
  const raw = { rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } };
  const f = llama3RopeFactors(raw, 128, 500000)!;
  assert.equal(f.length, 64);
  assert.equal(f[0], 1, 'high frequencies unscaled');
  assert.equal(f[63], 8, 'low frequencies scaled by factor');
  for (const x of f) assert.ok(x >= 1 && x <= 8);
  for (let i = 1; i < f.length; i++) assert.ok(f[i]! >= f[i - 1]!, 'monotone');
  // one smooth value by hand: i where 2048 <= wavelen <= 8192
  const i = f.findIndex((x) => x > 1 && x < 8);
  const freq = 1 / 500000 ** ((2 * i) / 128);
  const smooth = (8192 / ((2 * Math.PI) / freq) - 1) / 3;
  assert.ok(Math.abs(f[i]! - 1 / ((1 - smooth) / 8 + smooth)) < 1e-3);
  assert.equal(llama3RopeFactors({ rope_scaling: null }, 128, 1e4), null);
});

test('tokenizer: TinyStories-656K is a llama (SentencePiece-style) vocabulary with byte tokens, scores from merge ranks', () => {
  const { spec } = readModelConfig(model('tinystories-656k'));
  const md = Object.fromEntries(tokenizerMetadata(model('tinystories-656k'), spec).map(([k, v]) => [k, v.value]));
  assert.equal(md['tokenizer.ggml.model'], 'llama');
  assert.equal(md['tokenizer.ggml.pre'], undefined);
  const tokens = md['tokenizer.ggml.tokens'] as string[];
  const types = md['tokenizer.ggml.token_type'] as number[];
  const scores = md['tokenizer.ggml.scores'] as number[];
  // no <0xNN> tokens in its vocabulary: all 256 are appended (llama.cpp aborts on characters it cannot spell)
  assert.equal(tokens.length, 2048 + 256);
  assert.equal(md['llama.vocab_size'], undefined);
  assert.deepEqual(tokens.slice(0, 3), ['<unk>', '<|start_story|>', '<|end_story|>']);
  assert.deepEqual(types.slice(0, 3), [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]);
  assert.deepEqual(tokens.slice(2048, 2050), ['<0x00>', '<0x01>']);
  assert.equal(tokens[2048 + 0x23], '<0x23>');
  assert.equal(types.filter((t) => t === TokenType.BYTE).length, 256);
  assert.ok(types.slice(2048).every((t) => t === TokenType.BYTE));
  const tj = JSON.parse(readFileSync(join(model('tinystories-656k'), 'tokenizer.json'), 'utf8'));
  const [a, b] = (tj.model.merges[0] as string).split(' ');
  assert.equal(scores[tokens.indexOf(`${a}${b}`)], -1, 'the first merge scores highest');
  assert.equal(md['tokenizer.ggml.bos_token_id'], 1);
  assert.equal(md['tokenizer.ggml.eos_token_id'], 2);
  assert.equal(md['tokenizer.ggml.unknown_token_id'], 0);
  assert.equal(md['tokenizer.ggml.padding_token_id'], 0);
  assert.equal(md['tokenizer.ggml.add_bos_token'], true);
  assert.equal(md['tokenizer.ggml.add_eos_token'], false);
  assert.equal(md['tokenizer.ggml.add_space_prefix'], true);
});

test('tokenizer: GPT-2 and a Qwen-style (MiniMind) byte-level BPE: merges, pre-tokenizer, control tokens, padding to the model vocabulary', () => {
  const gpt2 = JSON.parse(readFileSync(join(fixtures, 'tokenizers', 'gpt2', 'tokenizer.json'), 'utf8'));
  const v = ggufVocab(gpt2, 50304, 'gpt2');
  assert.equal(v.model, 'gpt2');
  assert.equal(v.pre, 'gpt-2');
  assert.equal(v.merges!.length, 50000);
  assert.equal(v.merges![0], [gpt2.model.merges[0]].flat().join(' '), 'merges as "a b" strings');
  assert.equal(v.types[50256], TokenType.CONTROL);
  assert.equal(v.tokens[50300], '[PAD50300]');
  assert.equal(v.types[50300], TokenType.UNUSED);
  assert.equal(v.types[100], TokenType.NORMAL);
  assert.throws(() => ggufVocab(gpt2, 50000, 'gpt2'), /outside the model's vocabulary of 50000/);
  const qwenSplit = { pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } }, { type: 'ByteLevel', use_regex: false }] } };
  assert.equal(preTokenizerName(qwenSplit, 'qwen2'), 'qwen2');
  const llama3 = JSON.parse(JSON.stringify(qwenSplit).replace('\\\\p{N}|', '\\\\p{N}{1,3}|'));
  assert.equal(preTokenizerName(llama3, 'llama'), 'llama-bpe');
  assert.equal(preTokenizerName({ pre_tokenizer: null }, 'llama'), 'default');
  const mm = JSON.parse(readFileSync(join(fixtures, 'tokenizers', 'minimind', 'tokenizer.json'), 'utf8'));
  const m = ggufVocab(mm, 6400, 'qwen2');
  assert.equal(m.model, 'gpt2');
  assert.equal(m.types[m.tokens.indexOf('<|im_end|>')], TokenType.CONTROL);
  assert.throws(() => ggufVocab({ model: { type: 'WordPiece', vocab: {} } }, 10, 'llama'), /BPE only/);
});

test('RoPE scaling keys: linear and YaRN as metadata, Llama 3 as a tensor, dynamic NTK refused', () => {
  const md = (raw: Record<string, unknown>) => Object.fromEntries(ropeScalingMetadata('llama', raw).map(([k, v]) => [k, v.value]));
  assert.deepEqual(md({ rope_parameters: { rope_type: 'linear', factor: 4, rope_theta: 1e4 } }), { 'llama.rope.scaling.type': 'linear', 'llama.rope.scaling.factor': 4 });
  assert.deepEqual(md({ rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 64 }, max_position_embeddings: 256 }), {
    'llama.rope.scaling.type': 'yarn', 'llama.rope.scaling.factor': 4, 'llama.rope.scaling.original_context_length': 64,
  });
  assert.deepEqual(md({ rope_parameters: { rope_type: 'llama3', factor: 8 } }), {});
  assert.deepEqual(md({ rope_parameters: { rope_type: 'default', rope_theta: 1e4 } }), {});
  assert.throws(() => md({ rope_parameters: { rope_type: 'dynamic', factor: 4 } }), /RoPE scaling "dynamic" cannot be written to GGUF/);
});

test("issue 22's architectures: llama.cpp names (mistral as llama, gemma3_text as gemma3), fused phi3 tensors, gemma's four norms with the +1 baked in", () => {
  const plan = (name: string) => {
    const { spec, raw } = readModelConfig(model(name));
    return { spec, plan: planTensors(spec, raw, modelTensors(model(name))) };
  };
  assert.equal(ggufArchOf('mistral'), 'llama');
  assert.equal(ggufArchOf('gemma3_text'), 'gemma3');
  assert.equal(ggufArchOf('phi3'), 'phi3');
  const mistral = plan('tiny-mistral').plan;
  const q = mistral.find((t) => t.name === 'blk.0.attn_q.weight')!;
  const v = Float32Array.from({ length: 32 * 32 }, (_, i) => i);
  assert.notDeepEqual(Array.from(q.build([v])), Array.from(v), 'mistral is written as llama: q rows permuted');
  const smol = plan('tiny-smollm3').plan;
  assert.notDeepEqual(Array.from(smol.find((t) => t.name === 'blk.0.attn_q.weight')!.build([v])), Array.from(v), 'smollm3: NORM RoPE, permuted');
  assert.ok(!smol.some((t) => t.name === 'output.weight'), 'smollm3 ties its head');
  const phi3 = plan('tiny-phi3').plan;
  assert.deepEqual(phi3.slice(0, 3).map((t) => [t.name, t.shape]), [['token_embd.weight', [128, 32]], ['rope_factors_long.weight', [4]], ['rope_factors_short.weight', [4]]]);
  assert.deepEqual(Array.from(phi3[1]!.build([])), [1, 1.5, 4, 8]);
  assert.deepEqual(phi3.filter((t) => t.name.startsWith('blk.0.')).map((t) => t.name), [
    'blk.0.attn_norm.weight', 'blk.0.attn_output.weight', 'blk.0.ffn_norm.weight', 'blk.0.attn_qkv.weight', 'blk.0.ffn_up.weight', 'blk.0.ffn_down.weight',
  ]);
  const qkv = phi3.find((t) => t.name === 'blk.0.attn_qkv.weight')!;
  assert.equal(qkv.build([v]), v, 'phi3: NEOX RoPE, fused qkv as stored');
  for (const name of ['tiny-gemma2', 'tiny-gemma3-text']) {
    const { spec, plan: g } = plan(name);
    const blk = g.filter((t) => t.name.startsWith('blk.0.')).map((t) => t.name);
    for (const n of ['attn_norm', 'post_attention_norm', 'ffn_norm', 'post_ffw_norm']) assert.ok(blk.includes(`blk.0.${n}.weight`), `${name} ${n}`);
    assert.ok(!g.some((t) => t.name === 'output.weight'));
    const norm = g.find((t) => t.name === 'output_norm.weight')!;
    assert.deepEqual(Array.from(norm.build([Float32Array.from([0, 0.5])])), [1, 1.5], 'Gemma RMSNorm (1 + w)');
    // query_pre_attn_scalar 12 with head_dim 16: the queries carry sqrt(16 / 12).
    assert.ok(Math.abs(gemmaQueryFactor(spec) - Math.sqrt(16 / 12)) < 1e-12);
    assert.equal(gemmaSwaPeriod(spec), 2, 'layer_types [sliding, full, sliding]');
    assert.equal(gemmaSwaPeriod({ ...spec, slidingLayers: [true, true, false] }), 3);
    assert.equal(gemmaSwaPeriod({ ...spec, slidingLayers: [true, true, true] }), 4, 'all sliding: a period longer than the model');
    assert.equal(gemmaSwaPeriod({ ...spec, slidingLayers: [false, true, true] }), null);
  }
  const g2 = plan('tiny-gemma2').plan;
  const c = Math.sqrt(16 / 12);
  assert.ok(Math.abs(g2.find((t) => t.name === 'blk.0.attn_q.weight')!.build([Float32Array.from([2])])[0]! - 2 * c) < 1e-6, 'gemma2: q_proj scaled');
  const g3 = plan('tiny-gemma3-text').plan;
  assert.ok(Math.abs(g3.find((t) => t.name === 'blk.0.attn_q_norm.weight')!.build([Float32Array.from([1])])[0]! - 2 * c) < 1e-6, 'gemma3: (1 + q_norm) scaled');
  assert.equal(g3.find((t) => t.name === 'blk.0.attn_k_norm.weight')!.build([Float32Array.from([1])])[0], 2);
});

test("issue 22's architectures: hyperparameter keys (softcapping, sliding window and pattern, SWA RoPE base, partial rotary, longrope)", () => {
  const md = (name: string) => Object.fromEntries(archMetadata(readModelConfig(model(name)).spec).map(([k, v]) => [k, v.value]));
  const g2 = md('tiny-gemma2');
  assert.equal(g2['gemma2.attention.sliding_window'], 4);
  assert.equal(g2['gemma2.attention.sliding_window_pattern'], 2);
  assert.ok(Math.abs((g2['gemma2.attn_logit_softcapping'] as number) - 5) < 1e-6 && Math.abs((g2['gemma2.final_logit_softcapping'] as number) - 3) < 1e-6);
  assert.equal(g2['gemma2.attention.key_length'], 16);
  const g3 = md('tiny-gemma3-text');
  assert.equal(g3['gemma3.rope.freq_base'], 1e6);
  assert.equal(g3['gemma3.rope.freq_base_swa'], 1e4);
  assert.equal(g3['gemma3.rope.scaling.type'], 'linear');
  assert.equal(g3['gemma3.rope.scaling.factor'], 4);
  assert.equal(g3['gemma3.attention.sliding_window_pattern'], 2);
  assert.equal(g3['gemma3.final_logit_softcapping'], undefined);
  const p = md('tiny-phi3');
  assert.equal(p['phi3.rope.dimension_count'], 8);
  assert.equal(p['phi3.attention.key_length'], 16);
  assert.equal(p['phi3.attention.sliding_window'], 0);
  assert.equal(p['phi3.rope.scaling.original_context_length'], 8);
  assert.ok(Math.abs((p['phi3.rope.scaling.attn_factor'] as number) - Math.SQRT2) < 1e-6);
  assert.equal(md('tiny-mistral')['llama.attention.head_count_kv'], 2);
  assert.equal(md('tiny-smollm3')['smollm3.block_count'], 3);
  assert.deepEqual(ropeScalingMetadata('phi3', readModelConfig(model('tiny-phi3')).raw), []);
});
