// Child-process batch of the safetensors fuzz cases: exits 0 when every case loads or throws SFTKIT_IO
// (a native crash would end the process with a signal instead). Usage: node --import tsx this.ts FIRST COUNT DIR
import { join } from 'node:path';
import { mutate, runCase } from './safetensors-fuzz.ts';

const [first, count, dir] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] as string];
let ok = 0;
let errors = 0;
for (let seed = first; seed < first + count; seed++) {
  const { bytes } = mutate(seed);
  if ((await runCase(join(dir, `child-${seed}.safetensors`), bytes)) === 'ok') ok++;
  else errors++;
}
process.stdout.write(JSON.stringify({ ok, errors }) + '\n');
