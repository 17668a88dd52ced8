// exportGguf: a Hugging Face model directory (what sftkit trains and saves) -> one GGUF file that llama.cpp,
// node-llama-cpp, Ollama and LM Studio load: architecture metadata and tensors (gguf-arch.ts), the tokenizer
// (gguf-tokenizer.ts), 2-D weights in the chosen type (1-D tensors stay f32), streamed and atomic (gguf-writer.ts).
// With an adapter, the LoRA adapter is merged into its base first (through the addon, into a temporary directory).
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { loadModel, readModelConfig, resolveModelDirs, type ModelSpec } from '../native/index.ts';
import { writeFileAtomic } from '../shared/index.ts';
import { detectFormat, type RecordFormat } from '../data/index.ts';
import { defaultTemplate } from '../template/index.ts';
import { archMetadata, GGUF_ROPE_SCALINGS, gemmaSwaPeriod, ggufArchOf, planTensors, ropeScalingMetadata, type PlannedTensor } from './gguf-arch.ts';
import { FILE_TYPE_OF, GGUF_OUT_TYPES, GgmlType, Q8_0_BLOCK, str, u32, type GgufOutType, type GgufMetadata } from './gguf-format.ts';
import { tokenizerMetadata } from './gguf-tokenizer.ts';
import { writeGguf, type GgufTensor } from './gguf-writer.ts';
import { modelfileText, type ModelfileTemplate } from './modelfile.ts';
import { modelTensors, readSourceTensor } from './safetensors-source.ts';

export interface ExportGgufOptions {
  /** The type of 2-D weights: f32 (default), f16, bf16 or q8_0 (rows not a multiple of 32 values fall back to f16). */
  type?: GgufOutType;
  /** A LoRA adapter directory merged into the model first. */
  adapter?: string;
  /** Also write an Ollama `Modelfile` beside the GGUF (true, or the Modelfile's path). */
  modelfile?: boolean | string;
  /** The prompt style for the Modelfile's TEMPLATE (default: the run's `--template` from sftkit_run.json, else the tokenizer's chat template when it is ChatML or Phi-3, else none). */
  template?: ModelfileTemplate;
  /** `general.name` (default: the model directory's name). */
  name?: string;
  /** CPU threads for the adapter merge. */
  threads?: number;
}

export interface ExportGgufResult {
  out: string;
  arch: string;
  type: GgufOutType;
  tensors: number;
  bytes: number;
  modelfile?: string;
}

/** The model types whose llama.cpp tables gguf-arch.ts has (an architecture sftkit loads later is refused, not guessed). */
const GGUF_ARCHES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gpt2', 'smollm3', 'phi3', 'gemma2', 'gemma3_text'] as const;

/**
 * Why llama.cpp would compute something else than sftkit for this model (null when the GGUF has the same math).
 * llama.cpp takes some hyperparameters from its own code rather than the file, so a config that departs from them
 * is refused rather than exported with different math.
 */
