// The I/O half of obtaining libtorch without Python: fetches a PEP 503 index page, downloads a wheel or libtorch zip
// into <cache>/downloads (progress line, retries with backoff, resume with HTTP Range, sha256 checked over the whole
// file), and unpacks lib/, include/ and share/ into the cache, marked complete atomically (staged in a temp folder,
// marker written, renamed), so that a killed install leaves nothing a later one mistakes for complete. Plain .mjs: it
// runs at install time, before TypeScript is compiled. The choices (which URL, which wheel) are libtorch-source.mjs's.
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, EnvHttpProxyAgent, request } from 'undici';
import yauzl from 'yauzl';
import { CACHE_MARKER, parseSimpleIndex, pickWheel } from './libtorch-source.mjs';

/**
 * A download that failed. `unreachable`: the host could not be reached at all (DNS failure, refused, no route,
 * connect timeout), so no retry was made and the next source should be tried at once.
 */
export class DownloadError extends Error {
  constructor(message, { unreachable = false, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'DownloadError';
    this.unreachable = unreachable;
  }
}

const UNREACHABLE = new Set([
  'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN',
  'ENETDOWN', 'UND_ERR_CONNECT_TIMEOUT',
]);

function codesOf(e) {
  const codes = [];
  for (let x = e, depth = 0; x && depth < 4; x = x.cause, depth++) {
    if (x.code) codes.push(x.code);
    if (Array.isArray(x.errors)) for (const inner of x.errors) if (inner?.code) codes.push(inner.code);
  }
  return codes;
}

/** Local file-system failures (disk full, no permission): retrying the download cannot help. */
const LOCAL = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR', 'EMFILE', 'ENFILE']);

const isUnreachable = (e) => {
  const codes = codesOf(e);
  return codes.length > 0 && codes.every((c) => UNREACHABLE.has(c) || c === 'ERR_AGGREGATE');
};

function describe(e) {
  const codes = codesOf(e);
  const msg = e?.message || String(e);
  return codes.length && !msg.includes(codes[0]) ? `${msg} (${codes[0]})` : msg;
}

/** HTTP connections for the downloads: through HTTPS_PROXY / HTTP_PROXY (NO_PROXY honoured) when one is set. */
export function makeDispatcher(env = process.env) {
  const opts = { connect: { timeout: 15_000 }, headersTimeout: 60_000, bodyTimeout: 60_000 };
  const proxied = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'].some((k) => env[k]);
  if (!proxied) return new Agent(opts);
  return new EnvHttpProxyAgent({
    ...opts,
    httpProxy: env.http_proxy || env.HTTP_PROXY || undefined,
    httpsProxy: env.https_proxy || env.HTTPS_PROXY || env.http_proxy || env.HTTP_PROXY || undefined,
    noProxy: env.no_proxy ?? env.NO_PROXY,
  });
}

class HttpStatusError extends Error {
  constructor(url, status) {
    super(`${url} answered HTTP ${status}`);
    this.status = status;
    this.retryable = status === 408 || status === 429 || status >= 500;
  }
}

const DELAYS_MS = [1000, 2000, 4000, 8000];
const USER_AGENT = `sftkit-install node/${process.versions.node}`;

/**
 * Runs `attempt` with retries for transient failures (resets, timeouts, 5xx, cuts mid-body), backing off 1, 2, 4, 8 s.
 * An attempt that made progress (attempt returns or throws with `progressed`) is retried at once and does not use up
 * the budget. Unreachable hosts and non-retryable HTTP statuses fail at once.
 */
async function withRetries(what, attempt, log) {
  let failures = 0;
  for (let total = 0; ; total++) {
    const state = { progressed: false };
    try {
      return await attempt(state);
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      if (isUnreachable(e)) throw new DownloadError(`${what}: cannot reach the host: ${describe(e)}`, { unreachable: true, cause: e });
      if (e instanceof HttpStatusError && !e.retryable) throw new DownloadError(`${what}: ${e.message}`, { cause: e });
      if (codesOf(e).some((c) => LOCAL.has(c))) throw new DownloadError(`${what}: ${describe(e)}`, { cause: e });
      if (!state.progressed) failures++;
      if (failures > DELAYS_MS.length || total >= 50) throw new DownloadError(`${what} failed after ${total + 1} tries: ${describe(e)}`, { cause: e });
      const delay = state.progressed ? 0 : DELAYS_MS[failures - 1];
      log(`sftkit: ${what}: ${describe(e)}; ${delay ? `retrying in ${delay / 1000} s` : 'resuming'}`);
      if (delay) await sleep(delay);
    }
  }
}

/** Fetches a simple index page and picks the wheel: { fileName, url, sha256 }. */
export async function findWheel(source, { dispatcher, log, glibc = null }) {
  const html = await withRetries(
    `fetching the index ${source.pageUrl}`,
    async () => {
      const res = await request(source.pageUrl, { dispatcher, maxRedirections: 5, headers: { accept: 'text/html', 'user-agent': USER_AGENT } });
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new HttpStatusError(source.pageUrl, res.statusCode);
      }
      return res.body.text();
    },
    log,
  );
  const links = parseSimpleIndex(html, source.pageUrl);
  const { wheel, candidates } = pickWheel(links, { version: source.version, platformTag: source.platformTag, glibc });
  if (!wheel) {
    throw new DownloadError(
      `the index ${source.pageUrl} has no torch ${source.version} wheel for ${source.platformTag}${glibc ? ` (glibc ${glibc})` : ''}` +
        (candidates.length ? `; it has ${candidates.slice(0, 6).join(', ')}${candidates.length > 6 ? ', ...' : ''}` : ` among ${links.length} links`),
    );
  }
  return wheel;
}

