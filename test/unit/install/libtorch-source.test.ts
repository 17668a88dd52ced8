// The pure half of the libtorch download (scripts/libtorch-source.mjs): variant choice from SFTKIT_TORCH_VARIANT and
// nvidia-smi, the index/archive URL per platform, simple-index parsing, the wheel pick and the pip fallback arguments.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  SourceError,
  cacheDirName,
  chooseVariant,
  cudaOfDriver,
  newestVariantFor,
  parseNvidiaSmi,
  parseSimpleIndex,
  pickWheel,
  pipDownloadArgs,
  torchSource,
} from '../../../scripts/libtorch-source.mjs';

const V = '2.13.0';
const linux = { platform: 'linux', arch: 'x64', version: V };

const SMI_580 = `Tue Dec  2 10:00:00 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 580.65.06              Driver Version: 580.65.06      CUDA Version: 13.0     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
|   0  NVIDIA H100 80GB HBM3          On  |   00000000:18:00.0 Off |                    0 |
+-----------------------------------------+------------------------+----------------------+`;
const SMI_570 = '| NVIDIA-SMI 570.133.20             Driver Version: 570.133.20     CUDA Version: 12.8     |';
const SMI_535 = '| NVIDIA-SMI 535.183.01             Driver Version: 535.183.01   CUDA Version: 12.2     |';
const SMI_FAILED = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.";

test('nvidia-smi: driver and CUDA version from the header; no driver -> null', () => {
  assert.deepEqual(parseNvidiaSmi(SMI_580), { driver: '580.65.06', cuda: '13.0' });
  assert.deepEqual(parseNvidiaSmi(SMI_570), { driver: '570.133.20', cuda: '12.8' });
  assert.deepEqual(parseNvidiaSmi('Driver Version: 560.35.03'), { driver: '560.35.03', cuda: null });
  assert.equal(parseNvidiaSmi(SMI_FAILED), null);
  assert.equal(parseNvidiaSmi(''), null);
  assert.equal(parseNvidiaSmi(null), null);
});

test('driver -> CUDA table and CUDA -> newest variant', () => {
  assert.equal(cudaOfDriver('580.65.06'), '13.0');
  assert.equal(cudaOfDriver('590.1'), '13.0');
  assert.equal(cudaOfDriver('575.51.03'), '12.8');
  assert.equal(cudaOfDriver('560.35.03'), '12.6');
  assert.equal(cudaOfDriver('470.256.02'), null);
  assert.equal(newestVariantFor('13.0'), 'cu130');
  assert.equal(newestVariantFor('13.1'), 'cu130');
  assert.equal(newestVariantFor('12.9'), 'cu128');
  assert.equal(newestVariantFor('12.8'), 'cu128');
  assert.equal(newestVariantFor('12.6'), 'cu126');
  assert.equal(newestVariantFor('12.4'), null);
});

test('variant auto: cpu without a driver, else the newest CUDA build the driver supports', () => {
  const auto = (smi: string | null, platform = 'linux', arch = 'x64') => chooseVariant({ env: {}, platform, arch, nvidiaSmi: () => smi });
  assert.equal(auto(null).variant, 'cpu');
  assert.match(auto(null).why, /no NVIDIA driver/);
  assert.equal(auto(SMI_FAILED).variant, 'cpu');
  assert.deepEqual(auto(SMI_580), { variant: 'cu130', why: 'auto: nvidia-smi: driver 580.65.06 supports CUDA 13.0' });
  assert.equal(auto(SMI_570).variant, 'cu128');
  assert.deepEqual(auto('Driver Version: 560.35.03'), { variant: 'cu126', why: 'auto: nvidia-smi: driver 560.35.03 supports CUDA 12.6 (by the driver table)' });
  const old = auto(SMI_535);
  assert.equal(old.variant, 'cpu');
  assert.match(old.why, /CUDA 12\.2, older than the oldest CUDA build \(12\.6\)/);
  // nvidia-smi is not even asked off linux-x64 (no CUDA builds there).
  const never = () => assert.fail('nvidia-smi must not run');
  assert.equal(chooseVariant({ env: {}, platform: 'darwin', arch: 'arm64', nvidiaSmi: never }).variant, 'cpu');
  assert.equal(chooseVariant({ env: {}, platform: 'linux', arch: 'arm64', nvidiaSmi: never }).variant, 'cpu');
});

