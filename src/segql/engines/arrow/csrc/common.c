/* What the loader checks before using the library (kernels.py), and the
 * kernel threads' wait (parallel.py). */
#define _POSIX_C_SOURCE 199309L
#include <sched.h>
#include <time.h>

#include "segql_kernels.h"

#ifndef SEGQL_KERNELS_HASH
#define SEGQL_KERNELS_HASH "unknown"
#endif

/* A digest of the sources this library was built from: the loader compares it
 * with the sources beside it, so a stale build is never used. */
SEGQL_EXPORT const char *segql_kernels_hash(void) { return SEGQL_KERNELS_HASH; }

/* Set bits of n bytes of a bitmap (a count of members). */
SEGQL_EXPORT int64_t segql_popcount(const uint8_t *bits, int64_t nbytes) {
    int64_t total = 0, i = 0;
    for (; i + 8 <= nbytes; i += 8) {
        uint64_t word;
        __builtin_memcpy(&word, bits + i, 8);
        total += __builtin_popcountll(word);
    }
    for (; i < nbytes; i++) total += __builtin_popcount(bits[i]);
    return total;
}

/* Wait, awake, until *flag differs from `seen` or `nanos` nanoseconds have
 * passed; returns *flag.  A kernel thread of the process's pool
 * (parallel.py) waits so for its next task after each one, the GIL
 * released: a thread blocked in the kernel took 50-600 µs to wake on this
 * virtual machine, as long as half a kernel call.  The flag is only read. */
SEGQL_EXPORT int64_t segql_spin(const int64_t *flag, int64_t seen, int64_t nanos) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        for (int i = 0; i < 256; i++) {
            const int64_t value = __atomic_load_n(flag, __ATOMIC_ACQUIRE);
            if (value != seen) return value;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((int64_t)(now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec) >= nanos)
            return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
        sched_yield();
    }
}
