// Issue 24's example: LoRA over a 3B model whose frozen base is stored in nf4 (QLoRA's NormalFloat-4, ~0.56 bytes a
// weight), on the CPU of a 24 GiB machine. The model is the bench's random-weight Qwen2.5-3B shape (3.09B parameters,
// the hub's config, BF16 shards: 6.2 GB on disk), built once into the cache if missing (~1.5 min, < 0.2 GiB of memory).
// The repo ships no Qwen tokenizer, so the run's model directory links those weights beside the GPT-2 tokenizer
// (its 50257 ids are rows of the 151936-row embedding). It trains rank-16 adapters (alpha 32) on q, k, v, o, gate,
// up and down of every layer with gradient checkpointing for a few steps on the shipped ch7 data, writes the PEFT
// adapter, and prints the peak memory of the whole process, which it checks against examples/qlora-3b/README.md's
// figure. The weights are random: the loss starts near ln(151936) = 11.9 and the point is the memory and the speed.
// Run: node --import tsx examples/qlora-3b/run.ts [OUT] [--steps 4] [--base-dtype nf4|int8|bfloat16]
//      (--weights DIR: another model directory's weights instead of the 3B's, e.g. a small stand-in to try it out)
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchModel } from '../../bench/bench-models.ts';
import { readMetrics } from '../../src/report/metrics.ts';
import { train } from '../../src/recipes/sft.ts';

const here = import.meta.dirname;
const root = join(here, '..', '..');
const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    steps: { type: 'string', default: '4' },
    'base-dtype': { type: 'string', default: 'nf4' },
    weights: { type: 'string' },
  },
});
const out = resolve(positionals[0] ?? join(root, 'runs', 'qlora-3b'));
const baseDtype = a['base-dtype'] as 'nf4' | 'int8' | 'bfloat16';
/** The most the whole process may hold (VmHWM) with nf4: README.md's measured figure, rounded up. */
const LIMIT_GIB = { nf4: 3.5, int8: 5, bfloat16: 9 }[baseDtype];

// The model: the cached random Qwen2.5-3B weights (linked, not copied) + the GPT-2 tokenizer.
const weights = a.weights ? resolve(a.weights) : benchModel('qwen2.5-3b-bf16', (m) => console.log(m));
const model = join(out, 'model');
for (const d of [model, join(out, 'run')]) rmSync(d, { recursive: true, force: true }); // a run directory left there would be resumed
mkdirSync(model, { recursive: true });
// (A weights directory with a tokenizer of its own, a real checkpoint's, keeps it: linked like the rest.)
const ownTokenizer = existsSync(join(weights, 'tokenizer.json'));
const linked = (n: string) => (n.endsWith('.safetensors') || n.endsWith('.json') || n.endsWith('.jinja')) && (ownTokenizer || !n.startsWith('tokenizer'));
for (const f of readdirSync(weights).filter(linked)) symlinkSync(join(weights, f), join(model, f));
if (!ownTokenizer) for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(root, 'test', 'fixtures', 'tokenizers', 'gpt2', f), join(model, f));

const t0 = Date.now();
const result = await train({
  model,
  data: join(root, 'test', 'fixtures', 'data', 'instruction-data.json'),
  out: join(out, 'run'),
  template: 'alpaca',
  valSplit: 0,
  testSplit: 0,
  maxSteps: Number(a.steps),
  batchSize: 2,
  maxLength: 256,
  lr: 2e-4,
  gradientCheckpointing: true,
  loraR: 16,
  loraAlpha: 32,
  loraTargets: 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj',
  baseDtype,
  seed: 1,
  logEvery: 1,
});
const seconds = (Date.now() - t0) / 1000;

const peakGiB = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 2 ** 20;
const steps = readMetrics(join(out, 'run', 'metrics.jsonl')).filter((m) => m.type === 'train');
const last = steps[steps.length - 1];
console.log(
  `\n${result.steps} steps of LoRA r16 over the Qwen2.5-3B shape with the base in ${baseDtype} in ${seconds.toFixed(0)} s (load and tokenization included); ` +
    `losses ${steps.map((m) => (m.loss as number).toFixed(3)).join(' ')}; ${Number(last?.tokensPerSec ?? NaN).toFixed(1)} tokens/s at the end; ` +
    `peak RSS of this process ${peakGiB.toFixed(2)} GiB (README: <= ${LIMIT_GIB} GiB)`,
);
const adapter = ['adapter_config.json', 'adapter_model.safetensors'].every((f) => existsSync(join(out, 'run', f)));
console.log(adapter ? `the PEFT adapter is in ${join(out, 'run')}` : 'no adapter was written');
process.exitCode = result.stopped === 'completed' && adapter && steps.every((m) => Number.isFinite(m.loss as number)) && peakGiB <= LIMIT_GIB ? 0 : 1;
