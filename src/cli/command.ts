// The shape every `sftkit <command>` module exports; src/cli/main.ts dispatches to them.

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface Command {
  /** `sftkit <name>` */
  name: string;
  /** One line for `sftkit --help`. */
  summary: string;
  /** Full text for `sftkit <name> --help`. */
  help: string;
  /** Runs with the arguments after the command name; resolves to the process exit code. */
  run(argv: string[], io: CliIo): Promise<number>;
}

/**
 * A command whose arguments are its option schema (src/options): `sftkit <name> --help` is the text about it, the
 * option table generated from the schema and an epilogue; `run` gets the validated options.
 */
export function optionsCommand<O>(c: {
  options: { command: string; formatHelp(): string; parseArgs(argv: readonly string[]): O };
  /** One line for `sftkit --help`. */
  summary: string;
  /** The text above the option table (usage lines, what the command does), ending with a blank line. */
  about: string;
  /** Text below the option table. */
  epilogue?: string;
  run(options: O, io: CliIo): Promise<number>;
}): Command {
  return {
    name: c.options.command,
    summary: c.summary,
    get help() {
      return `${c.about}${c.options.formatHelp()}${c.epilogue ?? ''}`;
    },
    async run(argv, io) {
      if (argv.includes('--help') || argv.includes('-h')) {
        io.stdout.write(this.help);
        return 0;
      }
      return c.run(c.options.parseArgs(argv), io);
    },
  };
}
