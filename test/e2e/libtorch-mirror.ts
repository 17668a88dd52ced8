// Helpers of test/e2e/libtorch-download.test.ts: a loopback HTTP server laid out like the PyTorch wheel index
// (/whl/cpu/torch/ and the wheel beside it, Range requests answered as a real server does, faults on demand), a forward
// proxy, the local torch wheel this machine has, a small wheel made from it, and a minimal zip writer for that.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join, relative } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';

export const WHEEL_NAME = 'torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl';

export interface ZipMember {
  name: string;
  data: Buffer;
  mode?: number;
}

/** Writes a zip (deflated members, Unix modes in the external attributes, no zip64: members stay small). */
export function writeZip(path: string, members: ZipMember[]): void {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const packed = deflateRawSync(m.data, { level: 1 });
    const crc = crc32(m.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(0, 10); // time, date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(packed.length, 18);
    local.writeUInt32LE(m.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE((3 << 8) | 20, 4); // made by Unix: the external attributes carry st_mode
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(0x0800, 8);
    entry.writeUInt16LE(8, 10);
    entry.writeUInt32LE(0, 12);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(packed.length, 20);
    entry.writeUInt32LE(m.data.length, 24);
    entry.writeUInt16LE(name.length, 28);
    entry.writeUInt32LE(0, 30); // extra, comment lengths
    entry.writeUInt32LE(0, 34); // disk, internal attributes
    entry.writeUInt32LE((((m.mode ?? 0o100644) & 0xffff) << 16) >>> 0, 38);
    entry.writeUInt32LE(offset, 42);
    parts.push(local, name, packed);
    central.push(entry, name);
    offset += local.length + name.length + packed.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(path, Buffer.concat([...parts, cd, end]));
}

/** Reads the members `pick` selects from a zip; pick returns false to skip or a byte limit (Infinity = whole). */
export function readZipMembers(file: string, pick: (name: string) => number | false): Promise<ZipMember[]> {
  return new Promise((ok, fail) => {
    yauzl.open(file, { lazyEntries: true, autoClose: true }, (err, zip) => {
      if (err || !zip) return fail(err);
      const out: ZipMember[] = [];
      zip.on('error', fail);
      zip.on('end', () => ok(out));
      zip.on('entry', (entry: yauzl.Entry) => {
        const limit = entry.fileName.endsWith('/') ? false : pick(entry.fileName);
        if (limit === false) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return fail(e);
          const chunks: Buffer[] = [];
          let size = 0;
          const done = () => {
            out.push({ name: entry.fileName, data: Buffer.concat(chunks).subarray(0, Math.min(size, limit)), mode: entry.externalFileAttributes >>> 16 });
            zip.readEntry();
          };
          stream.on('data', (c: Buffer) => {
            chunks.push(c);
            size += c.length;
            if (size >= limit) {
              stream.unpipe();
              (stream as unknown as { destroy(): void }).destroy();
              done();
            }
          });
          stream.on('end', () => size < limit && done());
          stream.on('error', fail);
        });
      });
      zip.readEntry();
    });
  });
}

/**
 * The local torch 2.13.0+cpu wheel: in a PIP_FIND_LINKS folder, else fetched with `pip download` (the normal pip
 * configuration) into `scratch`. Null when neither finds it.
 */
export function findLocalWheel(scratch: string): string | null {
  for (const dir of (process.env.PIP_FIND_LINKS ?? '').split(/\s+/).filter(Boolean)) {
    const path = dir.replace(/^file:\/\//, '');
    if (existsSync(join(path, WHEEL_NAME))) return join(path, WHEEL_NAME);
  }
  try {
    execFileSync(process.env.PYTHON || 'python3', ['-m', 'pip', 'download', 'torch==2.13.0+cpu', '--no-deps', '--only-binary=:all:', '-d', scratch], {
      stdio: 'ignore',
      timeout: 180_000,
    });
  } catch {
    return null;
  }
  const got = readdirSync(scratch).find((f) => f.startsWith('torch-2.13.0+cpu-') && f.endsWith('.whl'));
  return got ? join(scratch, got) : null;
}

/** What the small wheel keeps of a real one: the limit in bytes per member, or false. */
export function smallWheelPick(name: string): number | false {
  if (name === 'torch/lib/libtorch_cpu.so') return 8 << 20; // 415 MiB in the real wheel: a truncated copy (see the test)
  if (/^torch\/lib\/(libtorch\.so|libc10\.so|libtorch_global_deps\.so|libgomp\.so\.1|libshm\/.*)$/.test(name)) return Infinity;
  if (name.startsWith('torch/share/')) return Infinity;
  if (name === 'torch/include/torch/headeronly/version.h' || name === 'torch/include/torch/csrc/api/include/torch/version.h') return Infinity;
  if (name.startsWith('torch/include/c10/macros/')) return Infinity;
  // Members outside lib/, include/ and share/, which the unpacking must leave out.
  if (name === 'torch/__init__.py' || name === 'torch/version.py' || name === 'torch/bin/torch_shm_manager') return Infinity;
  if (/^torch-[^/]+\.dist-info\/(METADATA|WHEEL)$/.test(name)) return Infinity;
  return false;
}

/** The small wheel's members from an unpacked libtorch (lib/, include/, share/), when no wheel is at hand. */
export function membersFromLibtorchDir(dir: string): ZipMember[] {
  const out: ZipMember[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else {
        const member = `torch/${relative(dir, p)}`;
        const limit = smallWheelPick(member);
        if (limit !== false) out.push({ name: member, data: readFileSync(p).subarray(0, limit), mode: 0o100000 | (st.mode & 0o777) });
      }
    }
  };
  for (const top of ['lib', 'include', 'share']) if (existsSync(join(dir, top))) walk(join(dir, top));
  out.push({ name: 'torch/__init__.py', data: Buffer.from('# not unpacked\n') });
  out.push({ name: 'torch/bin/torch_shm_manager', data: Buffer.from('not unpacked'), mode: 0o100755 });
  return out;
}

