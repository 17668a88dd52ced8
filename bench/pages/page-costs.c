// What a 4 KiB page costs on this machine, per way of getting memory: the numbers behind the CPU memory pool
// (native/engine/cpu_pool.h). 1 GiB in 64 MiB blocks, 4 rounds each; prints one JSON object (microseconds per page).
// Build and run: cc -O2 -o /tmp/page-costs bench/pages/page-costs.c && /tmp/page-costs
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  const size_t pool = (size_t)1 << 30, block = (size_t)64 << 20, pages = pool / 4096, rounds = 4;
  int fd = memfd_create("page-costs", 0);
  if (fd < 0 || ftruncate(fd, (off_t)pool) != 0) return perror("memfd"), 1;
  char* all = mmap(NULL, pool, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  double t = now();
  memset(all, 1, pool);
  double first_touch = (now() - t) / pages * 1e6;
  // The pool's way: existing memfd pages mapped into a new range (MAP_POPULATE), then unmapped.
  t = now();
  for (size_t r = 0; r < rounds; r++)
    for (size_t off = 0; off < pool; off += block) {
      char* p = mmap(NULL, block, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)off);
      p[0] = 1;
      munmap(p, block);
    }
  double remap = (now() - t) / (rounds * pages) * 1e6;
  // The same pages faulted in one by one.
  t = now();
  for (size_t r = 0; r < rounds; r++)
    for (size_t off = 0; off < pool; off += block) {
      char* p = mmap(NULL, block, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
      for (size_t i = 0; i < block; i += 4096) p[i] = 1;
      munmap(p, block);
    }
  double remap_faults = (now() - t) / (rounds * pages) * 1e6;
  // glibc's way for blocks over its mmap threshold: fresh anonymous pages (fault + zero), unmapped at free.
  t = now();
  for (size_t r = 0; r < rounds; r++)
    for (size_t off = 0; off < pool; off += block) {
      char* p = mmap(NULL, block, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      for (size_t i = 0; i < block; i += 4096) p[i] = 1;
      munmap(p, block);
    }
  double anon = (now() - t) / (rounds * pages) * 1e6;
  // For scale: writing a page that is already mapped.
  t = now();
  for (size_t r = 0; r < rounds; r++) memset(all, (int)r, pool);
  double memset_us = (now() - t) / (rounds * pages) * 1e6;
  printf("{\"us_per_page\":{\"memfd_first_touch\":%.3f,\"memfd_remap_populate\":%.3f,\"memfd_remap_faults\":%.3f,"
         "\"anon_fresh_fault\":%.3f,\"memset_mapped\":%.3f}}\n",
         first_touch, remap, remap_faults, anon, memset_us);
  return 0;
}
