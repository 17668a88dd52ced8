// Where sftkit's install downloads libtorch from, as pure functions of (platform, arch, variant, version, env): the
// variant (cpu or a CUDA build, chosen from nvidia-smi's output), the URL of the PEP 503 "simple" index page or of the
// libtorch archive, the parsing of an index page and the choice of the wheel for this platform, and the arguments of
// the `pip download` fallback. No I/O here: scripts/libtorch-download.mjs fetches, scripts/libtorch.mjs decides.

/** The PyTorch download site's build names. */
export const TORCH_VARIANTS = Object.freeze(['cpu', 'cu126', 'cu128', 'cu130']);

/** The CUDA version each CUDA variant is built with (newest first). */
export const CUDA_VARIANTS = Object.freeze([
  { variant: 'cu130', cuda: [13, 0] },
  { variant: 'cu128', cuda: [12, 8] },
  { variant: 'cu126', cuda: [12, 6] },
]);

/**
 * The newest CUDA each Linux driver branch supports (NVIDIA's "CUDA Toolkit and corresponding driver versions"
 * table, GA releases), for nvidia-smi output without the "CUDA Version" header field.
 */
export const DRIVER_CUDA = Object.freeze([
  { driver: [580, 65, 6], cuda: [13, 0] },
  { driver: [570, 124, 6], cuda: [12, 8] },
  { driver: [560, 28, 3], cuda: [12, 6] },
  { driver: [555, 42, 2], cuda: [12, 5] },
  { driver: [550, 54, 14], cuda: [12, 4] },
  { driver: [525, 60, 13], cuda: [12, 0] },
]);

export const PYTORCH_SITE = 'https://download.pytorch.org';
export const PYPI_SIMPLE = 'https://pypi.org/simple';
export const CACHE_MARKER = '.sftkit-complete';

/** A configuration or platform problem that no other download source can fix (bad variant, unsupported OS). */
export class SourceError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SourceError';
  }
}

const cmp = (a, b) => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
};
const numbers = (s) => s.split('.').map(Number);

/**
 * Reads nvidia-smi's plain output: the driver version and the newest CUDA it supports ("CUDA Version: X.Y" in the
 * header). Null when the text shows no driver.
 */
export function parseNvidiaSmi(text) {
  if (typeof text !== 'string') return null;
  const driver = /Driver Version:\s*([\d.]+)/.exec(text)?.[1] ?? null;
  const cuda = /CUDA Version:\s*(\d+\.\d+)/.exec(text)?.[1] ?? null;
  if (!driver && !cuda) return null;
  return { driver, cuda };
}

/** The newest CUDA a driver version supports, from DRIVER_CUDA; null when the driver is older than the table. */
export function cudaOfDriver(driver) {
  const d = numbers(driver);
  const row = DRIVER_CUDA.find((r) => cmp(d, r.driver) >= 0);
  return row ? row.cuda.join('.') : null;
}

/** The newest variant built with a CUDA no newer than `cuda` ("X.Y"); null when every variant needs a newer one. */
export function newestVariantFor(cuda) {
  const c = numbers(cuda);
  return CUDA_VARIANTS.find((v) => cmp(c, v.cuda) >= 0)?.variant ?? null;
}

/**
 * The variant to obtain: SFTKIT_TORCH_VARIANT when set (cpu|cu126|cu128|cu130), else `auto`: cpu, unless this is
 * Linux x86_64 and nvidia-smi reports a driver, then the newest CUDA variant that driver supports. `nvidiaSmi` is a
 * function returning nvidia-smi's output (or null when it is missing or fails); it is only called for `auto` on Linux.
 * Returns { variant, why } where `why` says how the choice was made.
 */
export function chooseVariant({ env = {}, platform, arch, nvidiaSmi = () => null }) {
  const asked = (env.SFTKIT_TORCH_VARIANT ?? '').trim() || 'auto';
  if (asked !== 'auto') {
    if (!TORCH_VARIANTS.includes(asked)) {
      throw new SourceError(
        `SFTKIT_TORCH_VARIANT=${asked} is not one of auto, ${TORCH_VARIANTS.join(', ')} (the PyTorch download site's build names)`,
      );
    }
    if (asked !== 'cpu' && platform !== 'linux') {
      throw new SourceError(`SFTKIT_TORCH_VARIANT=${asked}: CUDA builds of libtorch exist for Linux only, this is ${platform}`);
    }
    return { variant: asked, why: `SFTKIT_TORCH_VARIANT=${asked}` };
  }
  if (platform !== 'linux' || arch !== 'x64') return { variant: 'cpu', why: `auto: ${platform}-${arch} has CPU builds only` };
  const smi = parseNvidiaSmi(nvidiaSmi());
  if (!smi) return { variant: 'cpu', why: 'auto: nvidia-smi reports no NVIDIA driver' };
  const cuda = smi.cuda ?? (smi.driver ? cudaOfDriver(smi.driver) : null);
  const how = `nvidia-smi: driver ${smi.driver ?? '?'}`;
  if (!cuda) return { variant: 'cpu', why: `auto: ${how}, too old for any CUDA build of libtorch` };
  const supports = `supports CUDA ${cuda}${smi.cuda ? '' : ' (by the driver table)'}`;
  const variant = newestVariantFor(cuda);
  if (!variant) return { variant: 'cpu', why: `auto: ${how} ${supports}, older than the oldest CUDA build (12.6)` };
  return { variant, why: `auto: ${how} ${supports}` };
}