test('SFTKIT_TORCH_VARIANT wins over nvidia-smi; a bad value is a clear error', () => {
  const choose = (value: string, platform = 'linux') =>
    chooseVariant({ env: { SFTKIT_TORCH_VARIANT: value }, platform, arch: 'x64', nvidiaSmi: () => SMI_580 });
  assert.deepEqual(choose('cpu'), { variant: 'cpu', why: 'SFTKIT_TORCH_VARIANT=cpu' });
  assert.equal(choose('cu126').variant, 'cu126');
  assert.equal(choose('auto').variant, 'cu130');
  assert.equal(choose(' ').variant, 'cu130');
  assert.throws(() => choose('cuda'), (e: Error) => e instanceof SourceError && /SFTKIT_TORCH_VARIANT=cuda is not one of auto, cpu, cu126, cu128, cu130/.test(e.message));
  assert.throws(() => choose('cu118'), /SFTKIT_TORCH_VARIANT=cu118 is not one of/);
  assert.throws(() => choose('cu130', 'darwin'), /CUDA builds of libtorch exist for Linux only/);
});

test('linux x64 cpu: the wheel index of the PyTorch site, overridable with SFTKIT_TORCH_INDEX_URL', () => {
  assert.deepEqual(torchSource({ ...linux, variant: 'cpu' }), {
    kind: 'wheel',
    indexUrl: 'https://download.pytorch.org/whl/cpu',
    pageUrl: 'https://download.pytorch.org/whl/cpu/torch/',
    version: '2.13.0+cpu',
    platformTag: 'linux_x86_64',
    prefix: 'torch/',
  });
  const mirror = torchSource({ ...linux, variant: 'cpu', env: { SFTKIT_TORCH_INDEX_URL: 'http://mirror.local/pytorch/whl/cpu//' } });
  assert.equal(mirror.kind === 'wheel' && mirror.pageUrl, 'http://mirror.local/pytorch/whl/cpu/torch/');
  assert.equal(cacheDirName(V, 'cpu'), 'libtorch-2.13.0-cpu');
});

test('linux x64 CUDA: the libtorch archive (it bundles the CUDA runtime), overridable with SFTKIT_LIBTORCH_URL', () => {
  assert.deepEqual(torchSource({ ...linux, variant: 'cu130' }), {
    kind: 'archive',
    url: 'https://download.pytorch.org/libtorch/cu130/libtorch-shared-with-deps-2.13.0%2Bcu130.zip',
    sha256: null,
    fileName: 'libtorch-shared-with-deps-2.13.0+cu130.zip',
    prefix: 'libtorch/',
  });
  assert.equal(cacheDirName(V, 'cu130'), 'libtorch-2.13.0-cu130');
  const sha = 'ab'.repeat(32);
  const own = torchSource({ ...linux, variant: 'cu128', env: { SFTKIT_LIBTORCH_URL: `https://mirror.local/lt/libtorch-cu128.zip#sha256=${sha.toUpperCase()}` } });
  assert.deepEqual(own, { kind: 'archive', url: 'https://mirror.local/lt/libtorch-cu128.zip', sha256: sha, fileName: 'libtorch-cu128.zip', prefix: 'libtorch/' });
  // SFTKIT_LIBTORCH_URL also replaces the wheel for cpu.
  assert.equal(torchSource({ ...linux, variant: 'cpu', env: { SFTKIT_LIBTORCH_URL: 'https://mirror.local/lt/cpu.zip' } }).kind, 'archive');
  assert.throws(() => torchSource({ ...linux, variant: 'cpu', env: { SFTKIT_LIBTORCH_URL: 'not a url' } }), /SFTKIT_LIBTORCH_URL=not a url is not a URL/);
});

