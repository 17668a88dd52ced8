// CPU memory pool for large tensors (see cpu_pool.h): memfd pages, re-mapped between blocks instead of returned to
// the kernel. One pool per process, because libtorch has one CPU allocator per process; it is created on first use
// and never destroyed (tensors may outlive any owner we could give it).
// Fork: the pages are MAP_SHARED, so a child made by fork() without exec would share tensor memory with the parent;
// Node only forks to exec (child_process), and sftkit's workers are spawned processes.
#include "cpu_pool.h"

#include <c10/core/CPUAllocator.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "errors.h"

namespace sft {
namespace {

// A byte range of the memfd.
struct Run {
  std::size_t offset;
  std::size_t length;
};

// A mapped block: `bytes` of virtual memory at `base`, backed by `runs` in virtual order.
struct Block {
  char* base = nullptr;
  std::size_t bytes = 0;
  std::vector<Run> runs;
  std::multimap<std::size_t, Block*>::iterator slot;  // while cached: its entry by size
  std::list<Block*>::iterator age;                    // while cached: its place in the order of freeing
};

// Pages of at most this many other blocks are gathered for one request; the rest grows the memfd, which bounds the
// mappings (VMAs) per block.
constexpr std::size_t kMaxRunsPerBlock = 256;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

class CpuPool final : public c10::Allocator {
 public:
  explicit CpuPool(int fd) : fd_(fd), fallback_(c10::GetDefaultCPUAllocator()) {}

  c10::DataPtr allocate(std::size_t n) override {
    if (n < kPoolMinBytes) return fallback_->allocate(n);
    void* p = take((n + kPoolGranule - 1) / kPoolGranule * kPoolGranule);
    return {p, p, &CpuPool::delete_block, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CpuPool::delete_block; }

  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }

  CpuPoolStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    CpuPoolStats s = stats_;
    s.live_bytes = live_bytes_;
    s.cached_bytes = cached_bytes_;
    s.unbacked_bytes = 0;
    for (const auto& [offset, length] : unbacked_) s.unbacked_bytes += length;
    return s;
  }

  std::size_t release() {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t released = 0;
    for (auto& [bytes, block] : cache_) {
      munmap(block->base, block->bytes);
      for (const Run& r : block->runs) give_back_pages(r);
      released += block->bytes;
      delete block;
    }
    cache_.clear();
    by_age_.clear();
    cached_bytes_ = 0;
    return released;
  }

  static CpuPool* instance() {
    static CpuPool* pool = []() -> CpuPool* {
      int fd = memfd_create("sftkit-cpu-pool", MFD_CLOEXEC);
      return fd < 0 ? nullptr : new CpuPool(fd);
    }();
    return pool;
  }

 private:
  static void delete_block(void* p) {
    CpuPool* pool = instance();
    if (!pool->put(p)) pool->fallback_->raw_deleter()(p);  // a small block from raw_allocate
  }

  // Back into the cache, still mapped. False when `p` is not one of ours.
  bool put(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) return false;
    Block* b = it->second;
    live_.erase(it);
    live_bytes_ -= b->bytes;
    b->slot = cache_.emplace(b->bytes, b);
    b->age = by_age_.insert(by_age_.end(), b);
    cached_bytes_ += b->bytes;
    return true;
  }

  void* take(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    Block* block = nullptr;
    auto hit = cache_.find(bytes);
    if (hit != cache_.end()) {
      block = hit->second;
      cache_.erase(hit);
      by_age_.erase(block->age);
      cached_bytes_ -= bytes;
      ++stats_.reuses;
    } else {
      block = assemble(bytes);
    }
    live_.emplace(block->base, block);
    live_bytes_ += bytes;
    stats_.peak_bytes = std::max(stats_.peak_bytes, live_bytes_ + cached_bytes_);
    stats_.peak_live_bytes = std::max(stats_.peak_live_bytes, live_bytes_);
    return block->base;
  }

  // A new block of `bytes` from pages of cached blocks, the longest-cached first (blocks freed a moment ago are the
  // likeliest to be asked for again: the layers of a step repeat their sizes), then pages given back by release(),
  // then new pages.
  Block* assemble(std::size_t bytes) {
    std::vector<Run> runs;
    std::size_t need = bytes;
    while (need > 0 && !by_age_.empty() && runs.size() < kMaxRunsPerBlock) {
      Block* victim = by_age_.front();
      cache_.erase(victim->slot);
      std::size_t got = std::min(need, victim->bytes);
      cut_tail(victim, got, runs);
      cached_bytes_ -= got;
      if (victim->bytes > 0) {
        victim->slot = cache_.emplace(victim->bytes, victim);  // keeps its age
      } else {
        by_age_.pop_front();
        delete victim;
      }
      need -= got;
    }
    while (need > 0 && !unbacked_.empty()) {
      auto u = unbacked_.begin();
      Run r{u->first, std::min(need, u->second)};
      if (r.length < u->second) unbacked_.emplace(u->first + r.length, u->second - r.length);
      unbacked_.erase(u);
      runs.push_back(r);
      need -= r.length;
    }
    if (need > 0) {
      try {
        runs.push_back(grow(need));
      } catch (...) {
        for (const Run& r : runs) give_back_pages(r);
        throw;
      }
    }
    std::sort(runs.begin(), runs.end(), [](const Run& a, const Run& b) { return a.offset < b.offset; });
    std::vector<Run> merged;
    for (const Run& r : runs) {
      if (!merged.empty() && merged.back().offset + merged.back().length == r.offset) {
        merged.back().length += r.length;
      } else {
        merged.push_back(r);
      }
    }
    auto* block = new Block{nullptr, bytes, std::move(merged)};
    try {
      map_block(*block);
    } catch (...) {
      for (const Run& r : block->runs) give_back_pages(r);
      if (block->runs.size() == 1) {
        delete block;
        throw;
      }
      // Out of mappings (vm.max_map_count): one contiguous run of new pages instead.
      Run fresh{0, 0};
      try {
        fresh = grow(bytes);
        block->runs = {fresh};
        map_block(*block);
      } catch (...) {
        if (fresh.length > 0) give_back_pages(fresh);
        delete block;
        throw;
      }
    }
    ++stats_.remaps;
    stats_.remapped_bytes += bytes;
    return block;
  }

