"""MD5 (RFC 1321) of many messages at once, in NumPy: the digest behind
``bucket()`` (docs/decisions.md, "Deterministic buckets").

The messages are the strings of an Arrow string or binary array, each with
an optional constant prefix.  Every message is padded as RFC 1321 says (a
``0x80`` byte, zeros, the length in bits as a little-endian uint64) into
``(len + 8) // 64 + 1`` blocks of 64 bytes; the rows are sorted by their
block count, longest first, so that the rows still running at block ``b`` are
a prefix of the order, and block ``b`` of all of them is laid out
contiguously.  The 64 steps of the compression function then run once per
block index over whole uint32 vectors (NumPy wraps uint32 sums modulo 2**32,
as MD5 wants), in place.  Rows go in chunks that stay in the CPU caches.
2M keys of 9 digits: about 0.4 s on one core.

A message's blocks follow each other, so one long message costs a pass of
the 64 steps (some 640 NumPy calls) per 64 bytes however few rows share it:
messages above ``LONG_MESSAGE`` bytes (no customer key is that long) go to
``hashlib`` one by one, whose per-row cost is small next to theirs.
``hashlib`` is also the reference of the tests (tests/test_bucket.py), which
check this module against it on every block boundary with that limit lifted.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["digest_words", "first_60_bits", "hex_digests"]

_SHIFTS = (7, 12, 17, 22) * 4 + (5, 9, 14, 20) * 4 + (4, 11, 16, 23) * 4 + (6, 10, 15, 21) * 4
_K = tuple(np.uint32(int(abs(math.sin(i + 1)) * 2**32) & 0xFFFFFFFF) for i in range(64))
_WORD = tuple(
    i if i < 16 else (5 * i + 1) % 16 if i < 32 else (3 * i + 5) % 16 if i < 48 else (7 * i) % 16 for i in range(64)
)
_INIT = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)

CHUNK_ROWS = 1 << 15
"""Rows hashed together at most: their state vectors (128 KiB each) stay in the caches."""
CHUNK_BYTES = 1 << 20
"""Message bytes hashed together at most (their positions are int64s: 8 MiB)."""
LONG_MESSAGE = 1024
"""Longer messages are hashed one at a time (``digest_words``)."""


def digest_words(array: pa.Array, prefix: bytes = b"", long_message: int | None = None) -> np.ndarray:
    """The MD5 digest of ``prefix + value`` for every value of a string or
    binary ``array`` (large or not; not a dictionary) as an ``(n, 4)`` uint32
    array: the state words A, B, C, D, whose little-endian bytes are the
    digest.  A null slot gets the digest of its (unspecified) bytes.

    Messages longer than ``long_message`` bytes (default ``LONG_MESSAGE``)
    are hashed one by one by ``hashlib``: vectorising over rows cannot speed
    up the blocks of one long message, which follow each other."""
    limit = LONG_MESSAGE if long_message is None else long_message
    offsets, data = _offsets_and_data(array)
    n = len(array)
    out = np.empty((n, 4), dtype=np.uint32)
    sizes = offsets[1:] - offsets[:-1] + len(prefix)
    long_rows = np.flatnonzero(sizes > limit)
    if len(long_rows):
        for row in long_rows.tolist():
            text = data[offsets[row] : offsets[row + 1]].tobytes()
            digest = hashlib.md5(prefix + text, usedforsecurity=False).digest()
            out[row] = np.frombuffer(digest, dtype="<u4")
        short_rows = np.flatnonzero(sizes <= limit)
        if len(short_rows):
            out[short_rows] = digest_words(array.take(pa.array(short_rows)), prefix, limit)
        return out
    ends = np.cumsum(sizes)  # message bytes up to the end of each row
    start = 0
    while start < n:
        before = int(ends[start - 1]) if start else 0
        stop = min(n, start + CHUNK_ROWS, int(np.searchsorted(ends, before + CHUNK_BYTES, side="right")))
        stop = max(stop, start + 1)
        out[start:stop] = _digest_chunk(offsets[start : stop + 1], data, prefix)
        start = stop
    return out


def first_60_bits(words: np.ndarray) -> np.ndarray:
    """The first 15 hex digits of each digest (``digest_words``) as uint64."""
    a = words[:, 0].byteswap().astype(np.uint64)  # digest bytes 0-3, big-endian
    b = words[:, 1].byteswap().astype(np.uint64)  # bytes 4-7
    return np.asarray((a << np.uint64(28)) | (b >> np.uint64(4)), dtype=np.uint64)


def hex_digests(words: np.ndarray) -> list[str]:
    """The digests as the usual 32 lower-case hex digits (for tests and messages)."""
    raw = np.ascontiguousarray(words.astype("<u4")).tobytes()
    return [raw[i : i + 16].hex() for i in range(0, len(raw), 16)]


def _offsets_and_data(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    t = array.type
    width: type[np.signedinteger[Any]]
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        width = np.int64
    elif pa.types.is_string(t) or pa.types.is_binary(t):
        width = np.int32
    else:
        raise TypeError(f"MD5 of {t} values: give strings or binaries")
    buffers = array.buffers()
    n = len(array)
    if n == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(buffers[1], dtype=width, count=array.offset + n + 1)[array.offset :].astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, dtype=np.uint8)
    return offsets, data


def _digest_chunk(offsets: np.ndarray, data: np.ndarray, prefix: bytes) -> np.ndarray:
    m = len(offsets) - 1
    text_lengths = offsets[1:] - offsets[:-1]
    lengths = text_lengths + len(prefix)
    blocks = (lengths + 8) // 64 + 1
    if m == 0:
        return np.zeros((0, 4), dtype=np.uint32)
    if blocks.min() == blocks.max():
        order, rank = None, np.arange(m, dtype=np.int64)
        sorted_blocks = blocks
    else:
        order = np.argsort(-blocks, kind="stable")
        rank = np.empty(m, dtype=np.int64)
        rank[order] = np.arange(m, dtype=np.int64)
        sorted_blocks = blocks[order]
    most = int(sorted_blocks[0])
    # running[b]: the rows with more than b blocks (a prefix of the order);
    # block b of every one of them is at block_start[b] + rank * 64.
    running = np.searchsorted(-sorted_blocks, -np.arange(1, most + 1), side="right")
    block_start = np.zeros(most + 1, dtype=np.int64)
    np.cumsum(running * 64, out=block_start[1:])
    buffer = np.zeros(int(block_start[-1]), dtype=np.uint8)

    head = np.frombuffer(prefix, dtype=np.uint8)
    for b in range((len(prefix) + 63) // 64):  # every message starts with the prefix
        part = head[b * 64 : b * 64 + 64]
        buffer[block_start[b] : block_start[b + 1]].reshape(-1, 64)[:, : len(part)] = part
    # The text bytes, read in place (the rows' bytes are contiguous in ``data``).
    first, last = int(offsets[0]), int(offsets[-1])
    if last > first:
        text = data[first:last]
        if most == 1:  # byte g of row i goes to rank * 64 + len(prefix) + g - offsets[i]
            destination = np.arange(first, last, dtype=np.int64)
            destination += np.repeat(rank * 64 + len(prefix) - offsets[:-1], text_lengths)
            buffer[destination] = text
        else:
            position = np.arange(first, last, dtype=np.int64)  # each byte's position in its message
            position -= np.repeat(offsets[:-1] - len(prefix), text_lengths)
            destination = block_start[position >> 6]
            destination += position & 63
            destination += np.repeat(rank * 64, text_lengths)
            buffer[destination] = text
    buffer[block_start[lengths >> 6] + rank * 64 + (lengths & 63)] = 0x80
    length_at = (block_start[blocks - 1] + rank * 64 + 56) >> 3
    buffer.view("<u8")[length_at] = (lengths * 8).astype(np.uint64)

    state = [np.full(m, value, dtype=np.uint32) for value in _INIT]
    for b in range(most):
        count = int(running[b])
        block = buffer[block_start[b] : block_start[b + 1]].view("<u4").reshape(count, 16)
        _compress([s[:count] for s in state], np.ascontiguousarray(block.T))
    result = np.stack(state, axis=1)
    return result if order is None else result[rank]


def _compress(state: list[np.ndarray], x: np.ndarray) -> None:
    """One 64-byte block (``x``: 16 word vectors) into ``state`` (A, B, C, D), in place."""
    a, b, c, d = (s.copy() for s in state)
    t = np.empty_like(a)
    for i in range(64):
        if i < 16:  # F = D ^ (B & (C ^ D))
            np.bitwise_xor(c, d, out=t)
            t &= b
            t ^= d
        elif i < 32:  # G = C ^ (D & (B ^ C))
            np.bitwise_xor(b, c, out=t)
            t &= d
            t ^= c
        elif i < 48:  # H = B ^ C ^ D
            np.bitwise_xor(b, c, out=t)
            t ^= d
        else:  # I = C ^ (B | ~D)
            np.invert(d, out=t)
            t |= b
            t ^= c
        a += t
        a += x[_WORD[i]]
        a += _K[i]
        shift = _SHIFTS[i]
        np.left_shift(a, shift, out=t)
        a >>= 32 - shift
        a |= t
        a += b
        a, b, c, d = d, a, b, c
    for register, value in zip(state, (a, b, c, d), strict=True):
        register += value
