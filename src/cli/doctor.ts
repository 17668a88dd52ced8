// `sftkit doctor`: where libtorch came from, what the CPU can do, threads, CUDA, and how the addon was built; with
// --model DIR, whether sftkit supports that model directory (what it implements for it, or why not).
import { doctorReport, modelSupport, type DoctorReport, type ModelSupport } from '../native/index.ts';
import { commandOptions, opt } from '../options/index.ts';
import { optionsCommand } from './command.ts';

function formatReport(r: DoctorReport): string {
  const lines = [`sftkit ${r.sftkit.version} (${r.sftkit.root})`, `node ${r.node.version}, N-API ${r.node.napi}, ${r.node.platform}-${r.node.arch}`];
  if (r.libtorch.recorded) {
    lines.push(`libtorch ${r.libtorch.version} (${r.libtorch.variant}) from ${r.libtorch.source}: ${r.libtorch.path}`);
  } else {
    lines.push('libtorch: not recorded (run `npx sftkit setup`)');
  }
  if (r.addon.loaded) {
    const i = r.addon.info;
    lines.push(
      `torch (runtime) ${i.torchVersion}`,
      `CPU: AVX2 ${i.cpu.avx2 ? 'yes' : 'no'}, AVX512 ${i.cpu.avx512 ? 'yes' : 'no'}, FMA ${i.cpu.fma ? 'yes' : 'no'}; ATen kernels: ${i.cpu.capability}`,
      `MKL: ${i.mkl.codePath < 0 ? 'not in this libtorch' : `kernels chosen by ${i.mkl.dispatch === 'isa' ? 'instruction set' : 'CPU vendor (SFTKIT_MKL_DISPATCH=vendor or no dispatch library)'}, code path ${i.mkl.codePath}`}`,
      `threads: ${i.numThreads} intra-op, ${i.numInteropThreads} inter-op`,
      `CUDA: ${i.cudaAvailable ? `available, ${i.cudaDeviceCount} device(s)` : 'not available'}`,
      `data parallel (--nproc): Gloo${i.distributed?.nccl ? `, NCCL (nccl.h ${i.distributed.ncclHeaders})` : '; no NCCL in this addon (needs a CUDA libtorch and nccl.h at build time)'}`,
      `addon build: ${i.build.buildType}, ${i.build.compiler}, flags "${i.build.cxxFlags.trim()}", N-API ${i.build.napiVersion}, C++11 ABI ${i.build.cxx11Abi ? 'on' : 'off'}, torch headers ${i.build.torchHeaders}`,
    );
  } else {
    lines.push(`addon: NOT LOADED\n${r.addon.error}`);
  }
  return `${lines.join('\n')}\n`;
}

function formatSupport(m: ModelSupport): string {
  if (!m.supported) return `${m.dir}: NOT SUPPORTED${m.modelType ? ` (model_type ${m.modelType})` : ''}\n  ${m.code}: ${m.reason}\n`;
  return `${m.dir}: supported (model_type ${m.modelType})\n${m.features.map((f) => `  ${f}\n`).join('')}`;
}

const doctorOptions = commandOptions({
  command: 'doctor',
  shape: {
    json: opt.boolean('print the same as one JSON object').default(false),
    model: opt.string('say whether sftkit supports this Hugging Face model directory, and why not', { placeholder: 'DIR' }).optional(),
  },
});

export const doctorCommand = optionsCommand({
  options: doctorOptions,
  summary: 'show libtorch, CPU capability, threads, CUDA and how the addon was built',
  about: `Usage: sftkit doctor [--json] [--model DIR]

Prints the libtorch version and path (and how it was found), the CPU capability (AVX2/AVX512), intra-op threads,
whether CUDA is available, the data-parallel backends (Gloo; NCCL when built in), and the native addon's build flags.
With --model DIR: only whether the model in DIR (its config.json) is supported, what sftkit implements for it, or
why not (exit 1).

`,
  async run(values, io) {
    if (values.model !== undefined) {
      const m = modelSupport(values.model);
      io.stdout.write(values.json ? `${JSON.stringify(m)}\n` : formatSupport(m));
      return m.supported ? 0 : 1;
    }
    const report = await doctorReport();
    io.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.ok ? 0 : 1;
  },
});
