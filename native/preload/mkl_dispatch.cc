// MKL's kernel dispatch by instruction set instead of by CPU vendor. Built as its own small library
// (libsftkit_mkl_dispatch.so, no libtorch dependency) that src/native/binding.ts loads with RTLD_GLOBAL *before*
// libtorch_cpu.so, so that the MKL inside libtorch_cpu binds its call of mkl_serv_intel_cpu_true() to the
// definition below (the symbol is exported from libtorch_cpu and called through its PLT).
//
// Why: MKL asks that function whether the CPU is an Intel one and, when it is not, never takes its AVX-512
// code path: on an AMD Zen 4 with full AVX-512 it runs its AVX2 "zen" kernels. Measured here (2-core EPYC Zen 4,
// bench/README.md "MKL dispatch"): fp32 sgemm 2048^3 150 -> 218 GFLOP/s, GPT-2 training +20%.
// The answer below is "Intel" only when the CPU has the whole AVX-512 set MKL's AVX-512 path uses (F, CD, BW, DQ,
// VL); MKL then picks its kernels from the CPU's feature flags as it does on Intel parts. Without that set the
// answer is MKL's own (the next definition, libtorch_cpu's). SFTKIT_MKL_DISPATCH=vendor keeps MKL's own choice
// everywhere (binding.ts then does not load this library).
#include <dlfcn.h>

namespace sft {
namespace {

bool has_avx512_set() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

}  // namespace
}  // namespace sft

extern "C" __attribute__((visibility("default"))) int mkl_serv_intel_cpu_true() {
  if (sft::has_avx512_set()) return 1;
  using Fn = int (*)();
  auto next = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "mkl_serv_intel_cpu_true"));
  return next != nullptr ? next() : 0;
}
