// A second model of a run (the distillation teacher, the DPO reference) checked against --model's tokenizer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SftkitError } from '../errors.ts';

/**
 * A second model of a run (`--teacher`, `--ref`) must share the tokenizer of `--model`: the same tokenizer.json and
 * vocabulary size, since its distributions are compared with the model's token by token.
 */
export function checkSameTokenizer(flag: '--teacher' | '--ref', otherDir: string, otherVocab: number, modelDir: string, modelVocab: number): void {
  const read = (dir: string) => {
    try {
      return readFileSync(join(dir, 'tokenizer.json'), 'utf8');
    } catch (e) {
      throw new SftkitError('SFTKIT_BAD_ARGUMENT', `${flag}: cannot read ${join(dir, 'tokenizer.json')}: ${(e as Error).message}`, { cause: e });
    }
  };
  const same = (a: string, b: string) => a === b || JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  if (otherVocab !== modelVocab || !same(read(modelDir), read(otherDir))) {
    throw new SftkitError(
      'SFTKIT_BAD_ARGUMENT',
      `${flag} ${otherDir} and --model ${modelDir} do not share the tokenizer (vocabulary ${otherVocab} vs ${modelVocab}` +
        `${otherVocab === modelVocab ? ', tokenizer.json differs' : ''}); their distributions are compared token by token, so both need the same tokenizer` +
        `${flag === '--teacher' ? ' (sequence-level distillation, sftkit distill, works across tokenizers)' : ''}`,
    );
  }
}
