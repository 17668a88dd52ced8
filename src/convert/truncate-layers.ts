// A smaller student from a model directory: its first N decoder layers (embeddings, final norm and LM head kept),
// the same tokenizer files, config.json with the new layer count. A starting point for distillation that shares the
// teacher's tokenizer (logit-level KD needs that) and is not random.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SftkitError, invalidParameterError } from '../errors.ts';
import { configText, loadSafetensorsDir, readModelConfig, saveSafetensors, type TensorToSave } from '../native/index.ts';

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'];
/** The decoder-layer index in a Hugging Face parameter name (`model.layers.3.`, GPT-2's `transformer.h.3.`). */
const LAYER = /(?:^|\.)(?:layers|h)\.(\d+)\./;

export async function truncateLayers(from: string, to: string, layers: number): Promise<{ layers: number; parameters: number; sourceParameters: number }> {
  let config: Record<string, unknown>;
  try {
    config = readModelConfig(from).raw; // keeps the float literals of config.json on write (configText)
  } catch {
    config = JSON.parse(readFileSync(join(from, 'config.json'), 'utf8')) as Record<string, unknown>;
  }
  const key = 'num_hidden_layers' in config ? 'num_hidden_layers' : 'n_layer' in config ? 'n_layer' : undefined;
  if (key === undefined) throw new SftkitError('SFTKIT_UNSUPPORTED', `${join(from, 'config.json')}: no num_hidden_layers or n_layer`);
  const total = config[key] as number;
  if (!Number.isInteger(layers) || layers < 1 || layers > total) throw invalidParameterError('layers', `an integer in [1, ${total}]`, layers);
  const { tensors, metadata } = await loadSafetensorsDir(from);
  const kept: TensorToSave[] = [];
  let parameters = 0;
  let sourceParameters = 0;
  for (const [name, t] of Object.entries(tensors)) {
    sourceParameters += t.data.length;
    const m = LAYER.exec(name);
    if (m && Number(m[1]) >= layers) continue;
    kept.push({ name, data: t.data, shape: t.shape, dtype: t.dtype });
    parameters += t.data.length;
  }
  mkdirSync(to, { recursive: true });
  await saveSafetensors(join(to, 'model.safetensors'), kept, { ...metadata, format: 'pt' });
  // Per-layer lists (layer_types, SmolLM3's no_rope_layers) keep the kept layers' entries.
  const patch: Record<string, unknown> = { [key]: layers };
  for (const k of ['layer_types', 'no_rope_layers']) if (Array.isArray(config[k])) patch[k] = (config[k] as unknown[]).slice(0, layers);
  writeFileSync(join(to, 'config.json'), configText(config, patch));
  for (const f of TOKENIZER_FILES) if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
  return { layers, parameters, sourceParameters };
}
