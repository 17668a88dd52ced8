// `npm run device:pack`: fills .device/ (ignored by git) with what a GPU machine without Node and without network
// needs to run scripts/device-check.sh on this checkout: this machine's node binary (xz), the production
// node_modules (the runtime dependencies and theirs, resolved as Node resolves them; tar.xz) and a manifest. The device
// tool sends the working tree plus `.device` when a call carries it. Usage:
//   node scripts/device-pack.mjs [--out DIR] [--node PATH] [--max-mib 50]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The package directories (relative to `root`, e.g. `node_modules/tsx`, `node_modules/a/node_modules/b`) that the
 * `dependencies` of root's package.json need, transitively: each name resolved as Node does (the requiring package's
 * own node_modules, then upwards, never above `root`). Missing optional dependencies (other platforms' binaries) are
 * left out; a missing required one is an error.
 */
export function productionPackages(root = ROOT) {
  const found = new Set();
  const rootPkg = readJson(join(root, 'package.json'));
  const queue = Object.keys(rootPkg.dependencies ?? {}).map((name) => ({ name, from: root, optional: false, by: 'package.json' }));
  while (queue.length) {
    const { name, from, optional, by } = queue.shift();
    const dir = resolvePackage(root, name, from);
    if (!dir) {
      if (optional) continue;
      throw new Error(`device:pack: ${name} (needed by ${by}) is not installed; run npm install first`);
    }
    const rel = relative(root, dir);
    if (found.has(rel)) continue;
    found.add(rel);
    const pkg = readJson(join(dir, 'package.json'));
    const optionalNames = new Set([...Object.keys(pkg.optionalDependencies ?? {}), ...Object.entries(pkg.peerDependenciesMeta ?? {}).filter(([, m]) => m?.optional).map(([n]) => n)]);
    const deps = { ...(pkg.dependencies ?? {}), ...(pkg.optionalDependencies ?? {}) };
    for (const n of Object.keys(deps)) queue.push({ name: n, from: dir, optional: optionalNames.has(n), by: rel });
    // Installed peers count too (npm 7+ installs them); optional or absent ones are left out.
    for (const n of Object.keys(pkg.peerDependencies ?? {})) queue.push({ name: n, from: dir, optional: true, by: rel });
  }
  return [...found].sort();
}

function resolvePackage(root, name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || !dir.startsWith(root + sep)) return null;
  }
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** xz -T0 -6 of `src` into `dst` (through a temporary file, so a cut run leaves no half archive). */
function xzFile(src, dst) {
  const tmp = `${dst}.tmp`;
  execFileSync('sh', ['-c', 'xz -T0 -6 -c "$1" > "$2"', 'sh', src, tmp], { stdio: ['ignore', 'inherit', 'inherit'] });
  renameSync(tmp, dst);
}

/**
 * Writes `out`/node.xz (unless `node` is null), `out`/node_modules.tar.xz and `out`/manifest.json. The node archive is
 * kept when the manifest says it holds the same binary. Returns the manifest.
 */
export function pack({ root = ROOT, out = join(ROOT, '.device'), node = process.execPath, maxMiB = 50, log = (m) => console.error(m) } = {}) {
  try {
    execFileSync('xz', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('device:pack needs the xz command (xz-utils): the GPU machine unpacks with xz or Python\'s lzma');
  }
  mkdirSync(out, { recursive: true });
  const manifestPath = join(out, 'manifest.json');
  const previous = existsSync(manifestPath) ? readJson(manifestPath) : null;
  const files = {};
  let nodeInfo = null;
  if (node) {
    const nodeXz = join(out, 'node.xz');
    const st = statSync(node);
    const nodeId = { path: node, size: st.size, mtimeMs: st.mtimeMs };
    const same = previous?.node && previous.node.size === nodeId.size && previous.node.mtimeMs === nodeId.mtimeMs && existsSync(nodeXz) && statSync(nodeXz).size === previous.files?.['node.xz'];
    if (!same) {
      log(`device:pack: compressing ${node} (${mib(st.size)}) with xz`);
      xzFile(node, nodeXz);
    }
    const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
    files['node.xz'] = statSync(nodeXz).size;
    nodeInfo = { ...nodeId, version, sha256: same ? previous.node.sha256 : sha256(node) };
  }

  const packages = productionPackages(root);
  const list = join(out, 'node_modules.list');
  writeFileSync(list, `${packages.join('\n')}\n`);
  const tarXz = join(out, 'node_modules.tar.xz');
  log(`device:pack: packing ${packages.length} production packages of node_modules`);
  execFileSync('sh', ['-c', 'tar --owner=0 --group=0 --exclude="*.md" --exclude="*.map" -C "$1" -cf - -T "$2" | xz -T0 -6 -c > "$3.tmp" && mv "$3.tmp" "$3"', 'sh', root, list, tarXz], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  rmSync(list);
  files['node_modules.tar.xz'] = statSync(tarXz).size;

  const manifest = {
    created: new Date().toISOString(),
    ...(node ? { node: nodeInfo } : {}),
    packages,
    files,
    totalBytes: Object.values(files).reduce((a, b) => a + b, 0),
  };
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  for (const [f, n] of Object.entries(files)) log(`device:pack: ${join(relative(process.cwd(), out) || '.', f)}  ${mib(n)}`);
  log(`device:pack: total ${mib(manifest.totalBytes)} (limit ${maxMiB} MiB)`);
  if (manifest.totalBytes > maxMiB * 2 ** 20) throw new Error(`device:pack: ${mib(manifest.totalBytes)} is over the ${maxMiB} MiB limit`);
  return manifest;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (k) => {
    const i = process.argv.indexOf(k);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  try {
    pack({
      ...(arg('--out') ? { out: resolve(arg('--out')) } : {}),
      ...(arg('--node') ? { node: resolve(arg('--node')) } : {}),
      ...(arg('--max-mib') ? { maxMiB: Number(arg('--max-mib')) } : {}),
    });
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
