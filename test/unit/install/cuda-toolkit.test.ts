// scripts/cuda-toolkit.mjs: the toolkit root that build:cuda-check and the device check's fallback build use: the
// local nvcc's toolkit plus pip's nvidia-* libraries (cu13's nvidia/cu13/lib layout too), unversioned names added,
// the local toolkit's files first, CMake's targets/x86_64-linux view.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { assembleToolkit } from '../../../scripts/cuda-toolkit.mjs';

const root = mkdtempSync(join(tmpdir(), 'sftkit-cuda-toolkit-'));
after(() => rmSync(root, { recursive: true, force: true }));
const file = (p: string, text = '') => {
  mkdirSync(dirname(join(root, p)), { recursive: true });
  writeFileSync(join(root, p), text);
};

test('assembleToolkit: nvcc toolkit + nvidia wheels, unversioned library names, targets/x86_64-linux', () => {
  file('cuda/bin/nvcc', '#!/bin/sh\n');
  file('cuda/nvvm/libdevice/libdevice.10.bc');
  file('cuda/include/cuda_runtime.h', 'local');
  file('cuda/lib64/libcudart.so.13', 'local cudart');
  file('site/nvidia/cu13/lib/libcudart.so.13', 'wheel cudart');
  file('site/nvidia/cu13/lib/libcublas.so.13.1.0');
  file('site/nvidia/cu13/include/cublas_v2.h');
  file('site/nvidia/cudnn/lib/libcudnn.so.9');
  file('site/nvidia/cudnn/include/cudnn.h');
  const out = assembleToolkit({ nvcc: join(root, 'cuda', 'bin', 'nvcc'), nvidiaDirs: [join(root, 'site', 'nvidia'), join(root, 'absent')], out: join(root, 'tk') });
  assert.equal(out, join(root, 'tk'));
  assert.equal(realpathSync(join(out, 'bin')), realpathSync(join(root, 'cuda', 'bin')));
  assert.ok(existsSync(join(out, 'nvvm', 'libdevice', 'libdevice.10.bc')));
  for (const f of ['include/cuda_runtime.h', 'include/cublas_v2.h', 'include/cudnn.h', 'lib64/libcublas.so', 'lib64/libcublas.so.13.1.0', 'lib64/libcudnn.so', 'lib64/libcudart.so']) {
    assert.ok(existsSync(join(out, f)), f);
  }
  // The local toolkit's cudart wins over the wheel's.
  assert.equal(readlinkSync(join(out, 'lib64', 'libcudart.so.13')), join(root, 'cuda', 'lib64', 'libcudart.so.13'));
  assert.ok(existsSync(join(out, 'targets', 'x86_64-linux', 'lib', 'libcudnn.so.9')));
  assert.ok(existsSync(join(out, 'targets', 'x86_64-linux', 'include', 'cudnn.h')));
  // Assembling again replaces the old root.
  assembleToolkit({ nvcc: join(root, 'cuda', 'bin', 'nvcc'), out });
  assert.ok(!existsSync(join(out, 'lib64', 'libcudnn.so.9')));
});
