// `sftkit ui`: the local web dashboard (runs and curves, mask inspector, playground, responses) until Ctrl-C.
import { SftkitError } from '../errors.ts';
import { commandOptions, common, opt } from '../options/index.ts';
import { startUiServer } from '../ui/index.ts';
import { optionsCommand } from './command.ts';

export const DEFAULT_UI_PORT = 8765;

const uiOptions = commandOptions({
  command: 'ui',
  shape: {
    runs: opt.string('directory holding the run directories (every directory with a metrics.jsonl)', { placeholder: 'DIR' }).default('runs'),
    port: opt.int('port (0 = any free port)', { min: 0, max: 65535, expected: 'a port in [0, 65535]' }).default(DEFAULT_UI_PORT),
    host: opt
      .string('address to bind. Another address exposes your runs and the directories\nbelow to the network: use it only on a network you trust', { placeholder: 'H' })
      .default('127.0.0.1'),
    models: opt.list('another directory the inspector and playground may open models from (repeatable)', { placeholder: 'DIR' }).default([]),
    data: opt.list('another directory (or file) the inspector and responses view may open (repeatable)', { placeholder: 'DIR' }).default([]),
    threads: common.threads,
  },
});

export const uiCommand = optionsCommand({
  options: uiOptions,
  summary: 'local web dashboard: runs and live curves, mask inspector, playground, responses',
  about: `Usage: sftkit ui [--runs DIR] [--port N] [--host H] [--models DIR]... [--data DIR]...

Serves a local web dashboard: the runs under DIR (status, losses, tokens/s; live curves of loss, learning rate and
gradient norm against steps or tokens, several runs overlaid), a mask inspector (the engine of sftkit inspect), a
playground to chat with one model or compare two, and the responses and judge scores of sftkit eval --responses.

`,
  epilogue: `
Only --runs and the --models / --data directories can be opened; any other path is refused.
`,
  async run(values, io) {
    const { port, threads } = values;
    let server;
    try {
      server = await startUiServer({
        runs: values.runs,
        allow: [...values.models, ...values.data],
        host: values.host,
        port,
        ...(threads ? { threads } : {}),
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
});
