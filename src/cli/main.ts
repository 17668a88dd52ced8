// Entry of `sftkit`: picks the command and hands it the remaining arguments. No logic of its own.
import { SftkitError } from '../errors.ts';
import type { CliIo, Command } from './command.ts';
import { benchCommand } from './bench.ts';
import { chatCommand } from './chat.ts';
import { convertCommand } from './convert.ts';
import { distillCommand } from './distill.ts';
import { doctorCommand } from './doctor.ts';
import { dpoCommand } from './dpo.ts';
import { evalCommand } from './eval.ts';
import { exportCommand } from './export.ts';
import { generateCommand } from './generate.ts';
import { inspectCommand } from './inspect.ts';
import { mergeCommand } from './merge.ts';
import { quickstartCommand } from './quickstart.ts';
import { setupCommand } from './setup.ts';
import { trainCommand } from './train.ts';
import { uiCommand } from './ui.ts';

const commands: Command[] = [
  trainCommand,
  evalCommand,
  generateCommand,
  chatCommand,
  dpoCommand,
  distillCommand,
  mergeCommand,
  exportCommand,
  inspectCommand,
  uiCommand,
  convertCommand,
  quickstartCommand,
  benchCommand,
  doctorCommand,
  setupCommand,
];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: sftkit <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `sftkit <command> --help` for the options of a command.',
    '',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo = process): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return name ? 0 : 1;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`sftkit: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    const code = e instanceof Error ? (e as { code?: unknown }).code : undefined;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`sftkit ${name}: ${(e as Error).message}\n\n${command.help}`);
      return 2;
    }
    if (e instanceof SftkitError || (e instanceof Error && typeof code === 'string')) {
      io.stderr.write(`sftkit ${name}: ${e.message} [${String(code)}]\n`);
      return 1;
    }
    throw e;
  }
}
