// `sftkit distill`: sequence-level distillation data. Flags -> the teacher model -> distillDataset() -> one JSON line
// with the counts.
import { parseFieldMap } from '../data/index.ts';
import { distillDataset } from '../generate/index.ts';
import { loadModel } from '../native/index.ts';
import { commandOptions, common, dataSelection, opt, sampling, samplingOf } from '../options/index.ts';
import { optionsCommand } from './command.ts';

const distillOptions = commandOptions({
  command: 'distill',
  shape: {
    teacher: opt.string('the model that answers', { placeholder: 'DIR' }),
    prompts: opt.string('the prompts (JSON, JSONL, Parquet, CSV or TSV; a dataset directory; or an http(s) URL)', { placeholder: 'FILE' }),
    out: opt.string('the chat dataset to write (JSONL)', { placeholder: 'FILE' }),
    template: dataSelection.template,
    format: dataSelection.format,
    fieldMap: dataSelection.fieldMap,
    limit: dataSelection.limit,
    batchSize: opt.int('prompts generated together (left-padded)', { min: 1 }).default(8),
    threads: common.threads,
    ...sampling,
  },
});

export const distillCommand = optionsCommand({
  options: distillOptions,
  summary: 'sequence-level distillation: a teacher answers prompts, written as a chat dataset',
  about: `Usage: sftkit distill --teacher DIR --prompts FILE --out DATA.jsonl [--template T] [--max-new-tokens N]
                      [--batch-size B] [--temperature X] [--seed N]

Sequence-level distillation: the teacher answers every prompt of FILE (batched generation) and OUT receives a chat
dataset, one {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]} per line, to fine-tune a student on
(sftkit train --data OUT). FILE may hold alpaca, prompt-completion, chat, sharegpt or preference records; answers in
it are ignored (a chat keeps its earlier turns). The prompt is rendered with --template exactly as in training.
OUT is written as OUT.partial and renamed when complete: an earlier OUT is never half overwritten, and running the
same command again after a crash continues where it stopped. Prompts with an empty answer are skipped and counted.

`,
  async run(o, io) {
    const { teacher: teacherDir, prompts, out, threads } = o;
    const teacher = await loadModel(teacherDir, threads ? { threads } : {});
    try {
      const result = await distillDataset(teacher, {
        teacherDir,
        prompts,
        out,
        fieldMap: parseFieldMap(o.fieldMap),
        ...(o.template !== 'auto' ? { template: o.template } : {}),
        format: o.format,
        ...(o.limit !== undefined ? { limit: o.limit } : {}),
        batchSize: o.batchSize,
        ...samplingOf(o),
        log: (m) => io.stderr.write(`${m}\n`),
      });
      io.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    } finally {
      await teacher.dispose();
    }
  },
});