test('linux aarch64: the cpu wheel for aarch64; no CUDA archive unless SFTKIT_LIBTORCH_URL names one', () => {
  const src = torchSource({ platform: 'linux', arch: 'arm64', variant: 'cpu', version: V });
  assert.equal(src.kind === 'wheel' && src.platformTag, 'linux_aarch64');
  assert.equal(src.kind === 'wheel' && src.pageUrl, 'https://download.pytorch.org/whl/cpu/torch/');
  assert.throws(() => torchSource({ platform: 'linux', arch: 'arm64', variant: 'cu128', version: V }), /no cu128 libtorch archive for linux-arm64/);
  assert.equal(torchSource({ platform: 'linux', arch: 'arm64', variant: 'cu128', version: V, env: { SFTKIT_LIBTORCH_URL: 'https://x/l.zip' } }).kind, 'archive');
});

test('macOS arm64: the plain (unlabelled) wheel from PyPI, as tch-rs does', () => {
  assert.deepEqual(torchSource({ platform: 'darwin', arch: 'arm64', variant: 'cpu', version: V }), {
    kind: 'wheel',
    indexUrl: 'https://pypi.org/simple',
    pageUrl: 'https://pypi.org/simple/torch/',
    version: '2.13.0',
    platformTag: 'macosx_arm64',
    prefix: 'torch/',
  });
  const pypi = `<html><body>
    <a href="https://files.pythonhosted.org/packages/aa/torch-2.13.0-cp312-none-macosx_11_0_arm64.whl#sha256=${'1'.repeat(64)}" data-requires-python="&gt;=3.10">torch-2.13.0-cp312-none-macosx_11_0_arm64.whl</a>
    <a href="https://files.pythonhosted.org/packages/bb/torch-2.13.0-cp312-cp312-manylinux_2_28_x86_64.whl#sha256=${'2'.repeat(64)}">x</a>
    <a href="https://files.pythonhosted.org/packages/cc/torch-2.13.0-cp311-none-macosx_11_0_arm64.whl#sha256=${'3'.repeat(64)}">y</a>
    <a href="https://files.pythonhosted.org/packages/dd/torch-2.12.0-cp313-none-macosx_11_0_arm64.whl#sha256=${'4'.repeat(64)}">z</a>
  </body></html>`;
  const { wheel } = pickWheel(parseSimpleIndex(pypi, 'https://pypi.org/simple/torch/'), { version: '2.13.0', platformTag: 'macosx_arm64' });
  assert.equal(wheel?.fileName, 'torch-2.13.0-cp312-none-macosx_11_0_arm64.whl');
  assert.equal(wheel?.sha256, '1'.repeat(64));
  assert.throws(() => torchSource({ platform: 'darwin', arch: 'arm64', variant: 'cu128', version: V }), /Linux only/);
});

test('unsupported platforms are a clear error that names what to do', () => {
  for (const [platform, arch] of [['win32', 'x64'], ['darwin', 'x64'], ['linux', 'ia32'], ['freebsd', 'x64']] as const) {
    assert.throws(
      () => torchSource({ platform, arch, variant: 'cpu', version: V }),
      (e: Error) =>
        e instanceof SourceError &&
        e.message.includes(`no PyTorch 2.13.0 builds to download for ${platform}-${arch}`) &&
        /set LIBTORCH to an unpacked libtorch or SFTKIT_LIBTORCH_URL/.test(e.message),
    );
  }
  // An explicit archive URL is taken anywhere.
  assert.equal(torchSource({ platform: 'win32', arch: 'x64', variant: 'cpu', version: V, env: { SFTKIT_LIBTORCH_URL: 'https://x/l.zip' } }).kind, 'archive');
});

