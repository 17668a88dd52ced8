// `sftkit ui`: the local web dashboard (runs and curves, mask inspector, playground, responses) until Ctrl-C.
import { parseArgs } from 'node:util';
import { invalidParameterError, SftkitError } from '../errors.ts';
import { startUiServer } from '../ui/server.ts';
import { intFlag } from './args.ts';
import type { CliIo, Command } from './command.ts';

export const DEFAULT_UI_PORT = 8765;

const HELP = `Usage: sftkit ui [--runs DIR] [--port N] [--host H] [--models DIR]... [--data DIR]...

Serves a local web dashboard: the runs under DIR (status, losses, tokens/s; live curves of loss, learning rate and
gradient norm against steps or tokens, several runs overlaid), a mask inspector (the engine of sftkit inspect), a
playground to chat with one model or compare two, and the responses and judge scores of sftkit eval --responses.

  --runs DIR      directory holding the run directories (every directory with a metrics.jsonl; default ./runs)
  --port N        port (default ${DEFAULT_UI_PORT}; 0 = any free port)
  --host H        address to bind (default 127.0.0.1). Another address exposes your runs and the directories
                  below to the network: use it only on a network you trust
  --models DIR    another directory the inspector and playground may open models from (repeatable)
  --data DIR      another directory (or file) the inspector and responses view may open (repeatable)
  --threads N     CPU threads of each model the playground loads (default: all cores)

Only --runs and the --models / --data directories can be opened; any other path is refused.
`;

export const uiCommand: Command = {
  name: 'ui',
  summary: 'local web dashboard: runs and live curves, mask inspector, playground, responses',
  help: HELP,
  async run(argv: string[], io: CliIo): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        runs: { type: 'string', default: 'runs' },
        port: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        models: { type: 'string', multiple: true, default: [] },
        data: { type: 'string', multiple: true, default: [] },
        threads: { type: 'string' },
      },
    });
    const port = intFlag('port', values.port, 0) ?? DEFAULT_UI_PORT;
    if (port > 65535) throw invalidParameterError('--port', 'a port in [0, 65535]', values.port);
    const threads = intFlag('threads', values.threads, 1);
    let server;
    try {
      server = await startUiServer({
        runs: values.runs,
        allow: [...values.models, ...values.data],
        host: values.host,
        port,
        ...(threads !== undefined ? { threads } : {}),
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new SftkitError('SFTKIT_IO', `port ${port} on ${values.host} is in use; pass --port N (0 = any free port)`);
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new SftkitError('SFTKIT_IO', `cannot bind --host ${values.host} (${code})`);
      throw e;
    }
    io.stdout.write(`sftkit ui: ${server.url} (runs: ${server.access.roots[0]}; may open: ${server.access.roots.join(', ')})\n`);
    if (server.host !== '127.0.0.1' && server.host !== 'localhost' && server.host !== '::1') {
      io.stderr.write(`sftkit ui: listening on ${server.host}: anyone who can reach it can read these directories and run the models\n`);
    }
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    io.stdout.write('sftkit ui: stopping\n');
    await server.close();
    return 0;
  },
};
