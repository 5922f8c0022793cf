/* segql's C kernels: plain C over Arrow buffers, called through ctypes
 * (src/segql/engines/arrow/kernels.py; docs/architecture.md, "C kernels").
 *
 * Rules every kernel keeps:
 *  - no Python API, no allocation the caller does not see, no global state:
 *    ctypes releases the GIL during a call, so calls run on several threads;
 *  - the caller checks every input (types, lengths, bounds) before calling;
 *  - a kernel computes exactly what the NumPy path computes, bit for bit.
 */
#ifndef SEGQL_KERNELS_H
#define SEGQL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define SEGQL_EXPORT __attribute__((visibility("default")))

#endif