export function ggufUnsupported(spec: ModelSpec): string | null {
  const arch = spec.arch;
  if (!(GGUF_ARCHES as readonly string[]).includes(arch)) return `GGUF export is not implemented for ${arch} (it is for ${GGUF_ARCHES.join(', ')})`;
  const gemma = arch === 'gemma2' || arch === 'gemma3_text';
  const exported: readonly string[] = ['default', ...GGUF_ROPE_SCALINGS];
  if (arch === 'phi3') {
    const r = spec.ropes[0];
    if (r !== undefined && r.type !== 'default' && r.type !== 'longrope') return `GGUF export of phi3 with RoPE type ${r.type} is not implemented (default and longrope are)`;
  } else if (arch === 'gemma3_text') {
    const [full, local] = spec.ropes;
    if (full !== undefined && full.type !== 'default' && full.type !== 'linear') return `GGUF export of gemma3_text with RoPE type ${full.type} on the full-attention layers is not implemented (default and linear are)`;
    if (local !== undefined && local.type !== 'default') return `GGUF export of gemma3_text with RoPE type ${local.type} on the sliding layers is not implemented (llama.cpp scales only the full-attention layers)`;
    if (spec.ropes.some((r) => r.rotaryDim !== 0)) return 'GGUF export of partial rotary dims is implemented for phi3 only';
  } else {
    const scaled = spec.ropes.find((r) => !exported.includes(r.type) || r.rotaryDim !== 0);
    if (scaled) return `GGUF export of RoPE type ${scaled.type}${scaled.rotaryDim ? ' with partial rotary dims' : ''} is not implemented for ${arch} (${exported.join(', ')} are; partial rotary and longrope for phi3)`;
  }
  if (arch === 'smollm3') {
    // llama.cpp's smollm3 leaves out RoPE on every 4th layer (n_no_rope_layer_step = 4, not read from the file).
    const want = Array.from({ length: spec.numLayers }, (_, l) => ((l + 1) % 4 === 0 ? -1 : 0));
    const have = spec.layerRope.length > 0 ? spec.layerRope : want.map(() => 0);
    if (have.some((v, l) => v !== want[l])) return `smollm3 no_rope_layers [${have.map((v) => (v < 0 ? 0 : 1)).join(', ')}] cannot be written to GGUF: llama.cpp's smollm3 always leaves out RoPE on every 4th layer (3, 7, ...)`;
  }
  if (spec.slidingWindow > 0 && !gemma) {
    return `GGUF export of sliding-window attention (sliding_window ${spec.slidingWindow}) is not implemented for ${arch}: llama.cpp's ${ggufArchOf(arch)} attends to the whole context`;
  }
  if (gemma) {
    // (query_pre_attn_scalar is folded into the queries: gguf-arch.ts's gemmaQueryFactor.)
    if (spec.slidingWindow <= 0 || !spec.slidingLayers.some(Boolean)) return `${arch} without sliding layers cannot be written to GGUF: llama.cpp's ${ggufArchOf(arch)} always has some`;
    if (gemmaSwaPeriod(spec) === null) {
      return `${arch} layer_types [${spec.slidingLayers.map((v) => (v ? 'sliding' : 'full')).join(', ')}] cannot be written to GGUF: llama.cpp's ${ggufArchOf(arch)} slides on layer l when l % n < n - 1 for one period n`;
    }
    if (arch === 'gemma2' && (spec.attnSoftcap <= 0 || spec.finalSoftcap <= 0)) return 'gemma2 without attention or final logit softcapping cannot be written to GGUF: llama.cpp always applies both';
    if (arch === 'gemma3_text' && (spec.attnSoftcap > 0 || spec.finalSoftcap > 0)) return 'gemma3_text with logit softcapping cannot be written to GGUF (llama.cpp has none for gemma3)';
  }
  return null;
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'sftkit_run.json'];

/** The ggml type of one tensor for `--type` (convert_hf_to_gguf.py's rule: 1-D tensors and norms in f32). */
export function tensorType(name: string, shape: readonly number[], type: GgufOutType): GgmlType {
  if (type === 'f32' || shape.length < 2 || name.endsWith('_norm.weight')) return GgmlType.F32;
  if (type === 'f16') return GgmlType.F16;
  if (type === 'bf16') return GgmlType.BF16;
  return shape[shape.length - 1]! % Q8_0_BLOCK === 0 ? GgmlType.Q8_0 : GgmlType.F16;
}

/** Appends `extra` copies of row `row` to the embedding and the (untied) head: the byte tokens gguf-tokenizer adds. */
function padVocabRows(plan: PlannedTensor[], extra: number, row: number): void {
  for (const p of plan) {
    if (p.name !== 'token_embd.weight' && p.name !== 'output.weight') continue;
    const [rows, cols] = p.shape as [number, number];
    const build = p.build;
    p.shape = [rows + extra, cols];
    p.build = (s) => {
      const base = build(s);
      const out = new Float32Array((rows + extra) * cols);
      out.set(base);
      const copy = base.subarray(row * cols, (row + 1) * cols);
      for (let r = rows; r < rows + extra; r++) out.set(copy, r * cols);
      return out;
    };
  }
}

