// `sftkit ui`'s server: Node's own http on 127.0.0.1 (another address only when asked), the page and the JSON API
// (api.ts). Requests whose Host header is not this server's loopback name are refused (DNS rebinding), a POST must
// be JSON and same-origin, every error is a JSON answer with a 4xx/5xx status, and closing ends the event streams
// and disposes the loaded models.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { statSync } from 'node:fs';
import { SftkitError } from '../errors.ts';
import { loadModel } from '../native/index.ts';
import { loadTokenizer } from '../tokenize/index.ts';
import { accessRoots, type AccessRoots } from './access.ts';
import { handleApi } from './api.ts';
import { loadWebAssets, type WebAssets } from './assets.ts';
import { HttpError, sendBody, sendError, statusOf } from './http.ts';
import { Inspector } from './inspector.ts';
import { ModelCache, type ModelLoader } from './model-cache.ts';
import { RunIndex } from './runs.ts';

export interface UiServerOptions {
  /** The runs tree (every directory with metrics.jsonl below it is a run). */
  runs: string;
  /** More directories (or files) the inspector, playground and responses views may open (--models, --data). */
  allow?: readonly string[];
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** CPU threads of each loaded model (default: the library's default, all cores). */
  threads?: number;
  /** Models kept loaded by the playground (default 2: a base and a fine-tuned one). */
  maxModels?: number;
  /** Polling interval of the metrics files, next to fs.watch (default 1000 ms). */
  pollMs?: number;
  keepAliveMs?: number;
  /** Loads a model for the playground (tests may pass their own). */
  loader?: ModelLoader;
  /** Request errors with status 500 are told here (default: stderr). */
  onError?: (e: unknown) => void;
}

export interface UiServer {
  url: string;
  host: string;
  port: number;
  access: AccessRoots;
  assets: WebAssets['source'];
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
};

export async function startUiServer(options: UiServerOptions): Promise<UiServer> {
  const host = options.host ?? '127.0.0.1';
  let st;
  try {
    st = statSync(options.runs);
  } catch {
    throw new SftkitError('SFTKIT_BAD_ARGUMENT', `--runs ${options.runs}: no such directory (train a run first, or point --runs at the directory holding your runs)`);
  }
  if (!st.isDirectory()) throw new SftkitError('SFTKIT_BAD_ARGUMENT', `--runs ${options.runs} is not a directory`);
  const access = accessRoots([options.runs, ...(options.allow ?? [])]);
  const assets = await loadWebAssets();
  const runs = new RunIndex(access.roots[0]!, options.pollMs !== undefined ? { pollMs: options.pollMs } : {});
  const loader: ModelLoader =
    options.loader ??
    (async (dir) => {
      const tokenizer = await loadTokenizer(dir);
      const model = await loadModel(dir, options.threads ? { threads: options.threads } : {});
      return { dir, model, tokenizer };
    });
  const models = new ModelCache(loader, { max: options.maxModels ?? 2 });
  const ctx = {
    runs,
    access,
    inspector: new Inspector(),
    models,
    ...(options.keepAliveMs !== undefined ? { keepAliveMs: options.keepAliveMs } : {}),
  };
  const onError = options.onError ?? ((e: unknown) => process.stderr.write(`sftkit ui: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`));
  let port = 0;

  const allowedHost = (value: string | undefined): boolean => {
    if (!LOOPBACK.has(host)) return true; // bound elsewhere on purpose: any name may reach it
    if (!value) return false;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(value);
    if (!m) return false;
    const name = m[1]!.replace(/^\[|\]$/g, '');
    return LOOPBACK.has(name) && (m[2] === undefined ? port === 80 : Number(m[2]) === port);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!allowedHost(req.headers.host)) throw new HttpError(403, `Host ${JSON.stringify(req.headers.host ?? '')} is not this dashboard (only 127.0.0.1 / localhost)`);
    const raw = req.url ?? '/';
    if (!raw.startsWith('/') || raw.length > 16_384) throw new HttpError(400, 'bad request target');
    if (raw.includes('\0') || /%00/i.test(raw)) throw new HttpError(400, 'NUL bytes are not allowed in URLs');
    let url: URL;
    try {
      // Concatenated, not resolved: `//x/y` is a path here, never a host.
      url = new URL(`http://localhost${raw}`);
    } catch {
      throw new HttpError(400, 'bad request target');
    }
    if (req.method === 'POST') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) throw new HttpError(403, `cross-origin request from ${origin} refused`);
    }
    if (url.pathname.startsWith('/api/')) return handleApi(ctx, req, res, url);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new HttpError(405, `${req.method} is not allowed on ${url.pathname}`);
    }
    if (url.pathname === '/' || url.pathname === '/index.html') return sendBody(res, 200, 'text/html; charset=utf-8', assets.html, PAGE_HEADERS);
    if (url.pathname === '/app.js') return sendBody(res, 200, 'text/javascript; charset=utf-8', assets.js);
    throw new HttpError(404, `no such page ${url.pathname}`);
  };

  const sockets = new Set<Socket>();
  const server = createServer({ requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
    handle(req, res).catch((e) => {
      if (statusOf(e) >= 500) onError(e);
      try {
        sendError(res, e);
      } catch (inner) {
        onError(inner);
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) {
      const body = JSON.stringify({ error: 'malformed HTTP request', status: 400 });
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    } else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${port}/`,
    host,
    port,
    access,
    assets: assets.source,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        runs.close();
        for (const s of sockets) s.destroy();
        await closed;
        await models.close();
      })();
      return closing;
    },
  };
}
