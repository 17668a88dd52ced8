// CPU memory pool for large tensors. Physical pages live in one memfd; a tensor's block is a fresh virtual range onto
// some of them. A freed block stays mapped in a cache for the next request of its size; a request with no cached
// block of its size takes pages from other cached blocks (unmapping them there, mapping them here) before the memfd
// grows. So memory freed by one tensor shape (activations in backward) serves another (weight gradients) without
// going back to the kernel and being faulted in and zeroed again, and the pool never holds pages no tensor can use:
// every page is mapped exactly once, so the process's RSS is the pool's true footprint.
// Requests below kPoolMinBytes go to c10's default CPU allocator (glibc).
#pragma once

#include <cstddef>

namespace sft {

inline constexpr std::size_t kPoolMinBytes = std::size_t{1} << 20;  // smaller blocks: default allocator
inline constexpr std::size_t kPoolGranule = std::size_t{64} << 10;  // sizes round up to this

struct CpuPoolStats {
  bool installed = false;
  std::size_t live_bytes = 0;       // blocks held by tensors
  std::size_t cached_bytes = 0;     // freed blocks kept mapped for reuse
  std::size_t unbacked_bytes = 0;   // memfd ranges whose pages were given back (release); no RSS
  std::size_t peak_bytes = 0;       // high-water mark of live + cached (the pool's RSS)
  std::size_t peak_live_bytes = 0;  // high-water mark of live
  std::size_t reuses = 0;           // requests served by a cached block of the same size
  std::size_t remaps = 0;           // requests served by mapping pages taken from other blocks or grown
  std::size_t remapped_bytes = 0;   // bytes mapped by those requests
  std::size_t grown_bytes = 0;      // bytes the memfd grew by (fresh pages)
};

// Makes the pool libtorch's CPU allocator for tensors allocated from now on (blocks allocated before keep their own
// deleters). Idempotent; throws sft::Error when the kernel lacks memfd. `enabled = false` restores the default
// allocator for new tensors; blocks already in the pool are still returned to it.
void set_cpu_pool_enabled(bool enabled);
CpuPoolStats cpu_pool_stats();
// Whether new CPU tensors come from the pool.
bool cpu_pool_installed();
// Unmaps every cached block and gives its pages back to the kernel; returns the bytes released.
std::size_t release_cpu_pool();

}  // namespace sft