export const sha256Of = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

export interface MirrorRequest {
  path: string;
  range: string | null;
  status: number;
  agent: string;
}

/** The served wheel and the faults to inject, changed by the tests between runs. */
export interface MirrorState {
  file: string;
  size: number;
  sha256: string;
  /** Digest written into the index link (default: the file's). */
  indexSha256: string | null;
  /** Status for the wheel instead of serving it (e.g. 404). */
  wheelStatus: number | null;
  /** The next full (non-Range) wheel response: send this many bytes, wait 200 ms, destroy the socket. */
  cutAfter: number | null;
  /** Every wheel response: send this many bytes, then stall until the client goes away. */
  holdAfter: number | null;
  /** Answer Range requests with the whole file (200), as servers without range support do. */
  ignoreRange: boolean;
}

export interface Mirror {
  base: string;
  state: MirrorState;
  requests: MirrorRequest[];
  /** More files to serve whole: URL path (decoded) -> file. */
  files: Map<string, string>;
  /** Requests made by sftkit (pip's, in the fallback, carry pip's user agent). */
  ours(): MirrorRequest[];
  close(): Promise<void>;
}

const encodedName = WHEEL_NAME.replace('+', '%2B');

/** Starts the loopback mirror: GET /whl/cpu/torch/ (index page) and /whl/cpu/<wheel> (Range honoured). */
export async function startMirror(file: string): Promise<Mirror> {
  const state: MirrorState = {
    file,
    size: statSync(file).size,
    sha256: sha256Of(file),
    indexSha256: null,
    wheelStatus: null,
    cutAfter: null,
    holdAfter: null,
    ignoreRange: false,
  };
  const requests: MirrorRequest[] = [];
  const files = new Map<string, string>();
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '';
    const log = (status: number) =>
      requests.push({ path: decodeURIComponent(path), range: req.headers.range ?? null, status, agent: String(req.headers['user-agent'] ?? '') });
    if (path === '/whl/cpu/torch/') {
      log(200);
      // A relative href (../) with the + encoded, as hrefs on such pages are.
      const digest = state.indexSha256 ?? state.sha256;
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!DOCTYPE html>\n<html><body><h1>Links for torch</h1>\n` +
          `<a href="../torch-2.12.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl#sha256=${'0'.repeat(64)}">torch-2.12.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl</a><br/>\n` +
          `<a href="../${encodedName}#sha256=${digest}" data-requires-python="&gt;=3.10">${WHEEL_NAME}</a><br/>\n` +
          `</body></html>\n`,
      );
      return;
    }
    const other = files.get(decodeURIComponent(path));
    if (other) {
      const size = statSync(other).size;
      log(200);
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/zip' });
      createReadStream(other).pipe(res);
      return;
    }
    if (path !== `/whl/cpu/${encodedName}`) {
      log(404);
      res.writeHead(404).end('not found');
      return;
    }
    if (state.wheelStatus) {
      log(state.wheelStatus);
      res.writeHead(state.wheelStatus).end(`status ${state.wheelStatus}`);
      return;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = state.size - 1;
    if (req.headers.range && !state.ignoreRange) {
      if (!range) {
        log(416);
        res.writeHead(416, { 'content-range': `bytes */${state.size}` }).end();
        return;
      }
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
      if (start >= state.size || start > end) {
        log(416);
        res.writeHead(416, { 'content-range': `bytes */${state.size}` }).end();
        return;
      }
      log(206);
      res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${state.size}`, 'accept-ranges': 'bytes' });
    } else {
      log(200);
      res.writeHead(200, { 'content-length': state.size, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' });
    }
    let cut: number | null = null;
    if (!req.headers.range && state.cutAfter !== null) {
      cut = state.cutAfter;
      state.cutAfter = null;
    }
    const limit = cut ?? state.holdAfter;
    if (limit !== null && limit < end - start + 1) {
      const head = createReadStream(state.file, { start, end: start + limit - 1 });
      head.pipe(res, { end: false });
      head.on('end', () => {
        if (cut !== null) setTimeout(() => res.socket?.destroy(), 200);
        // holding: leave the response open; the client is killed or the server closed.
      });
      return;
    }
    createReadStream(state.file, { start, end }).pipe(res);
  };
  const server: Server = createServer(serve);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    state,
    requests,
    files,
    ours: () => requests.filter((r) => r.agent.startsWith('sftkit-install')),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

export interface Proxy {
  url: string;
  /** What went through: `CONNECT host:port` tunnels and `GET http://...` forwarded requests. */
  seen: string[];
  close(): Promise<void>;
}

/** A forward HTTP proxy on loopback: CONNECT tunnels and absolute-URI requests, each noted in `seen`. */
export async function startProxy(): Promise<Proxy> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url ?? '');
    const upstream = httpRequest(target, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host ?? '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
