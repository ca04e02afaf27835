// An LD_PRELOAD heap allocation counter for test/bench/run_alloc_count.sh (a measurement, never
// a test). It counts every malloc/calloc/realloc/aligned allocation (operator new goes through
// malloc in libstdc++) of every thread of the process it is preloaded into, forwarding each to
// glibc's own (__libc_*) functions, and writes the counts when asked: each line written to the
// FIFO named by ALLOC_COUNTER_FIFO makes a thread of its own append
//   allocations=N frees=N
// to the file named by ALLOC_COUNTER_OUT. The script snapshots after a warm-up and again after
// a fixed number of requests; the difference divided by the requests is allocations/request.
//
//   cc -O2 -shared -fPIC -o alloc_counter.so test/bench/alloc_counter.c -lpthread
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t n, size_t size);
extern void* __libc_realloc(void* ptr, size_t size);
extern void* __libc_memalign(size_t alignment, size_t size);
extern void __libc_free(void* ptr);

static atomic_ulong allocations;
static atomic_ulong frees;

static void countAllocation(void) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void* malloc(size_t size) {
  countAllocation();
  return __libc_malloc(size);
}

void* calloc(size_t n, size_t size) {
  countAllocation();
  return __libc_calloc(n, size);
}

void* realloc(void* ptr, size_t size) {
  // A realloc that grows is an allocation (a copy, most of the time); so is realloc(NULL, n).
  countAllocation();
  return __libc_realloc(ptr, size);
}

void free(void* ptr) {
  if (ptr != NULL) {
    atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
  }
  __libc_free(ptr);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  countAllocation();
  void* p = __libc_memalign(alignment, size);
  if (p == NULL) {
    return ENOMEM;
  }
  *out = p;
  return 0;
}

void* aligned_alloc(size_t alignment, size_t size) {
  countAllocation();
  return __libc_memalign(alignment, size);
}

void* memalign(size_t alignment, size_t size) {
  countAllocation();
  return __libc_memalign(alignment, size);
}

// Blocks on the FIFO (no polling); writes with write(2) only, so it allocates nothing itself.
static void* reporter(void* arg) {
  const char* fifo = (const char*)arg;
  const char* out = getenv("ALLOC_COUNTER_OUT");
  if (out == NULL) {
    return NULL;
  }
  for (;;) {
    const int in = open(fifo, O_RDONLY);
    if (in < 0) {
      return NULL;
    }
    char request[64];
    ssize_t n;
    while ((n = read(in, request, sizeof(request))) > 0) {
      for (ssize_t i = 0; i < n; i++) {
        if (request[i] != '\n') {
          continue;
        }
        char line[96];
        const int len = snprintf(
            line, sizeof(line), "allocations=%lu frees=%lu\n",
            atomic_load_explicit(&allocations, memory_order_relaxed),
            atomic_load_explicit(&frees, memory_order_relaxed));
        const int fd = open(out, O_WRONLY | O_APPEND | O_CREAT, 0644);
        if (fd >= 0) {
          if (write(fd, line, (size_t)len) < 0) {
            // Nothing to do: the script will time out waiting for the line.
          }
          close(fd);
        }
      }
    }
    close(in);
  }
}

__attribute__((constructor)) static void startReporter(void) {
  const char* fifo = getenv("ALLOC_COUNTER_FIFO");
  if (fifo == NULL) {
    return;
  }
  pthread_t thread;
  if (pthread_create(&thread, NULL, reporter, (void*)fifo) == 0) {
    pthread_detach(thread);
  }
}