/** The cache folder of one version and variant, e.g. libtorch-2.13.0-cpu. */
export function cacheDirName(version, variant) {
  return `libtorch-${version}-${variant}`;
}

const trimSlash = (u) => u.replace(/\/+$/, '');

/** Splits a `#sha256=<hex>` fragment off a URL. */
export function splitDigest(url) {
  const u = new URL(url);
  const m = /(?:^#|&)sha256=([0-9a-fA-F]{64})(?:&|$)/.exec(u.hash);
  u.hash = '';
  return { url: u.href, sha256: m ? m[1].toLowerCase() : null };
}

/** The file name a URL points at (its last path segment, URL-decoded: `%2B` becomes `+`). */
export function fileNameOf(url) {
  const last = new URL(url).pathname.split('/').filter(Boolean).pop() ?? '';
  return decodeURIComponent(last);
}

/**
 * Where to download libtorch from, for this platform, variant and version:
 *  - { kind: 'archive', url, sha256, fileName, prefix: 'libtorch/' } for CUDA variants on Linux x86_64 (the site's
 *    libtorch archive bundles the CUDA runtime libraries, which a CUDA wheel does not carry), or whenever
 *    SFTKIT_LIBTORCH_URL is set;
 *  - { kind: 'wheel', indexUrl, pageUrl, version, platformTag, prefix: 'torch/' } otherwise: the pinned wheel from the
 *    PEP 503 index `${SFTKIT_TORCH_INDEX_URL}/torch/` (default https://download.pytorch.org/whl/<variant>, on macOS
 *    PyPI's https://pypi.org/simple, whose wheels carry no local version label).
 * Throws SourceError for a platform with no builds.
 */
export function torchSource({ platform, arch, variant, version, env = {} }) {
  if (!TORCH_VARIANTS.includes(variant)) throw new SourceError(`unknown libtorch variant ${variant}`);
  const cuda = variant !== 'cpu';
  const explicitUrl = (env.SFTKIT_LIBTORCH_URL ?? '').trim();
  const supported =
    (platform === 'linux' && (arch === 'x64' || arch === 'arm64')) || (platform === 'darwin' && arch === 'arm64');
  if (!supported && !explicitUrl) {
    throw new SourceError(
      `no PyTorch ${version} builds to download for ${platform}-${arch} (there are for linux-x64, linux-arm64 and darwin-arm64); ` +
        'set LIBTORCH to an unpacked libtorch or SFTKIT_LIBTORCH_URL to a libtorch zip',
    );
  }
  if (cuda && platform !== 'linux') throw new SourceError(`CUDA builds of libtorch exist for Linux only, this is ${platform}`);
  if (explicitUrl || cuda) {
    if (!explicitUrl && arch !== 'x64') {
      throw new SourceError(
        `the PyTorch site has no ${variant} libtorch archive for linux-${arch}; set SFTKIT_LIBTORCH_URL to one, ` +
          'LIBTORCH to an unpacked libtorch, or SFTKIT_TORCH_VARIANT=cpu',
      );
    }
    const raw = explicitUrl || `${PYTORCH_SITE}/libtorch/${variant}/libtorch-shared-with-deps-${version}%2B${variant}.zip`;
    let parsed;
    try {
      parsed = splitDigest(raw);
    } catch {
      throw new SourceError(`SFTKIT_LIBTORCH_URL=${raw} is not a URL`);
    }
    return { kind: 'archive', url: parsed.url, sha256: parsed.sha256, fileName: fileNameOf(parsed.url), prefix: 'libtorch/' };
  }
  const mac = platform === 'darwin';
  const indexUrl = trimSlash((env.SFTKIT_TORCH_INDEX_URL ?? '').trim() || (mac ? PYPI_SIMPLE : `${PYTORCH_SITE}/whl/${variant}`));
  return {
    kind: 'wheel',
    indexUrl,
    pageUrl: `${indexUrl}/torch/`,
    // PyPI refuses local version labels, so its (macOS) wheels are plain `2.13.0`; the PyTorch site's are `2.13.0+cpu`.
    version: mac ? version : `${version}+${variant}`,
    platformTag: mac ? 'macosx_arm64' : `linux_${arch === 'x64' ? 'x86_64' : 'aarch64'}`,
    prefix: 'torch/',
  };
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'" };
const unescapeHtml = (s) => s.replace(/&(amp|lt|gt|quot|apos|#39);/g, (_, e) => ENTITIES[e]);

/**
 * The file links of a PEP 503 simple index page: [{ fileName, url, sha256 }], hrefs resolved against the page URL,
 * the `#sha256=` fragment split off, file names URL-decoded.
 */
export function parseSimpleIndex(html, pageUrl) {
  const links = [];
  const anchor = /<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>/gi;
  for (const m of html.matchAll(anchor)) {
    const href = unescapeHtml(m[1] ?? m[2] ?? m[3] ?? '');
    let abs;
    try {
      abs = new URL(href, pageUrl).href;
    } catch {
      continue;
    }
    const { url, sha256 } = splitDigest(abs);
    let fileName;
    try {
      fileName = fileNameOf(url);
    } catch {
      continue;
    }
    if (fileName) links.push({ fileName, url, sha256 });
  }
  return links;
}

/** Splits a wheel file name (PEP 427) into its parts; null when it is not one. */
export function parseWheelName(fileName) {
  const m = /^([^-]+)-([^-]+)(?:-(\d[^-]*))?-([^-]+)-([^-]+)-([^-]+)\.whl$/.exec(fileName);
  if (!m) return null;
  return { name: m[1], version: m[2], build: m[3] ?? null, python: m[4].split('.'), abi: m[5], platforms: m[6].split('.') };
}

/** The glibc a manylinux tag requires, as [major, minor]; null for other tags. */
function manylinuxGlibc(tag) {
  let m = /^manylinux_(\d+)_(\d+)_/.exec(tag);
  if (m) return [Number(m[1]), Number(m[2])];
  m = /^manylinux(1|2010|2014)_/.exec(tag);
  if (m) return { 1: [2, 5], 2010: [2, 12], 2014: [2, 17] }[m[1]];
  return null;
}

/** Whether one platform tag of a wheel runs here (platformTag from torchSource; glibc "X.Y" or null when unknown). */
function tagFits(tag, platformTag, glibc) {
  if (platformTag === 'macosx_arm64') return /^macosx_\d+_\d+_(arm64|universal2)$/.test(tag);
  const cpu = platformTag.slice('linux_'.length);
  if (tag === `linux_${cpu}`) return true;
  if (!tag.endsWith(`_${cpu}`)) return false;
  const needs = manylinuxGlibc(tag);
  if (!needs) return false;
  return glibc ? cmp(numbers(glibc), needs) >= 0 : true;
}

/** CPython version of a tag such as cp311 / cp313t as a number (311), or -1; free-threaded builds sort after. */
function cpythonRank(tags) {
  let best = -1;
  for (const t of tags) {
    const m = /^cp(\d)(\d+)(t?)$/.exec(t);
    if (m) best = Math.max(best, Number(m[1]) * 100 + Number(m[2]) - (m[3] ? 0.5 : 0));
  }
  return best;
}

/**
 * Picks the wheel of `version` (exactly, local label included) for `platformTag` among index links, any CPython tag
 * (only torch/lib, torch/include and torch/share are used, which do not depend on it). Deterministic: the newest
 * regular CPython tag, then the file name. Returns { wheel, candidates } where candidates are the version's wheels
 * (for messages); wheel is null when none fits.
 */
export function pickWheel(links, { version, platformTag, glibc = null }) {
  const candidates = [];
  for (const link of links) {
    const w = parseWheelName(link.fileName);
    if (!w || w.name.toLowerCase() !== 'torch' || w.version !== version) continue;
    candidates.push({ ...link, wheel: w });
  }
  const fits = candidates.filter((c) => cpythonRank(c.wheel.python) > 0 && c.wheel.platforms.some((t) => tagFits(t, platformTag, glibc)));
  fits.sort((a, b) => cpythonRank(b.wheel.python) - cpythonRank(a.wheel.python) || (a.fileName < b.fileName ? -1 : a.fileName > b.fileName ? 1 : 0));
  const pick = fits[0];
  return { wheel: pick ? { fileName: pick.fileName, url: pick.url, sha256: pick.sha256 } : null, candidates: candidates.map((c) => c.fileName) };
}

/**
 * The `pip download` fallback for the cpu variant: the requirement and the arguments after `-m pip download` (the
 * variant's index added with --extra-index-url so that a configured index or wheel folder still counts; few retries
 * and a short timeout so that an unreachable network fails in seconds; SFTKIT_TORCH_PIP_ARGS last). Null for CUDA
 * variants: a CUDA wheel lacks the CUDA runtime libraries, which only the libtorch archive bundles.
 */
export function pipDownloadArgs({ platform, arch, variant, version, dest, env = {} }) {
  if (variant !== 'cpu') return null;
  const source = torchSource({ platform, arch, variant, version, env: { ...env, SFTKIT_LIBTORCH_URL: '' } });
  const spec = `torch==${source.version}`;
  const extra = (env.SFTKIT_TORCH_PIP_ARGS ?? '').split(/\s+/).filter(Boolean);
  const index = source.indexUrl === PYPI_SIMPLE ? [] : ['--extra-index-url', source.indexUrl];
  return {
    spec,
    args: [spec, '--no-deps', '--only-binary=:all:', '--retries', '1', '--timeout', '20', ...index, '-d', dest, ...extra],
  };
}