const MiB = 1024 * 1024;
const fmtBytes = (n) => (n >= 1024 * MiB ? `${(n / 1024 / MiB).toFixed(2)} GiB` : `${(n / MiB).toFixed(1)} MiB`);
const fmtTime = (s) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${Math.ceil(s)}s`);

/**
 * The default progress display, to stderr: on a TTY one line rewritten with \r (bytes, percent, speed, ETA) at most
 * every 200 ms; otherwise a plain line every 5 s and at the end. Events: { phase: 'download'|'unpack', label, done,
 * total (null when unknown), start (bytes already on disk when a download resumed), end }.
 */
export function progressPrinter(stream = process.stderr) {
  const tty = Boolean(stream.isTTY);
  let last = 0;
  let began = 0;
  let startDone = 0;
  let key = '';
  let width = 0;
  return (ev) => {
    const now = Date.now();
    const k = `${ev.phase}:${ev.label}`;
    if (k !== key) {
      key = k;
      began = now;
      startDone = ev.start ?? ev.done;
      last = 0;
    }
    if (!ev.end && now - last < (tty ? 200 : 5000)) return;
    last = now;
    const secs = Math.max((now - began) / 1000, 1e-3);
    let line;
    if (ev.phase === 'download') {
      const rate = (ev.done - startDone) / secs;
      const pct = ev.total ? ` (${Math.floor((100 * ev.done) / ev.total)}%)` : '';
      const eta = ev.total && rate > 0 && !ev.end ? `, ETA ${fmtTime((ev.total - ev.done) / rate)}` : '';
      line = `sftkit: ${ev.end ? 'downloaded' : 'downloading'} ${ev.label}: ${fmtBytes(ev.done)}${ev.total ? ` / ${fmtBytes(ev.total)}` : ''}${pct}, ${fmtBytes(rate)}/s${eta}`;
    } else {
      line = `sftkit: ${ev.end ? 'unpacked' : 'unpacking'} ${ev.label}: ${ev.done}${ev.total ? ` / ${ev.total}` : ''} entries`;
    }
    if (tty) {
      stream.write(`\r${line.padEnd(width)}${ev.end ? '\n' : ''}`);
      width = ev.end ? 0 : line.length;
    } else {
      stream.write(`${line}\n`);
    }
  };
}

const alive = (pid) => {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

/**
 * Takes `<file>.lock` for the partial download `<file>.part`: returns the part path to use. When another live
 * process holds the lock, this one downloads into a private `<file>.<pid>.part` instead (no resume, removed after).
 */
function lockPart(dest) {
  const lock = `${dest}.lock`;
  for (let i = 0; i < 3; i++) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      return { part: `${dest}.part`, release: () => rmSync(lock, { force: true }) };
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const holder = Number.parseInt(readFileSync(lock, 'utf8'), 10);
      if (Number.isFinite(holder) && alive(holder)) {
        return { part: `${dest}.${process.pid}.part`, release: () => rmSync(`${dest}.${process.pid}.part`, { force: true }), private: true };
      }
      rmSync(lock, { force: true }); // a killed install's lock
    }
  }
  throw new Error(`could not take the lock ${lock}`);
}

async function hashFile(path, hash) {
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk);
  return hash;
}

function contentRange(value) {
  const m = /^bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(String(value ?? '').trim());
  if (!m) return null;
  return { start: m[1] === undefined ? null : Number(m[1]), total: m[3] === '*' ? null : Number(m[3]) };
}

/**
 * Downloads `url` to `dest` (a complete file, verified against `sha256` when given). The bytes go to `<dest>.part`
 * first; a later call resumes it with a Range request (206 continues it; 200 starts over; 416 with the full length
 * means it is complete). The sha256 is computed while streaming (over the part's existing bytes first when resuming);
 * a resumed file that does not match is discarded and downloaded once afresh; a fresh one that does not match is an
 * error naming both digests.
 */
export async function downloadFile(url, dest, { sha256 = null, dispatcher, log = () => {}, onProgress = () => {}, label = url }) {
  mkdirSync(dirname(dest), { recursive: true });
  if (existsSync(dest)) {
    if (!sha256) return dest;
    const have = (await hashFile(dest, createHash('sha256'))).digest('hex');
    if (have === sha256) return dest;
    log(`sftkit: ${dest} does not match its sha256 (${have}, expected ${sha256}); downloading it again`);
    rmSync(dest, { force: true });
  }
  const lock = lockPart(dest);
  let freshRetry = false;
  try {
    for (;;) {
      const { digest, resumed } = await withRetries(
        `downloading ${url}`,
        (state) => downloadAttempt(url, lock.part, { dispatcher, state, onProgress, label, log }),
        log,
      );
      if (!sha256 || digest === sha256) break;
      rmSync(lock.part, { force: true });
      if (resumed && !freshRetry) {
        freshRetry = true;
        log(`sftkit: the resumed download of ${label} does not match its sha256 (${digest}, expected ${sha256}); downloading it afresh`);
        continue;
      }
      throw new DownloadError(`sha256 mismatch for ${url}: expected ${sha256} (from the index), the downloaded file has ${digest}`);
    }
    renameSync(lock.part, dest);
    return dest;
  } finally {
    lock.release();
  }
}

/**
 * One request: appends to `part` from its current size; returns the sha256 of the whole file and whether it holds
 * bytes from an earlier try (resumed).
 */
async function downloadAttempt(url, part, { dispatcher, state, onProgress, label, log }) {
  let offset = existsSync(part) ? statSync(part).size : 0;
  const res = await request(url, {
    dispatcher,
    maxRedirections: 5,
    headers: { 'user-agent': USER_AGENT, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
  });
  let total = null;
  if (res.statusCode === 206) {
    const cr = contentRange(res.headers['content-range']);
    if (!cr || cr.start !== offset) {
      await res.body.dump();
      rmSync(part, { force: true });
      state.progressed = true;
      throw new Error(`the server resumed at ${cr?.start ?? '?'} instead of ${offset}; starting over`);
    }
    total = cr.total;
  } else if (res.statusCode === 200) {
    if (offset > 0) log(`sftkit: the server does not resume downloads (HTTP 200 to a Range request); ${label} starts over`);
    offset = 0;
    const len = Number(res.headers['content-length']);
    total = Number.isFinite(len) && res.headers['content-length'] !== undefined ? len : null;
  } else if (res.statusCode === 416 && offset > 0) {
    await res.body.dump();
    const cr = contentRange(res.headers['content-range']);
    if (cr && cr.total === offset) {
      return { digest: (await hashFile(part, createHash('sha256'))).digest('hex'), resumed: true };
    }
    rmSync(part, { force: true });
    state.progressed = true;
    throw new Error(`the server refused the resume at byte ${offset} (HTTP 416); starting over`);
  } else {
    await res.body.dump();
    throw new HttpStatusError(url, res.statusCode);
  }
  const hash = createHash('sha256');
  if (offset > 0) await hashFile(part, hash);
  const out = createWriteStream(part, { flags: offset > 0 ? 'a' : 'w' });
  let done = offset;
  onProgress({ phase: 'download', label, done, total, start: offset });
  let failure = null;
  try {
    for await (const chunk of res.body) {
      hash.update(chunk);
      done += chunk.length;
      state.progressed = true;
      if (!out.write(chunk)) await once(out, 'drain');
      onProgress({ phase: 'download', label, done, total, start: offset });
    }
  } catch (e) {
    failure = e;
  }
  // Every received byte reaches the part file (ended, not destroyed), so the next try resumes where this one stopped.
  out.end();
  await once(out, 'close');
  if (failure) throw failure;
  if (total !== null && done !== total) throw new Error(`the connection closed at byte ${done} of ${total}`);
  onProgress({ phase: 'download', label, done, total: total ?? done, start: offset, end: true });
  return { digest: hash.digest('hex'), resumed: offset > 0 };
}

const openZip = (file) =>
  new Promise((ok, fail) => {
    yauzl.open(file, { lazyEntries: true, autoClose: true, decodeStrings: true, validateEntrySizes: true }, (err, zip) =>
      err ? fail(err) : ok(zip),
    );
  });

const openEntry = (zip, entry) => new Promise((ok, fail) => zip.openReadStream(entry, (err, s) => (err ? fail(err) : ok(s))));

/**
 * Unpacks the members of `file` under `prefix` + one of `keep` (e.g. 'torch/' + 'lib/') into `dest`, the prefix
 * stripped, streaming, a few entries at a time; files are created with their recorded modes (the umask applies, as
 * with unzip and tar), symlinks recreated (refused when they point outside `dest`). Progress events count entries.
 */
export async function unpackZip(file, dest, { prefix, keep = ['lib/', 'include/', 'share/'], onProgress = () => {}, label = file }) {
  const zip = await openZip(file);
  const total = zip.entryCount;
  const root = resolve(dest);
  const dirs = new Map();
  const ensureDir = (d) => {
    if (!dirs.has(d)) dirs.set(d, mkdir(d, { recursive: true }));
    return dirs.get(d);
  };
  let done = 0;
  let written = 0;

  const handle = async (entry) => {
    const name = entry.fileName;
    const rel = name.startsWith(prefix) ? name.slice(prefix.length) : null;
    if (!rel || !keep.some((k) => rel.startsWith(k))) return;
    const target = resolve(root, rel);
    if (target !== root && !target.startsWith(root + sep)) throw new Error(`${name} would unpack outside ${root}`);
    if (name.endsWith('/')) return ensureDir(target);
    await ensureDir(dirname(target));
    const mode = (entry.externalFileAttributes >>> 16) & 0o177777;
    const perm = mode & 0o777 || 0o644;
    const stream = await openEntry(zip, entry);
    if ((mode & 0o170000) === 0o120000) {
      let link = '';
      for await (const c of stream) link += c.toString('utf8');
      const to = resolve(dirname(target), link);
      if (to !== root && !to.startsWith(root + sep)) throw new Error(`${name} links outside the unpacked folder (${link})`);
      await symlink(link, target);
    } else if (entry.uncompressedSize <= 4 * MiB) {
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      await writeFile(target, Buffer.concat(chunks), { mode: perm });
    } else {
      await pipeline(stream, createWriteStream(target, { mode: perm }));
    }
    written++;
  };

  await new Promise((ok, fail) => {
    const MAX_IN_FLIGHT = 8;
    let inFlight = 0;
    let reading = false;
    let ended = false;
    let failed = false;
    const failOnce = (e) => {
      if (failed) return;
      failed = true;
      try {
        zip.close();
      } catch {
        // already closed
      }
      fail(e);
    };
    const pump = () => {
      if (ended || failed || reading || inFlight >= MAX_IN_FLIGHT) return;
      reading = true;
      zip.readEntry();
    };
    zip.on('error', failOnce);
    zip.on('end', () => {
      ended = true;
      if (inFlight === 0 && !failed) ok();
    });
    zip.on('entry', (entry) => {
      reading = false;
      inFlight++;
      handle(entry).then(() => {
        inFlight--;
        done++;
        onProgress({ phase: 'unpack', label, done, total });
        if (ended && inFlight === 0 && !failed) ok();
        else pump();
      }, failOnce);
      pump();
    });
    pump();
  });
  onProgress({ phase: 'unpack', label, done, total, end: true });
  if (written === 0) throw new Error(`${file} has no ${keep.map((k) => prefix + k).join(', ')} members`);
}


/**
 * Removes what killed installs left in the cache root: staging folders (`.staging-<pid>-...`, `.tmp-<pid>-...`) of
 * processes that are gone, and the old pip code's `.download-*` folders older than an hour.
 */
export function cleanStale(cacheRoot, log = () => {}) {
  if (!existsSync(cacheRoot)) return;
  for (const name of readdirSync(cacheRoot)) {
    const m = /^\.(?:staging|tmp)-(\d+)-/.exec(name);
    let stale = false;
    if (m) stale = !alive(Number(m[1]));
    else if (name.startsWith('.download-')) {
      try {
        stale = Date.now() - statSync(join(cacheRoot, name)).mtimeMs > 3600_000;
      } catch {
        stale = false;
      }
    }
    if (stale) {
      log(`sftkit: removing ${join(cacheRoot, name)} (left by an interrupted install)`);
      rmSync(join(cacheRoot, name), { recursive: true, force: true });
    }
  }
}

/** A fresh private folder in the cache root, named so that cleanStale can tell when its owner is gone. */
export function tempDirIn(cacheRoot, kind = 'tmp') {
  mkdirSync(cacheRoot, { recursive: true });
  const dir = join(cacheRoot, `.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir);
  return dir;
}