const sha = (c: string) => c.repeat(64);
// The PyTorch site's layout: absolute-path hrefs, `+` encoded as %2B, the digest in the fragment.
const SITE_PAGE = `<!DOCTYPE html>
<html>
  <body>
    <h1>Links for torch</h1>
    <a href="/whl/cpu/torch-2.12.1%2Bcpu-cp312-cp312-manylinux_2_28_x86_64.whl#sha256=${sha('0')}" data-requires-python=">=3.10">torch-2.12.1+cpu-cp312-cp312-manylinux_2_28_x86_64.whl</a><br/>
    <a href="/whl/cpu/torch-2.13.0%2Bcpu-cp310-cp310-manylinux_2_28_x86_64.whl#sha256=${sha('a')}">torch-2.13.0+cpu-cp310-cp310-manylinux_2_28_x86_64.whl</a><br/>
    <a href="/whl/cpu/torch-2.13.0%2Bcpu-cp313-cp313t-manylinux_2_28_x86_64.whl#sha256=${sha('b')}">torch-2.13.0+cpu-cp313-cp313t-manylinux_2_28_x86_64.whl</a><br/>
    <a href="/whl/cpu/torch-2.13.0%2Bcpu-cp313-cp313-manylinux_2_28_x86_64.whl#sha256=${sha('c')}">torch-2.13.0+cpu-cp313-cp313-manylinux_2_28_x86_64.whl</a><br/>
    <a href="/whl/cpu/torch-2.13.0%2Bcpu-cp313-cp313-manylinux_2_28_aarch64.whl#sha256=${sha('d')}">torch-2.13.0+cpu-cp313-cp313-manylinux_2_28_aarch64.whl</a><br/>
    <a href="/whl/cpu/torch-2.13.0%2Bcpu-cp313-cp313-win_amd64.whl#sha256=${sha('e')}">torch-2.13.0+cpu-cp313-cp313-win_amd64.whl</a><br/>
    <a href="/whl/cpu/torch-2.13.0-cp313-none-macosx_11_0_arm64.whl#sha256=${sha('f')}">torch-2.13.0-cp313-none-macosx_11_0_arm64.whl</a><br/>
  </body>
</html>`;

test('index page: hrefs resolved against the page, %2B decoded, the sha256 fragment split off', () => {
  const links = parseSimpleIndex(SITE_PAGE, 'https://download.pytorch.org/whl/cpu/torch/');
  assert.equal(links.length, 7);
  assert.deepEqual(links[1], {
    fileName: 'torch-2.13.0+cpu-cp310-cp310-manylinux_2_28_x86_64.whl',
    url: 'https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp310-cp310-manylinux_2_28_x86_64.whl',
    sha256: sha('a'),
  });
  // Relative hrefs (../ and bare names), single quotes, entities, a link without a digest.
  const page = `<a href='../files/torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl#sha256=${sha('1')}'>a</a>
    <A HREF="torch-2.13.0%2Bcpu-cp39-cp39-linux_x86_64.whl?x=1&amp;y=2">b</A>
    <a class="x" href=https://other.host/torch-2.13.0%2Bcpu-cp38-cp38-linux_x86_64.whl#md5=00>c</a>`;
  const rel = parseSimpleIndex(page, 'http://127.0.0.1:8080/simple/torch/');
  assert.deepEqual(rel, [
    { fileName: 'torch-2.13.0+cpu-cp311-cp311-linux_x86_64.whl', url: 'http://127.0.0.1:8080/simple/files/torch-2.13.0%2Bcpu-cp311-cp311-linux_x86_64.whl', sha256: sha('1') },
    { fileName: 'torch-2.13.0+cpu-cp39-cp39-linux_x86_64.whl', url: 'http://127.0.0.1:8080/simple/torch/torch-2.13.0%2Bcpu-cp39-cp39-linux_x86_64.whl?x=1&y=2', sha256: null },
    { fileName: 'torch-2.13.0+cpu-cp38-cp38-linux_x86_64.whl', url: 'https://other.host/torch-2.13.0%2Bcpu-cp38-cp38-linux_x86_64.whl', sha256: null },
  ]);
});

