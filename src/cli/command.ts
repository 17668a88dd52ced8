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
