// `sftkit train`: flags / --config -> one validated options object -> train().
import { formatTrainOptionsHelp, parseTrainArgs } from '../train/options.ts';
import { train } from '../train/trainer.ts';
import type { CliIo, Command } from './command.ts';

export const trainCommand: Command = {
  name: 'train',
  summary: 'fine-tune a model on a data file (SFT, or pretraining with --format text)',
  get help() {
    return `Usage: sftkit train --model DIR --data FILE --out DIR [options]   (or --config file.json|yaml)

Fine-tunes a Hugging Face causal LM. OUT receives checkpoint-<step>/ directories, the final model (a Hugging Face
directory loadable by transformers), metrics.jsonl, loss.svg/loss.png and data/{train,val,test}.jsonl.
A first Ctrl-C stops after the current step with a checkpoint; --resume continues from it.

${formatTrainOptionsHelp()}`;
  },
  async run(argv: string[], io: CliIo): Promise<number> {
    const options = parseTrainArgs(argv);
    const result = await train(options, { progress: io.stderr, log: (m) => io.stderr.write(`${m}\n`) });
    io.stdout.write(`${JSON.stringify(result)}\n`);
    return result.stopped === 'completed' ? 0 : 130;
  },
};