function writeSynced(path, text) {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Unpacks a downloaded wheel/zip into `target` atomically: into a staging folder in the cache root first, checked
 * with `inspect(dir)` (returns { ok, reason }), the marker written (and synced), then renamed into place. When another
 * install completed `target` meanwhile, that one is kept.
 */
export async function installZip(file, target, { cacheRoot, prefix, marker, inspect, onProgress, label, log = () => {} }) {
  const staging = tempDirIn(cacheRoot, 'staging');
  try {
    const dir = join(staging, 'libtorch');
    await unpackZip(file, dir, { prefix, onProgress, label });
    const check = inspect(dir);
    if (!check.ok) throw new DownloadError(`${label} is not a complete libtorch: ${check.reason}`);
    writeSynced(join(dir, CACHE_MARKER), `${JSON.stringify(marker)}\n`);
    if (existsSync(join(target, CACHE_MARKER))) {
      log(`sftkit: ${target} was completed by another install meanwhile; keeping it`);
      return target;
    }
    rmSync(target, { recursive: true, force: true });
    renameSync(dir, target);
    try {
      const fd = openSync(dirname(target), 'r');
      fsyncSync(fd);
      closeSync(fd);
    } catch {
      // fsync of a directory is not possible everywhere; the rename itself is atomic.
    }
    return target;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/**
 * Obtains libtorch from `source` (libtorch-source.mjs's torchSource) into `target`: finds the wheel in the index (or
 * takes the archive URL), downloads it into `<cacheRoot>/downloads`, unpacks it atomically and deletes the download.
 * Throws DownloadError (with `unreachable` when the host could not be reached). The caller runs cleanStale first.
 */
export async function fetchLibtorch(source, target, { cacheRoot, inspect, log = () => {}, onProgress = progressPrinter(), env = process.env, glibc = null }) {
  const dispatcher = makeDispatcher(env);
  try {
    const file =
      source.kind === 'wheel'
        ? await findWheel(source, { dispatcher, log, glibc })
        : { fileName: source.fileName, url: source.url, sha256: source.sha256 };
    if (!file.sha256) log(`sftkit: no sha256 is published with ${file.url}; the download is not verified`);
    const dest = join(cacheRoot, 'downloads', file.fileName);
    log(`sftkit: downloading ${file.url} (once; unpacked into ${target})`);
    await downloadFile(file.url, dest, { sha256: file.sha256, dispatcher, log, onProgress, label: file.fileName });
    await installZip(dest, target, {
      cacheRoot,
      prefix: source.prefix,
      marker: { url: file.url, sha256: file.sha256, source: 'download', at: new Date().toISOString() },
      inspect,
      onProgress,
      label: file.fileName,
      log,
    });
    rmSync(dest, { force: true });
    return { dir: target, url: file.url, sha256: file.sha256 };
  } finally {
    await dispatcher.close().catch(() => {});
  }
}