/**
 * The prompt style a run trained with: sftkit_run.json's `template`, or for `auto` the default template of its data
 * format (`format`, or detected from the first record of the run's data/train.jsonl), as training resolved it; else
 * the chat template's family (ChatML, Phi-3).
 */
function detectTemplate(dir: string, chatTemplate: string | undefined): ModelfileTemplate | undefined {
  const family = (): ModelfileTemplate | undefined => {
    if (chatTemplate?.includes('<|im_start|>')) return 'chatml';
    if (chatTemplate?.includes('<|assistant|>') && chatTemplate.includes('<|end|>')) return 'phi3';
    return undefined;
  };
  const run = join(dir, 'sftkit_run.json');
  if (!existsSync(run)) return family();
  try {
    const o = (JSON.parse(readFileSync(run, 'utf8')) as { options?: { template?: unknown; format?: unknown } }).options ?? {};
    if (o.template === 'plain' || o.template === 'alpaca' || o.template === 'chatml' || o.template === 'phi3') return o.template;
    if (o.template !== undefined && o.template !== 'auto') return family();
    let format = typeof o.format === 'string' && o.format !== 'auto' ? (o.format as RecordFormat) : undefined;
    const train = join(dir, 'data', 'train.jsonl');
    if (format === undefined && existsSync(train)) {
      const first = readFileSync(train, 'utf8').split('\n', 1)[0] ?? '';
      format = detectFormat(JSON.parse(first));
    }
    if (format === undefined) return family();
    const t = defaultTemplate(format, { eosToken: '', chatTemplate });
    return t === 'model' ? family() : t;
  } catch {
    return family(); // not a run file we understand
  }
}

function checkOptions(options: ExportGgufOptions): void {
  if (options.type !== undefined && !GGUF_OUT_TYPES.includes(options.type)) throw invalidParameterError('options.type', GGUF_OUT_TYPES.join(', '), options.type);
  if (options.adapter !== undefined && (typeof options.adapter !== 'string' || options.adapter === '')) throw invalidParameterError('options.adapter', 'a directory path', options.adapter);
  if (options.template !== undefined && !['plain', 'alpaca', 'chatml', 'phi3'].includes(options.template)) {
    throw invalidParameterError('options.template', 'plain, alpaca, chatml or phi3', options.template);
  }
}

