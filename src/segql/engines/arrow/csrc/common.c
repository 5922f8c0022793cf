/* What the loader checks before using the library (kernels.py). */
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