test('wheel pick: exact version with its label, this platform, newest regular CPython tag, deterministic', () => {
  const links = parseSimpleIndex(SITE_PAGE, 'https://download.pytorch.org/whl/cpu/torch/');
  const x64 = pickWheel(links, { version: '2.13.0+cpu', platformTag: 'linux_x86_64', glibc: '2.36' });
  assert.equal(x64.wheel?.fileName, 'torch-2.13.0+cpu-cp313-cp313-manylinux_2_28_x86_64.whl');
  assert.equal(x64.wheel?.sha256, sha('c'));
  // The same answer whatever the link order.
  assert.deepEqual(pickWheel([...links].reverse(), { version: '2.13.0+cpu', platformTag: 'linux_x86_64', glibc: '2.36' }).wheel, x64.wheel);
  assert.equal(pickWheel(links, { version: '2.13.0+cpu', platformTag: 'linux_aarch64' }).wheel?.fileName, 'torch-2.13.0+cpu-cp313-cp313-manylinux_2_28_aarch64.whl');
  // A glibc older than manylinux_2_28 rules the wheels out; candidates name what the index has.
  const oldGlibc = pickWheel(links, { version: '2.13.0+cpu', platformTag: 'linux_x86_64', glibc: '2.17' });
  assert.equal(oldGlibc.wheel, null);
  assert.equal(oldGlibc.candidates.length, 5);
  // The version must match exactly: 2.13.0 (no label) is the macOS wheel only.
  assert.equal(pickWheel(links, { version: '2.13.0', platformTag: 'linux_x86_64' }).wheel, null);
  assert.equal(pickWheel(links, { version: '2.13.0', platformTag: 'macosx_arm64' }).wheel?.fileName, 'torch-2.13.0-cp313-none-macosx_11_0_arm64.whl');
  // Compound platform tags and the free-threaded build as the only choice.
  const compound = parseSimpleIndex(
    `<a href="torch-2.13.0%2Bcpu-cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64.whl#sha256=${sha('9')}">t</a>`,
    'http://h/torch/',
  );
  assert.equal(pickWheel(compound, { version: '2.13.0+cpu', platformTag: 'linux_x86_64', glibc: '2.17' }).wheel?.sha256, sha('9'));
});

test('pip fallback: the variant index as an extra index, short retries/timeout, SFTKIT_TORCH_PIP_ARGS last; none for CUDA', () => {
  const args = pipDownloadArgs({ ...linux, variant: 'cpu', dest: '/tmp/d', env: { SFTKIT_TORCH_PIP_ARGS: ' --proxy http://p:3128  --no-cache-dir' } });
  assert.deepEqual(args, {
    spec: 'torch==2.13.0+cpu',
    args: [
      'torch==2.13.0+cpu', '--no-deps', '--only-binary=:all:', '--retries', '1', '--timeout', '20',
      '--extra-index-url', 'https://download.pytorch.org/whl/cpu', '-d', '/tmp/d', '--proxy', 'http://p:3128', '--no-cache-dir',
    ],
  });
  const mirrored = pipDownloadArgs({ ...linux, variant: 'cpu', dest: '/d', env: { SFTKIT_TORCH_INDEX_URL: 'http://m/whl/cpu', SFTKIT_LIBTORCH_URL: 'http://m/l.zip' } });
  assert.ok(mirrored?.args.join(' ').includes('--extra-index-url http://m/whl/cpu'));
  assert.equal(pipDownloadArgs({ ...linux, variant: 'cu130', dest: '/d' }), null);
  const mac = pipDownloadArgs({ platform: 'darwin', arch: 'arm64', variant: 'cpu', version: V, dest: '/d' });
  assert.equal(mac?.spec, 'torch==2.13.0');
  assert.ok(!mac?.args.includes('--extra-index-url'));
});
