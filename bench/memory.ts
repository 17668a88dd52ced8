// Memory of activation checkpointing and LoRA: `sftkit bench train` with and without --gradient-checkpointing and
// --lora-r, each configuration in its own process (peak RSS is a per-process high-water mark). Prints one JSON
// object per configuration: the options, then bench train's keys.
//   node --import tsx bench/memory.ts [--model gpt2-124m] [--shapes 4x256,1x1024] [--steps 2] [--warmup 1] [--threads 1]
//                                    [--lora-r 8] [--modes full,lora]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'gpt2-124m' },
    shapes: { type: 'string', default: '4x256,1x1024' },
    steps: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '1' },
    modes: { type: 'string', default: 'full,lora' },
    threads: { type: 'string', default: '1' },
    'lora-r': { type: 'string', default: '8' },
  },
});
const bin = join(import.meta.dirname, '..', 'bin', 'sftkit.js');
for (const shape of values.shapes.split(',')) {
  const [B, T] = shape.split('x');
  for (const lora of values.modes.split(',').map((m) => m === 'lora')) {
    for (const checkpointing of [false, true]) {
      const args = ['bench', 'train', '--model', values.model, '--batch-size', B!, '--seq-len', T!, '--steps', values.steps, '--warmup', values.warmup, '--threads', values.threads, '--json'];
      if (checkpointing) args.push('--gradient-checkpointing');
      if (lora) args.push('--lora-r', values['lora-r']);
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.status !== 0) throw new Error(`sftkit ${args.join(' ')} failed (${r.status})`);
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
      const config = { model: values.model, batch: Number(B), seq: Number(T), gradientCheckpointing: checkpointing, loraR: lora ? Number(values['lora-r']) : 0 };
      process.stdout.write(`${JSON.stringify({ ...config, ...result })}\n`);
    }
  }
}