/** Merges `adapter` into `base` into a temporary directory (model + tokenizer files); the caller removes it. */
async function mergedDir(base: string, adapter: string, threads: number | undefined): Promise<string> {
  const tmp = mkdtempSync(join(tmpdir(), 'sftkit-export-'));
  try {
    const model = await loadModel(base, { adapter, device: 'cpu', ...(threads ? { threads } : {}) });
    try {
      await model.mergeAdapter();
      await model.save(tmp);
    } finally {
      await model.dispose();
    }
    const tokSource = [adapter, base].find((d) => existsSync(join(d, 'tokenizer.json'))) ?? base;
    for (const f of TOKENIZER_FILES) {
      const from = existsSync(join(adapter, f)) ? join(adapter, f) : join(tokSource, f);
      if (existsSync(from)) copyFileSync(from, join(tmp, f));
    }
    return tmp;
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Writes the model in `modelDir` (optionally with `options.adapter` merged) to `outFile` as GGUF.
 * The file is streamed (one tensor in memory at a time) and atomic; errors name the tensor.
 */
export async function exportGguf(modelDir: string, outFile: string, options: ExportGgufOptions = {}): Promise<ExportGgufResult> {
  if (typeof modelDir !== 'string' || modelDir === '') throw invalidParameterError('modelDir', 'a directory path', modelDir);
  if (typeof outFile !== 'string' || outFile === '') throw invalidParameterError('outFile', 'a file path', outFile);
  checkOptions(options);
  if (!existsSync(dirname(resolve(outFile)))) throw new SftkitError('SFTKIT_IO', `${dirname(resolve(outFile))}: the output directory does not exist`);
  const type = options.type ?? 'f32';
  let dir = modelDir;
  let tmp: string | undefined;
  if (options.adapter !== undefined) {
    const dirs = resolveModelDirs(modelDir, options.adapter);
    tmp = await mergedDir(dirs.base, options.adapter, options.threads);
    dir = tmp;
  }
  try {
    const { spec, raw } = readModelConfig(dir);
    // The GGUF carries the default RoPE, Llama 3's (rope_freqs), linear and YaRN (rope.scaling keys), phi3's longrope
    // and partial rotary, gemma's sliding layers: anything else sftkit loads is refused rather than exported with
    // different math.
    const why = ggufUnsupported(spec);
    if (why !== null) throw new SftkitError('SFTKIT_UNSUPPORTED', `${dir}: ${why}`);
    const sources = modelTensors(dir);
    const plan = planTensors(spec, raw, sources);
    const tokenizer = tokenizerMetadata(dir, spec);
    const extra = tokenizer.addedBytes ?? 0;
    if (extra > 0) padVocabRows(plan, extra, tokenizer.unkId ?? 0);
    const name = options.name ?? basename(resolve(options.adapter ?? modelDir));
    const ggufArch = ggufArchOf(spec.arch);
    // llama.cpp's vocabulary loader sets attributes of Phi-3's special tokens by text (an exception if one is missing)
    // when general.name contains "phi3" or "phi-3", whatever the architecture.
    if (/phi-?3/i.test(name)) {
      const toks = tokenizer.find(([k]) => k === 'tokenizer.ggml.tokens')?.[1];
      const have = new Set(toks?.type === 'array' ? toks.value.map(String) : []);
      const missing = ['</s>', '<unk>', '<s>', '<|endoftext|>'].filter((t) => !have.has(t));
      if (missing.length > 0) {
        throw new SftkitError('SFTKIT_BAD_ARGUMENT', `general.name ${JSON.stringify(name)}: llama.cpp fails to load a file whose name contains "phi3" or "phi-3" and whose vocabulary lacks ${missing.join(', ')}; choose another name (--name)`);
      }
    }
    const metadata: GgufMetadata = [
      ['general.architecture', str(ggufArch)],
      ['general.type', str('model')],
      ['general.name', str(name)],
      ['general.file_type', u32(FILE_TYPE_OF[type])],
      ['general.quantization_version', u32(2)],
      ...archMetadata({ ...spec, vocabSize: spec.vocabSize + extra }),
      ...ropeScalingMetadata(ggufArch, raw),
      ...tokenizer,
    ];
    const tensors: GgufTensor[] = plan.map((p) => ({
      name: p.name,
      shape: p.shape,
      type: tensorType(p.name, p.shape, type),
      values: () => p.build(p.sources.map((s) => readSourceTensor(sources.get(s)!))),
    }));
    const { bytes } = await writeGguf(outFile, metadata, tensors);
    const result: ExportGgufResult = { out: outFile, arch: ggufArch, type, tensors: tensors.length, bytes };
    if (options.modelfile) {
      const file = typeof options.modelfile === 'string' ? options.modelfile : join(dirname(outFile), 'Modelfile');
      const chat = tokenizer.find(([k]) => k === 'tokenizer.chat_template')?.[1];
      const tokens = tokenizer.find(([k]) => k === 'tokenizer.ggml.tokens')?.[1];
      const eosId = tokenizer.find(([k]) => k === 'tokenizer.ggml.eos_token_id')?.[1];
      const eosToken = tokens?.type === 'array' && eosId?.type === 'u32' ? String(tokens.value[eosId.value]) : undefined;
      const template = options.template ?? detectTemplate(modelDir, chat?.type === 'string' ? chat.value : undefined);
      let from = relative(dirname(resolve(file)), resolve(outFile));
      if (!from.startsWith('.') && !from.startsWith('/')) from = `./${from}`;
      const text = modelfileText({
        from,
        ...(template !== undefined ? { template } : {}),
        ...(eosToken !== undefined ? { eosToken } : {}),
        contextLength: spec.maxPositions,
        comment: `exported by sftkit from ${modelDir}${options.adapter ? ` + adapter ${options.adapter}` : ''} (${type})\nollama create NAME -f ${basename(file)}`,
      });
      await writeFileAtomic(file, text);
      result.modelfile = file;
    }
    return result;
  } finally {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  }
}
