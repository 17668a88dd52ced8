// A CUDA toolkit root that CMake's FindCUDAToolkit and Torch's cuda.cmake accept, assembled from symbolic links: a
// local nvcc's toolkit (bin/, nvvm/, share/, headers, lib64/) plus the libraries and headers of pip's nvidia-* wheels
// (site-packages/nvidia/<package>/{lib,include}), with the unversioned library names find_library looks for. Used by
// `npm run build:cuda-check` (the CUDA wheels from the pip index) and by scripts/device-check.sh when the GPU
// machine's own toolkit lacks libraries its Python torch links (cuDNN and friends live in that venv).
import { existsSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Builds `out` from the toolkit of `nvcc` (a path to the nvcc binary) and every `<dir>/<package>/{lib,include}` of
 * `nvidiaDirs` (site-packages/nvidia folders). The first file of a name wins (the local toolkit's before the wheels').
 * Returns `out`.
 */
export function assembleToolkit({ nvcc, nvidiaDirs = [], out }) {
  const localToolkit = dirname(dirname(realpathSync(nvcc)));
  rmSync(out, { recursive: true, force: true });
  for (const d of ['include', 'lib64']) mkdirSync(join(out, d), { recursive: true });
  symlinkSync(join(localToolkit, 'bin'), join(out, 'bin'));
  for (const d of ['nvvm', 'share']) if (existsSync(join(localToolkit, d))) symlinkSync(join(localToolkit, d), join(out, d));
  const link = (from, dir) => {
    for (const f of readdirSync(from)) {
      const to = join(out, dir, f);
      if (!existsSync(to)) symlinkSync(join(from, f), to);
      const m = /^(lib.+\.so)(\.\d+)+$/.exec(f);
      if (dir === 'lib64' && m && !existsSync(join(out, dir, m[1]))) symlinkSync(join(from, f), join(out, dir, m[1]));
    }
  };
  if (existsSync(join(localToolkit, 'include'))) link(join(localToolkit, 'include'), 'include');
  if (existsSync(join(localToolkit, 'lib64'))) link(join(localToolkit, 'lib64'), 'lib64');
  for (const nvidia of nvidiaDirs) {
    if (!existsSync(nvidia)) continue;
    for (const pkg of readdirSync(nvidia).sort()) {
      for (const sub of ['include', 'lib']) {
        const from = join(nvidia, pkg, sub);
        if (existsSync(from)) link(from, sub === 'lib' ? 'lib64' : 'include');
      }
    }
  }
  if (existsSync(join(localToolkit, 'lib64', 'stubs')) && !existsSync(join(out, 'lib64', 'stubs'))) symlinkSync(join(localToolkit, 'lib64', 'stubs'), join(out, 'lib64', 'stubs'));
  // CMake's CUDA support looks in targets/<arch>/{lib,include} (nvcc reports that layout).
  mkdirSync(join(out, 'targets', 'x86_64-linux'), { recursive: true });
  symlinkSync(join(out, 'lib64'), join(out, 'targets', 'x86_64-linux', 'lib'));
  symlinkSync(join(out, 'include'), join(out, 'targets', 'x86_64-linux', 'include'));
  return out;
}
