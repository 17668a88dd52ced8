// What `sftkit doctor` reports (also a library call): the package, Node and N-API, where libtorch came from, and the
// loaded addon's runtime facts (CPU capability, MKL code path, threads, CUDA, data-parallel backends, build flags).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { binding, packageRoot, readLibtorchRecord, type LibtorchRecord, type RuntimeInfo } from './binding.ts';

export interface DoctorReport {
  sftkit: { version: string; root: string };
  node: { version: string; napi: string; platform: string; arch: string };
  libtorch: (LibtorchRecord & { recorded: true }) | { recorded: false };
  addon: { loaded: true; info: Omit<RuntimeInfo, 'torchConfig' | 'parallelInfo'> } | { loaded: false; error: string };
  ok: boolean;
}

export async function doctorReport(): Promise<DoctorReport> {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  let addon: DoctorReport['addon'];
  try {
    const { torchConfig: _config, parallelInfo: _parallel, ...info } = binding().info();
    addon = { loaded: true, info };
  } catch (e) {
    addon = { loaded: false, error: e instanceof Error ? e.message : String(e) };
  }
  // Read after loading: a first use may just have run the install step that records it.
  const record = readLibtorchRecord();
  return {
    sftkit: { version: pkg.version, root: packageRoot },
    node: { version: process.version, napi: process.versions.napi ?? '?', platform: process.platform, arch: process.arch },
    libtorch: record ? { recorded: true, ...record } : { recorded: false },
    addon,
    ok: addon.loaded,
  };
}
