// `sftkit distill`: sequence-level distillation data. Flags -> the teacher model -> distillDataset() -> one JSON line
// with the counts.
import { parseArgs } from 'node:util';
import { parseFieldMap } from '../data/formats.ts';
import { RECORD_FORMATS, type RecordFormat } from '../data/types.ts';
import { distillDataset } from '../generate/distill-data.ts';
import { loadModel } from '../native/model.ts';
import { enumFlag, intFlag, requiredFlag, SAMPLING_HELP, samplingFlags, samplingOptions } from './args.ts';
import type { CliIo, Command } from './command.ts';

const HELP = `Usage: sftkit distill --teacher DIR --prompts FILE --out DATA.jsonl [--template T] [--max-new-tokens N]
                      [--batch-size B] [--temperature X] [--seed N]

Sequence-level distillation: the teacher answers every prompt of FILE (batched generation) and OUT receives a chat
dataset, one {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]} per line, to fine-tune a student on
(sftkit train --data OUT). FILE may hold alpaca, prompt-completion, chat, sharegpt or preference records; answers in
it are ignored (a chat keeps its earlier turns). The prompt is rendered with --template exactly as in training.
OUT is written as OUT.partial and renamed when complete: an earlier OUT is never half overwritten, and running the
same command again after a crash continues where it stopped. Prompts with an empty answer are skipped and counted.

  --teacher DIR          the model that answers
  --prompts FILE         the prompts (JSON, JSONL, Parquet, CSV or TSV; a dataset directory; or an http(s) URL)
  --out FILE             the chat dataset to write (JSONL)
  --template T           prompt style (default: by format, as sftkit train)
  --format F             record format of FILE (default: detected)
  --field-map F=KEY,...  read fields from other keys
  --limit N              only the first N records
  --batch-size B         prompts generated together (left-padded; default 8)
  --threads N            CPU threads (default: all cores)
${SAMPLING_HELP}`;

export const distillCommand: Command = {
  name: 'distill',
  summary: 'sequence-level distillation: a teacher answers prompts, written as a chat dataset',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        teacher: { type: 'string' },
        prompts: { type: 'string' },
        out: { type: 'string' },
        template: { type: 'string' },
        format: { type: 'string' },
        'field-map': { type: 'string' },
        limit: { type: 'string' },
        'batch-size': { type: 'string' },
        threads: { type: 'string' },
        ...samplingFlags,
      },
    });
    const teacherDir = requiredFlag('teacher', values.teacher);
    const prompts = requiredFlag('prompts', values.prompts);
    const out = requiredFlag('out', values.out);
    const threads = intFlag('threads', values.threads, 0);
    const limit = intFlag('limit', values.limit, 1);
    const batchSize = intFlag('batch-size', values['batch-size'], 1);
    const format = enumFlag<RecordFormat | 'auto'>('format', values.format, ['auto', ...RECORD_FORMATS]);
    const teacher = await loadModel(teacherDir, threads ? { threads } : {});
    try {
      const result = await distillDataset(teacher, {
        teacherDir,
        prompts,
        out,
        fieldMap: parseFieldMap(values['field-map']),
        ...(values.template !== undefined ? { template: values.template } : {}),
        ...(format !== undefined ? { format } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(batchSize !== undefined ? { batchSize } : {}),
        ...samplingOptions(values),
        log: (m) => io.stderr.write(`${m}\n`),
      });
      io.stdout.write(`${JSON.stringify(result)}\n`);
      return 0;
    } finally {
      await teacher.dispose();
    }
  },
};