  // `need` new bytes at the end of the memfd (allocated now, so running out of memory is an error here, not a SIGBUS
  // at first touch).
  Run grow(std::size_t need) {
    if (fallocate(fd_, 0, static_cast<off_t>(size_), static_cast<off_t>(need)) != 0) {
      throw Error(kCodeNative, "CPU memory pool: cannot grow by " + std::to_string(need) + " bytes (" + errno_text("fallocate") + ")");
    }
    Run r{size_, need};
    size_ += need;
    stats_.grown_bytes += need;
    return r;
  }

  // Moves the last `bytes` of `victim` (its tail runs) to `out` and unmaps them from the victim.
  static void cut_tail(Block* victim, std::size_t bytes, std::vector<Run>& out) {
    std::size_t left = bytes;
    while (left > 0) {
      Run& r = victim->runs.back();
      if (r.length <= left) {
        out.push_back(r);
        left -= r.length;
        victim->runs.pop_back();
      } else {
        out.push_back({r.offset + r.length - left, left});
        r.length -= left;
        left = 0;
      }
    }
    munmap(victim->base + victim->bytes - bytes, bytes);
    victim->bytes -= bytes;
  }

  void map_block(Block& b) {
    constexpr int kProt = PROT_READ | PROT_WRITE;
    if (b.runs.size() == 1) {
      void* p = mmap(nullptr, b.bytes, kProt, MAP_SHARED | MAP_POPULATE, fd_, static_cast<off_t>(b.runs[0].offset));
      if (p == MAP_FAILED) throw Error(kCodeNative, "CPU memory pool: " + errno_text("mmap"));
      b.base = static_cast<char*>(p);
      return;
    }
    void* base = mmap(nullptr, b.bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) throw Error(kCodeNative, "CPU memory pool: " + errno_text("mmap"));
    std::size_t pos = 0;
    for (const Run& r : b.runs) {
      void* p = mmap(static_cast<char*>(base) + pos, r.length, kProt, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd_,
                     static_cast<off_t>(r.offset));
      if (p == MAP_FAILED) {
        std::string why = errno_text("mmap");
        munmap(base, b.bytes);
        throw Error(kCodeNative, "CPU memory pool: " + why);
      }
      pos += r.length;
    }
    b.base = static_cast<char*>(base);
  }

  // Frees the pages of `r` in the memfd (no RSS) and keeps the range for later requests, coalesced.
  void give_back_pages(const Run& r) {
    fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(r.offset),
              static_cast<off_t>(r.length));
    Run merged = r;
    auto next = unbacked_.lower_bound(r.offset);
    if (next != unbacked_.end() && merged.offset + merged.length == next->first) {
      merged.length += next->second;
      next = unbacked_.erase(next);
    }
    if (next != unbacked_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second == merged.offset) {
        merged.offset = prev->first;
        merged.length += prev->second;
        unbacked_.erase(prev);
      }
    }
    unbacked_.emplace(merged.offset, merged.length);
  }

  const int fd_;
  c10::Allocator* const fallback_;
  std::mutex mu_;
  std::size_t size_ = 0;  // memfd length
  std::unordered_map<void*, Block*> live_;
  std::multimap<std::size_t, Block*> cache_;  // by size
  std::list<Block*> by_age_;                  // the same blocks, longest-cached first
  std::map<std::size_t, std::size_t> unbacked_;  // offset -> length
  std::size_t live_bytes_ = 0;
  std::size_t cached_bytes_ = 0;
  CpuPoolStats stats_;
};

}  // namespace

void set_cpu_pool_enabled(bool enabled) {
  if (!enabled) {
    c10::SetCPUAllocator(c10::GetDefaultCPUAllocator(), 0);
    return;
  }
  CpuPool* pool = CpuPool::instance();
  if (pool == nullptr) throw Error(kCodeUnsupported, "CPU memory pool: memfd_create is not available here");
  c10::SetCPUAllocator(pool, 0);
  if (c10::GetCPUAllocator() != pool) {
    throw Error(kCodeNative, "CPU memory pool: libtorch kept another CPU allocator of higher priority");
  }
}

CpuPoolStats cpu_pool_stats() {
  CpuPool* pool = CpuPool::instance();
  if (pool == nullptr) return {};
  CpuPoolStats s = pool->stats();
  s.installed = cpu_pool_installed();
  return s;
}

bool cpu_pool_installed() {
  CpuPool* pool = CpuPool::instance();
  return pool != nullptr && c10::GetCPUAllocator() == pool;
}

std::size_t release_cpu_pool() {
  CpuPool* pool = CpuPool::instance();
  return pool == nullptr ? 0 : pool->release();
}

}  // namespace sft
