"""Fused evaluation of boolean trees of simple comparisons (docs/architecture.md,
"Fused predicates"; docs/decisions.md 236-245, 260-269).

A tree of ``and`` / ``or`` / ``not`` / ``is true`` / ``is false`` over leaves
that compare one profile column with a constant (numbers, dates, timestamps;
``between``), bool columns, ``is null`` tests, and any comparison, ``in`` or
string test of a dictionary column with constants, is evaluated in one pass
over blocks of at most :data:`BLOCK_ROWS` rows with NumPy: every
intermediate mask of a block stays in the cache, and no intermediate array
the size of the table is made (the Arrow path calls one kernel at a time
over every row).  Values already computed (a shared node the executor holds,
a declaration referenced by name) enter as leaves too.

Nulls follow Kleene's logic exactly: every node has two masks, *true* and
*false* (a null row is in neither).  A node whose leaves hold no null has
*false* = not *true*, so on columns without nulls one mask is computed.
Comparisons are exact as in the Arrow path: temporal constants are brought
to the column's unit by integer arithmetic (a bound between two ticks
becomes the tick below it), integers compare as int64, floats as float64
(NaN compares false, and unequal), dictionary leaves run once per distinct
value through the ordinary executor and are gathered by code.

A tree is fused only when every leaf is one of these and it has at least
two (a single comparison is one Arrow kernel already); otherwise the
executor evaluates it as before, fusing the largest fusable part of an
``and`` / ``or`` chain (``Executor._chain``).

With segql's C kernels (segql.engines.arrow.kernels) a tree is compiled
into a :class:`Program` and run by ``csrc/predicates.c`` over the rows, on
up to ``threads`` threads; :func:`evaluate` above is its NumPy twin, with
the same bits (docs/decisions.md 260-269).
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segql import ast
from segql.engines.arrow import kernels, temporal
from segql.engines.arrow.parallel import run_pooled
from segql.engines.arrow.pertable import PerTable
from segql.errors import SegqlError

if TYPE_CHECKING:
    from segql.engines.arrow.executor import Executor
    from segql.engines.arrow.values import Value

BLOCK_ROWS = 65_536
"""Rows evaluated at once: an int64 column's block (512 KB) and its masks stay in the cache."""

FLOAT_EXACT_INT = 2**53
"""Integer constants up to this size are exact as float64 (a float column against an int constant)."""

Packed = np.ndarray
"""A block's mask: one bit per row (uint8, least significant bit first, as Arrow's bitmaps)."""
Pair = tuple[Packed, Packed | None]
"""A block's (true, false) masks; false None: it is ``~true`` (no nulls below)."""

_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NUMPY_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


# ------------------------------------------------------------------ arrays
Source = tuple[str, str]
"""Where a column a fused leaf reads comes from: ("column", name), the
table's column as it is; ("canonical", name), its canonical form
(``Executor.eval``), which may be a view of it or a conversion."""


class Chunks:
    """Block access to one chunked array's values and validity (no copies
    where a block lies in one chunk, at a whole byte of its bitmaps)."""

    def __init__(self, array: pa.ChunkedArray | pa.Array, source: Source | None = None) -> None:
        self.source = source
        """Where the array comes from (:data:`Source`), None: a value computed
        by this evaluation (a program reading it is not kept, ``_PROGRAMS``)."""
        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        self.chunks = [c for c in chunks if len(c)]
        self.starts = [0]
        for chunk in self.chunks:
            self.starts.append(self.starts[-1] + len(chunk))
        self.offsets = [c.offset for c in self.chunks]
        self.nulls = [c.null_count for c in self.chunks]
        self.buffers = [c.buffers() for c in self.chunks]
        self.nullable = any(self.nulls)
        self._last: tuple[int, int, list[tuple[int, int, int]]] = (-1, -1, [])

    def pieces(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """(chunk index, first row in it, rows) of the chunks rows [start, stop) lie in."""
        if self._last[0] == start and self._last[1] == stop:
            return self._last[2]
        i = bisect.bisect_right(self.starts, start) - 1
        out = []
        first_row = start
        while first_row < stop:
            rows = min(stop, self.starts[i + 1]) - first_row
            out.append((i, first_row - self.starts[i], rows))
            first_row += rows
            i += 1
        self._last = (start, stop, out)
        return out

    def bitmap(self, index: int, start: int, stop: int) -> Packed | None:
        """Buffer ``index`` (0: validity, 1: a bool array's values) of rows
        [start, stop) as packed bits from bit 0; None for a validity without nulls."""
        if index == 0 and not self.nullable:
            return None
        pieces = self.pieces(start, stop)
        if index == 0 and not any(self.nulls[i] for i, _, _ in pieces):
            return None
        if len(pieces) == 1:
            i, first, rows = pieces[0]
            offset = self.offsets[i] + first
            if offset % 8 == 0:
                return np.frombuffer(self.buffers[i][index], dtype=np.uint8, count=(rows + 7) // 8, offset=offset // 8)
        parts = []
        for i, first, rows in pieces:
            if index == 0 and not self.nulls[i]:
                parts.append(np.ones(rows, np.bool_))
            else:
                parts.append(unpacked(self.buffers[i][index], self.offsets[i] + first, rows))
        return pack(np.concatenate(parts))

    def values(self, dtype: np.dtype[Any], start: int, stop: int) -> list[np.ndarray]:
        """The fixed-width values of rows [start, stop), one view per chunk they lie in."""
        out = []
        for i, first, rows in self.pieces(start, stop):
            offset = (self.offsets[i] + first) * dtype.itemsize
            out.append(np.frombuffer(self.buffers[i][1], dtype=dtype, count=rows, offset=offset))
        return out


def unpacked(buffer: pa.Buffer, offset: int, length: int) -> np.ndarray:
    """``length`` bits of a bitmap from bit ``offset``, as a bool array."""
    first, last = offset // 8, (offset + length + 7) // 8
    raw = np.frombuffer(buffer, dtype=np.uint8, count=last - first, offset=first)
    shift = offset - first * 8
    return np.unpackbits(raw, bitorder="little")[shift : shift + length].view(np.bool_)


def bools(array: pa.Array) -> np.ndarray:
    """A bool array without nulls as a NumPy bool array (its bitmap unpacked)."""
    if not len(array):
        return np.zeros(0, np.bool_)
    return unpacked(array.buffers()[1], array.offset, len(array))


def packed_bools(flags: np.ndarray) -> pa.Array:
    """A NumPy bool array as an Arrow bool array without nulls (packed, not converted)."""
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, pa.py_buffer(pack(flags))], null_count=0)


def pack(flags: np.ndarray) -> Packed:
    return np.packbits(flags, bitorder="little")


def joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# ------------------------------------------------------------------ leaves
class Leaf:
    """A fused leaf: its (true, false) masks on a block of rows, packed."""

    data: Chunks

    def pair(self, start: int, stop: int, want_false: bool) -> Pair:
        raise NotImplementedError


def _with_validity(hit: Packed, valid: Packed | None, want_false: bool) -> Pair:
    """(true, false) of a test whose result is ``hit`` on rows whose validity
    is ``valid``; ``hit`` may be read-only (a view of a column)."""
    if valid is None:
        return hit, None
    false = np.bitwise_and(np.invert(hit), valid) if want_false else valid
    return np.bitwise_and(hit, valid), false


class CompareLeaf(Leaf):
    """``column op constant`` on a fixed-width column (ints, floats, dates, timestamps)."""

    def __init__(self, data: Chunks, dtype: np.dtype[Any], op: str, bound: Any, alone: bool = False) -> None:
        self.data, self.dtype, self.bound, self.op = data, dtype, bound, op
        self.kernel = _NUMPY_COMPARE.get(op)
        self.constant = op if op in ("all", "none") else None
        self.alone = alone
        """Fused even as a whole comparison: a date column, which the Arrow
        path casts twice (date32 to int32 to int64) before comparing (2M
        rows: 0.76 ms fused against 1.9 ms; other single comparisons are
        faster as one Arrow kernel)."""

    def pair(self, start: int, stop: int, want_false: bool) -> Pair:
        if self.constant is not None:
            hit = pack(np.full(stop - start, self.constant == "all"))
        else:
            kernel, bound = self.kernel, self.bound
            assert kernel is not None
            hit = pack(joined([kernel(view, bound) for view in self.data.values(self.dtype, start, stop)]))
        return _with_validity(hit, self.data.bitmap(0, start, stop), want_false)


class BoolLeaf(Leaf):
    """A bool column, or a bool value already computed (a shared node, a referenced declaration)."""

    def __init__(self, data: Chunks, computed: bool = False) -> None:
        self.data, self.computed = data, computed

    def pair(self, start: int, stop: int, want_false: bool) -> Pair:
        hit = self.data.bitmap(1, start, stop)
        assert hit is not None
        return _with_validity(hit, self.data.bitmap(0, start, stop), want_false)


class NullLeaf(Leaf):
    """``column is [not] null``: never null."""

    def __init__(self, data: Chunks, negated: bool) -> None:
        self.data, self.negated = data, negated

    def pair(self, start: int, stop: int, want_false: bool) -> Pair:
        valid = self.data.bitmap(0, start, stop)
        if valid is None:
            return pack(np.full(stop - start, self.negated)), None
        return (valid if self.negated else np.invert(valid)), None


class Lookup:
    """A bool table over a dictionary's codes, gathered by code: a few
    equality tests when few codes (or few not) are in it, else a NumPy take
    (about 3x slower for 10 distinct values)."""

    FEW = 4

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        inside = np.flatnonzero(table)
        outside = np.flatnonzero(~table)
        self.codes, self.negate = (inside, False) if len(inside) <= len(outside) else (outside, True)

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        if len(self.codes) > self.FEW:
            return np.take(self.table, codes, mode="clip")  # a null slot's code may be anything
        if not len(self.codes):
            return np.full(len(codes), self.negate)
        kind = codes.dtype.type
        hit: np.ndarray = codes == kind(self.codes[0])
        for code in self.codes[1:]:
            np.logical_or(hit, codes == kind(code), out=hit)
        if self.negate:
            np.logical_not(hit, out=hit)
        return hit


class DictLeaf(Leaf):
    """A test of a dictionary column with constants: evaluated once per
    distinct value (each chunk's dictionary) by the ordinary executor, then
    gathered by code."""

    def __init__(self, data: Chunks, tables: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.data = data
        made: dict[int, tuple[Lookup, Lookup]] = {}  # chunks sharing a dictionary share its table
        for t, f in tables:
            if id(t) not in made:
                made[id(t)] = (Lookup(t), Lookup(f))
        self.lookups = [made[id(t)] for t, _ in tables]
        self.codes = [np.dtype(chunk.indices.type.to_pandas_dtype()) for chunk in data.chunks]
        self.nullable_entries = any(
            not np.array_equal(np.logical_not(t), f) for t, f in {id(t): (t, f) for t, f in tables}.values()
        )
        """Some distinct value tests null (``x in ["a", null]``): false is not ``~true``."""

    def pair(self, start: int, stop: int, want_false: bool) -> Pair:
        hits, misses = [], []
        for i, first, rows in self.data.pieces(start, stop):
            true_lookup, false_lookup = self.lookups[i]
            dtype = self.codes[i]
            offset = (self.data.offsets[i] + first) * dtype.itemsize
            codes = np.frombuffer(self.data.buffers[i][1], dtype=dtype, count=rows, offset=offset)
            if not len(true_lookup.table):  # an empty dictionary: every row is null
                hits.append(np.zeros(rows, np.bool_))
                misses.append(np.zeros(rows, np.bool_))
                continue
            hits.append(true_lookup(codes))
            if want_false:
                misses.append(false_lookup(codes))
        hit = pack(joined(hits))
        valid = self.data.bitmap(0, start, stop)
        if valid is None:
            if want_false and self.nullable_entries:
                return hit, pack(joined(misses))
            return hit, None
        np.bitwise_and(hit, valid, out=hit)
        if not want_false:
            return hit, valid
        return hit, np.bitwise_and(pack(joined(misses)), valid)


# ------------------------------------------------------------------ strings
STRING_NUMPY_MAX_SHARE = 0.25
"""A block's prefix or suffix test reads the bytes with NumPy when at most
this share of its rows are open; else Arrow's kernel tests the block's slice
(every row of 64k emails: 0.3 ms, NumPy's gathers 1 ms).  Equality always
reads the bytes (the lengths rule out most rows: 0.2 ms against 0.28 ms)."""

STRING_OPS = ("equal", "prefix", "suffix", "contains")


class StringLeaf(Leaf):
    """A test of a plain string column with byte-string constants (any of
    ``needles`` for "equal"); ``negated`` for ``!=``, ``not in``, ``not starts with``."""

    costly = True

    def __init__(self, data: Chunks, op: str, needles: list[bytes], negated: bool) -> None:
        assert op in STRING_OPS
        self.data, self.op, self.negated = data, op, negated
        self.needles = sorted(set(needles))
        self.arrays = data.chunks
        self.wide = [pa.types.is_large_string(c.type) for c in data.chunks]

    def pair(self, start: int, stop: int, want_false: bool, care: Packed | None = None) -> Pair:
        open_rows = None if care is None else np.unpackbits(care, bitorder="little")[: stop - start].view(np.bool_)
        if open_rows is not None and not open_rows.any():
            hit = np.zeros((stop - start + 7) // 8, np.uint8)
            return hit, (hit if want_false else None)
        parts = []
        at = 0
        for i, first, rows in self.data.pieces(start, stop):
            sel = None if open_rows is None else open_rows[at : at + rows]
            at += rows
            parts.append(self._piece(i, first, rows, sel))
        hit = pack(joined(parts))
        if self.negated:
            np.invert(hit, out=hit)
        return _with_validity(hit, self.data.bitmap(0, start, stop), want_false)

    def _kernel(self, part: pa.Array) -> np.ndarray:
        """The test by Arrow's kernel on a block's slice (many rows open)."""
        texts = [n.decode("utf-8") for n in self.needles]
        if self.op == "prefix":
            found = pc.starts_with(part, pattern=texts[0])
        elif self.op == "suffix":
            found = pc.ends_with(part, pattern=texts[0])
        elif self.op == "contains":
            found = pc.match_substring(part, pattern=texts[0])
        elif len(texts) == 1:
            found = pc.equal(part, pa.scalar(texts[0], part.type))
        else:
            found = pc.is_in(part, value_set=pa.array(texts, part.type))
        return bools(found)  # (the bits under a null row do not matter: the validity masks them)

    def _piece(self, i: int, first: int, rows: int, sel: np.ndarray | None) -> np.ndarray:
        chunk = self.arrays[i]
        if self.op == "contains":
            return self._kernel(chunk.slice(first, rows))
        buffers = self.data.buffers[i]
        kind = np.int64 if self.wide[i] else np.int32
        offset = self.data.offsets[i] + first
        raw = np.frombuffer(buffers[1], dtype=kind, count=rows + 1, offset=offset * np.dtype(kind).itemsize)
        data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
        chosen: np.ndarray | None = None if sel is None else np.flatnonzero(sel)
        if self.op != "equal" and (chosen is None or len(chosen) > STRING_NUMPY_MAX_SHARE * rows):
            return self._kernel(chunk.slice(first, rows))
        if chosen is not None:  # the open rows' offsets only
            starts, ends = raw[chosen], raw[chosen + 1]
        else:
            starts, ends = raw[:-1], raw[1:]
        lengths = ends - starts
        hit = np.zeros(rows, np.bool_)
        for needle in self.needles:
            k = len(needle)
            fits = lengths == k if self.op == "equal" else lengths >= k
            found = np.flatnonzero(fits)
            base = (ends[found] - k if self.op == "suffix" else starts[found]).astype(np.intp)
            if k:
                found = found[_compare(data, base, needle)]
            hit[found if chosen is None else chosen[found]] = True
        return hit


def _compare(data: np.ndarray, base: np.ndarray, needle: bytes) -> np.ndarray:
    """The positions in ``base`` of the byte runs there (each
    ``len(needle)`` long, in ``data``) that equal ``needle``: one byte at a
    time, gathered on the runs still equal only (a gather of native indices
    costs about 0.6 ns a row; most runs differ in the first bytes)."""
    rows: np.ndarray | None = None
    for at in range(len(needle)):
        keep = np.flatnonzero(data[base + at] == needle[at])  # (faster than a boolean mask's compress)
        base = base[keep]
        rows = keep if rows is None else rows[keep]
        if not len(rows):
            break
    return np.arange(len(base)) if rows is None else rows


# ------------------------------------------------------------------ trees
@attrs.frozen
class Tree:
    """A fused node: ``op`` is "and", "or", "not", "true" (is true), "false" (is false) or "leaf"."""

    op: str
    children: tuple[Tree, ...] = ()
    leaf: Leaf | None = None
    threads: int = attrs.field(default=1, eq=False)
    """Threads the C kernel may use for this tree's rows (a root's; :func:`run`)."""

    @property
    def nullable(self) -> bool:
        if self.op in ("true", "false"):
            return False
        if isinstance(self.leaf, NullLeaf):
            return False
        if isinstance(self.leaf, DictLeaf):
            return self.leaf.data.nullable or self.leaf.nullable_entries
        if self.leaf is not None:
            return self.leaf.data.nullable
        return any(c.nullable for c in self.children)

    costly: bool = attrs.field(init=False, eq=False)
    """Whether a string leaf is below (tested on the rows still open only)."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "costly", any(isinstance(leaf, StringLeaf) for leaf in self.leaves()))

    def leaves(self) -> list[Leaf]:
        if self.leaf is not None:
            return [self.leaf]
        return [leaf for c in self.children for leaf in c.leaves()]


def evaluate(tree: Tree, start: int, stop: int, want_false: bool, care: Packed | None = None) -> Pair:
    """The packed (true, false) masks of ``tree`` on rows [start, stop); a
    false of None is ``~true``; without ``want_false`` the false mask may be
    anything.  With ``care`` (packed), only the rows set in it must be right:
    the others are decided above without this node (string leaves test the
    rows in ``care`` only).  Masks may be read-only views: results are new arrays."""
    op = tree.op
    if tree.leaf is not None:
        if isinstance(tree.leaf, StringLeaf):
            return tree.leaf.pair(start, stop, want_false, care)
        return tree.leaf.pair(start, stop, want_false)
    if op == "not":
        true, false = evaluate(tree.children[0], start, stop, True, care)
        return (np.invert(true) if false is None else false), (None if false is None else true)
    if op == "true":
        return evaluate(tree.children[0], start, stop, False, care)[0], None
    if op == "false":
        true, false = evaluate(tree.children[0], start, stop, True, care)
        return (np.invert(true) if false is None else false), None
    if len(tree.children) == 1:
        return evaluate(tree.children[0], start, stop, want_false, care)
    is_and = op == "and"
    combine, other = (np.bitwise_and, np.bitwise_or) if is_and else (np.bitwise_or, np.bitwise_and)
    true, false = evaluate(tree.children[0], start, stop, want_false, care)
    owned = False
    for child in tree.children[1:]:
        child_care = care
        if child.costly:
            # The rows this chain has not decided: an and's not false yet
            # (true so far when only the truth is wanted), an or's not true yet.
            if is_and:
                still = true if (false is None or not want_false) else np.invert(false)
            else:
                still = np.invert(true)
            child_care = still if care is None else np.bitwise_and(still, care)
        t, f = evaluate(child, start, stop, want_false, child_care)
        if want_false and (false is not None or f is not None):
            false = other(np.invert(true) if false is None else false, np.invert(t) if f is None else f)
        if owned:
            combine(true, t, out=true)
        else:
            true, owned = combine(true, t), True
    if false is None:
        return true, None
    if not want_false:
        return true, true
    return true, false


def blocks(leaves: Sequence[Leaf], rows: int) -> list[tuple[int, int]]:
    """Row ranges of at most BLOCK_ROWS rows, each starting at a multiple of
    8 (a whole byte of the result), cut at the leaves' chunk boundaries that
    are such multiples (a block crossing another boundary is gathered)."""
    cuts = {0, rows}
    for leaf in leaves:
        cuts.update(c for c in leaf.data.starts if c % 8 == 0 and 0 < c < rows)
    edges = sorted(cuts)
    out = []
    for lo, hi in itertools.pairwise(edges):
        for start in range(lo, hi, BLOCK_ROWS):
            out.append((start, min(start + BLOCK_ROWS, hi)))
    return out


def run(tree: Tree, rows: int, truth: bool, compiled_as: Callable[[Program], None] | None = None) -> pa.ChunkedArray:
    """``tree`` on every row: its truth (never null) or, with ``truth`` false,
    its Kleene value; ``compiled_as`` is given the program when the C kernel runs it."""
    compiled = Program.of(tree, truth) if rows else None
    if compiled is not None:
        if compiled_as is not None:
            compiled_as(compiled)
        return compiled.run(rows, tree.threads)
    size = (rows + 7) // 8
    true_out = np.empty(size, np.uint8)
    nullable = not truth and tree.nullable
    valid_out = np.empty(size, np.uint8) if nullable else None
    for start, stop in blocks(tree.leaves(), rows):
        true, false = evaluate(tree, start, stop, nullable)
        first, last = start // 8, (stop + 7) // 8
        true_out[first:last] = true
        if valid_out is not None:
            valid_out[first:last] = true if false is None else np.bitwise_or(true, false)
    if rows % 8:  # the bits past the last row are zero
        keep = np.uint8((1 << (rows % 8)) - 1)
        true_out[-1] &= keep
        if valid_out is not None:
            valid_out[-1] &= keep
    return bool_result(rows, true_out, valid_out)


def bool_result(rows: int, true_out: np.ndarray, valid_out: np.ndarray | None) -> pa.ChunkedArray:
    """A bool value of ``rows`` rows from its packed truth and validity (None: no nulls)."""
    data = pa.py_buffer(true_out)
    if valid_out is None:
        return pa.chunked_array([pa.Array.from_buffers(pa.bool_(), rows, [None, data], null_count=0)])
    nulls = rows - int(np.bitwise_count(valid_out).sum())
    validity = pa.py_buffer(valid_out) if nulls else None
    return pa.chunked_array([pa.Array.from_buffers(pa.bool_(), rows, [validity, data], null_count=nulls)])


# ------------------------------------------------------------- C kernel
KERNEL_ROWS_PER_THREAD = 131_072
"""A tree runs on at most one thread per this many rows (a thread's start
and join on the pool cost tens of microseconds)."""

KERNEL_ALONE_MIN_ROWS = 65_536
"""A single leaf (not a tree) runs in the C kernel from this many rows on
(below, one Arrow kernel costs less than compiling; a dictionary's values
tested by the executor never reach it)."""

KERNEL_SIMD = True
"""Whether the kernel may use its AVX2 loops (where the processor has AVX2);
False: its plain loops only (tests run both)."""

_NODE, _SLOT, _PIECE_HEAD, _KERNEL_BLOCK_WORDS = 8, 6, 2, 16
"""Words of a node, of a column slot and of a piece's head; words (of 64 rows)
of the kernel's block (csrc/predicates.c)."""
_INNER = {"and": 1, "or": 2, "not": 3, "true": 4, "false": 5}
_COMPARE, _BITS, _NULL, _DICT, _STRING, _CONST = 10, 11, 12, 13, 14, 15
_NULLABLE, _WANT_FALSE, _COSTLY = 1, 2, 4
_KERNEL_OPS = {"=": 0, "!=": 1, "<": 2, "<=": 3, ">": 4, ">=": 5}
_KERNEL_TYPES = {
    np.dtype(t): i
    for i, t in enumerate(
        [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.float32, np.float64]
    )
}
_KERNEL_CODES = {np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 4}
_STRING_KINDS = {"equal": 0, "prefix": 1, "suffix": 2, "contains": 3}

_P = ctypes.c_void_p
_I = ctypes.c_int64


class _Unsupported(Exception):
    """A leaf the C kernel does not read: the tree runs on the NumPy path."""


@attrs.frozen
class _Slot:
    """A column the kernel reads: its chunks, how ("fixed": values of
    ``width`` bytes, "bits": a bool bitmap, "validity": only the validity,
    "dict": codes of ``width`` bytes and a per-chunk table, "string": offsets
    of ``width`` bytes and the data), and for "dict" the tables' addresses and sizes."""

    data: Chunks
    kind: str
    width: int = 0
    tables: tuple[tuple[int, int], ...] = ()

    def words(self, chunk: int, first: int) -> list[int]:
        """The slot's words for rows from ``first`` of chunk ``chunk``."""
        data = self.data
        buffers = data.buffers[chunk]
        at = data.offsets[chunk] + first
        valid = buffers[0].address if data.nulls[chunk] and buffers[0] is not None else 0
        values, bit, aux, size = 0, 0, 0, 0
        if self.kind == "bits":
            values, bit = buffers[1].address, at
        elif self.kind in ("fixed", "dict", "string"):
            values = buffers[1].address + at * self.width
        if self.kind == "dict":
            aux, size = self.tables[chunk]  # a descriptor (Program._dictionary)
        elif self.kind == "string":  # (the data's size: the kernel's word reads stay inside it)
            aux, size = (buffers[2].address, buffers[2].size) if buffers[2] is not None else (0, 0)
        return [values, bit, valid, at, aux, size]


class Program:
    """A fused tree compiled for the C kernel (csrc/predicates.c): its nodes
    as int64 words, the columns it reads, and what their addresses point into."""

    def __init__(self) -> None:
        self.nodes: list[list[int]] = []
        self.kids: list[tuple[int, list[int]]] = []
        self.slots: list[_Slot] = []
        self.keep: list[Any] = []
        self.depth = 0
        self.words: np.ndarray = np.zeros(0, np.int64)
        self.nullable = False
        self.select = -1
        """The slot of the values ``members`` takes (-1: none)."""
        self.select_type: pa.DataType | None = None
        self.nslots = 0
        self.parts: dict[tuple[int, int], list[np.ndarray]] = {}
        """Each thread's pieces per (rows, threads) (:meth:`pieces`), once computed."""
        self.shares: dict[tuple[int, int], list[int]] = {}
        """Each thread's count of members at the last :meth:`members` per
        (rows, threads): where the next call places each thread's values."""

    def detached(self, rows: int, threads: int) -> Program:
        """A copy that runs on ``rows`` rows and ``threads`` threads without
        its columns: their addresses are in its pieces, and it holds no
        reference to them (kept across evaluations, ``_PROGRAMS``)."""
        threads = _threads(rows, threads)
        kept = Program()
        kept.keep, kept.depth, kept.words, kept.nullable = self.keep, self.depth, self.words, self.nullable
        kept.select, kept.select_type, kept.nslots = self.select, self.select_type, self.nslots
        kept.parts = {(rows, threads): self._parts(rows, threads)}
        kept.shares = self.shares  # (the same table's members: the same counts)
        return kept

    @classmethod
    def of(cls, tree: Tree, truth: bool, select: pa.ChunkedArray | None = None) -> Program | None:
        """``tree`` compiled (its truth, or with ``truth`` false its value), or
        None: no kernel library, or a leaf the kernel does not read.  With
        ``select`` (a fixed-width column without nulls, as long as the rows):
        the program can also take that column's values of its true rows
        (:meth:`members`)."""
        if _fused_kernel() is None:
            return None
        program = cls()
        program.nullable = not truth and tree.nullable
        try:
            program._node(tree, program.nullable, 0)
        except _Unsupported:
            return None
        if select is not None:
            width = _fixed_width(select.type)
            assert width is not None and select.null_count == 0
            program.select = program._slot(_Slot(Chunks(select), "fixed", width.itemsize))
            program.select_type = select.type
        words = [w for node in program.nodes for w in node]
        for index, kids in program.kids:
            program.nodes[index][2] = len(words)
            words[_NODE * index + 2] = len(words)
            words.extend(kids)
        program.words = np.array(words, np.int64)
        program.nslots = len(program.slots)
        return program

    def _node(self, tree: Tree, want_false: bool, depth: int) -> int:
        self.depth = max(self.depth, depth)
        index = len(self.nodes)
        node = [0] * _NODE
        self.nodes.append(node)
        node[1] = (_NULLABLE if tree.nullable else 0) | (_WANT_FALSE if want_false else 0)
        node[1] |= _COSTLY if tree.costly else 0
        if tree.leaf is not None:
            self._leaf(tree.leaf, node)
            node[7] = 0 if KERNEL_SIMD else 1
        elif tree.op in ("and", "or"):
            node[0] = _INNER[tree.op]
            kids = [self._node(c, want_false, depth + 1) for c in tree.children]
            node[3] = len(kids)
            self.kids.append((index, kids))
        else:
            node[0] = _INNER[tree.op]
            node[2] = self._node(tree.children[0], tree.op != "true", depth + 1)
        return index

    def _slot(self, slot: _Slot) -> int:
        self.slots.append(slot)
        return len(self.slots) - 1

    def _leaf(self, leaf: Leaf, node: list[int]) -> None:
        if isinstance(leaf, CompareLeaf):
            if leaf.constant is not None:
                node[0], node[2], node[3] = _CONST, self._slot(_Slot(leaf.data, "validity")), leaf.constant == "all"
                return
            node[0], node[3], node[5] = _COMPARE, _KERNEL_OPS[leaf.op], _KERNEL_TYPES[leaf.dtype]
            node[2] = self._slot(_Slot(leaf.data, "fixed", leaf.dtype.itemsize))
            if leaf.dtype.kind == "f":
                node[4] = int(np.array([leaf.bound], np.float64).view(np.int64)[0])
            else:
                node[4] = int(leaf.bound)
        elif isinstance(leaf, BoolLeaf):
            node[0], node[2] = _BITS, self._slot(_Slot(leaf.data, "bits"))
        elif isinstance(leaf, NullLeaf):
            node[0], node[2], node[3] = _NULL, self._slot(_Slot(leaf.data, "validity")), leaf.negated
        elif isinstance(leaf, DictLeaf):
            widths = {_KERNEL_CODES.get(dtype) for dtype in leaf.codes}
            if None in widths or len(widths) > 1:
                raise _Unsupported
            made: dict[int, int] = {}  # chunks sharing a dictionary share its descriptor
            tables = []
            for true_lookup, false_lookup in leaf.lookups:
                if id(true_lookup) not in made:
                    made[id(true_lookup)] = self._dictionary(true_lookup.table, false_lookup.table)
                tables.append((made[id(true_lookup)], 0))
            width = widths.pop() if widths else 4
            node[0], node[5] = _DICT, width or 4
            node[2] = self._slot(_Slot(leaf.data, "dict", width or 4, tuple(tables)))
        elif isinstance(leaf, StringLeaf):
            wide = set(leaf.wide)
            if len(wide) > 1:
                raise _Unsupported
            blob = np.frombuffer(b"".join(leaf.needles) + b"\0", np.uint8)
            base = kernel_address(blob)
            pairs, at = [], 0
            for needle in leaf.needles:
                pairs.extend([base + at, len(needle)])
                at += len(needle)
            needles = np.array(pairs, np.int64)
            self.keep.extend([blob, needles])
            node[0], node[3] = _STRING, int(bool(wide and wide.pop()))
            node[4], node[5] = kernel_address(needles), len(leaf.needles)
            node[6] = _STRING_KINDS[leaf.op] | (4 if leaf.negated else 0)
            node[2] = self._slot(_Slot(leaf.data, "string", 8 if node[3] else 4))
        else:
            raise _Unsupported

    def _dictionary(self, hits: np.ndarray, misses: np.ndarray) -> int:
        """The address of a dictionary chunk's descriptor for the kernel: its
        table (bit 0: true, bit 1: false, per code), and the codes to test
        for equality when at most four are in (or out) and false is ~true."""
        table = hits.astype(np.uint8) | (misses.astype(np.uint8) << 1)
        inside, outside = np.flatnonzero(hits), np.flatnonzero(~hits)
        few, codes = (1, inside) if len(inside) <= len(outside) else (2, outside)
        if len(codes) > Lookup.FEW:
            few, codes = 0, codes[:0]
        simple = bool(np.array_equal(~hits, misses))
        padded = [*codes.tolist(), 0, 0, 0, 0][:4]
        descriptor = np.array([len(table), kernel_address(table), few, len(codes), *padded, simple], np.int64)
        self.keep.extend([table, descriptor])
        return kernel_address(descriptor)

    # ------------------------------------------------------------ running
    def pieces(self, rows: int, threads: int) -> list[np.ndarray]:
        """Each thread's pieces (rows where every column is one array), as the
        kernel reads them; threads' rows start at multiples of 64 rows."""
        bounds = sorted({(t * rows // threads) // 64 * 64 for t in range(threads)} | {rows})
        cuts = set(bounds)
        for slot in self.slots:
            cuts.update(c for c in slot.data.starts if 0 < c < rows)
        edges = sorted(cuts)
        out = []
        for lo, hi in itertools.pairwise(bounds):
            words: list[int] = []
            for a, b in itertools.pairwise([e for e in edges if lo <= e <= hi]):
                words.extend([a, b - a])
                for slot in self.slots:
                    i = bisect.bisect_right(slot.data.starts, a) - 1
                    words.extend(slot.words(i, a - slot.data.starts[i]))
            out.append(np.array(words, np.int64))
        return out

    def _parts(self, rows: int, threads: int) -> list[np.ndarray]:
        """The non-empty :meth:`pieces` of each thread (``threads`` as
        ``_threads`` gives them): a detached program's own, else computed
        once (``members``, the kernel's launch and ``detached`` all ask)."""
        parts = self.parts.get((rows, threads))
        if parts is not None:
            return parts
        if len(self.slots) != self.nslots:  # detached: only its own rows and threads
            raise RuntimeError("a kept program was run on other rows or threads")  # pragma: no cover
        parts = [p for p in self.pieces(rows, threads) if len(p)]
        self.parts[rows, threads] = parts
        return parts

    def run(self, rows: int, threads: int) -> pa.ChunkedArray:
        """The tree's truth (or value) on rows [0, rows), on up to ``threads`` threads."""
        size = (rows + 63) // 64
        true_out = np.zeros(size, np.uint64)
        valid_out = np.zeros(size, np.uint64) if self.nullable else None
        self._launch(rows, threads, true_out, valid_out, None)
        return bool_result(rows, true_out, valid_out)

    def count(self, rows: int, threads: int) -> int:
        """How many of rows [0, rows) are true: no bitmap is written (the
        kernel counts each block's bits as it decides them)."""
        counts = self._launch(rows, threads, None, None, None)
        return int(sum(counts))

    def members(self, rows: int, threads: int) -> np.ndarray:
        """The ``select`` column's values of the true rows, in row order.

        Each thread writes its rows' values into one buffer as the kernel
        decides them (no bitmap, no positions), from a place chosen before it
        starts: after the counts the threads before it had at the last call
        (kept with the program, for the same table: the same counts again,
        so the values are in place and nothing moves); else, and again if a
        thread found more values than the place left for them, from its
        first row's place, the runs then moved together."""
        assert self.select >= 0
        dtype = self.select_type
        assert dtype is not None
        width = _fixed_width(dtype)
        assert width is not None
        threads = _threads(rows, threads)
        firsts = [int(p[0]) for p in self._parts(rows, threads)]
        out = np.empty(rows, width)
        places, caps = _places(firsts, rows, self.shares.get((rows, threads)))
        counts = self._launch(rows, threads, None, None, (out, places, caps))
        if any(count > cap for count, cap in zip(counts, caps, strict=True)):
            places, caps = _places(firsts, rows, None)
            counts = self._launch(rows, threads, None, None, (out, places, caps))
        self.shares[rows, threads] = counts
        n = 0
        for place, count in zip(places, counts, strict=True):
            if place != n and count:
                out[n : n + count] = out[place : place + count]  # (leftwards: NumPy copies overlapping runs correctly)
            n += count
        # A few members: their own array, not a view holding the whole buffer.
        return out[:n].copy() if n < rows // 4 else out[:n]

    def _launch(
        self,
        rows: int,
        threads: int,
        true_out: np.ndarray | None,
        valid_out: np.ndarray | None,
        select: tuple[np.ndarray, list[int], list[int]] | None,
    ) -> list[int]:
        """Each thread's count of true rows.  ``select``: the buffer the
        selected values go to, and each thread's place in it and the most
        values it writes there (:meth:`members`)."""
        kernel = _fused_kernel()
        assert kernel is not None
        threads = _threads(rows, threads)
        words = self.words
        stride = _PIECE_HEAD + _SLOT * self.nslots
        true_address = kernel_address(true_out) if true_out is not None else None
        valid_address = kernel_address(valid_out) if valid_out is not None else None
        parts = self._parts(rows, threads)
        out, places, caps = select if select is not None else (None, [0] * len(parts), [0] * len(parts))
        width = out.itemsize if out is not None else 0
        # Every thread's arguments made here: a pool thread only calls the
        # kernel (it starts 50-100 µs after the caller's; its Python
        # preamble delayed it more).  A thread's values go from its place
        # in the output (``members``).
        scratch = [np.empty(3 * _KERNEL_BLOCK_WORDS * (self.depth + 3), np.uint64) for _ in parts]
        out_base = kernel_address(out) if out is not None else None
        program = kernel_address(words)
        tasks = [
            functools.partial(
                kernel,
                program,
                0,
                kernel_address(pieces),
                len(pieces) // stride,
                self.nslots,
                true_address,
                valid_address,
                kernel_address(room),
                self.depth,
                self.select,
                width,
                out_base + place * width if out_base is not None else None,
                cap,
            )
            for pieces, room, place, cap in zip(parts, scratch, places, caps, strict=True)
        ]
        counts: list[int] = run_pooled(tasks, threads)
        del scratch  # (held until every kernel call returned)
        return counts


def _places(firsts: list[int], rows: int, shares: list[int] | None) -> tuple[list[int], list[int]]:
    """Where each thread (first rows ``firsts``) writes its selected values
    in a buffer of ``rows`` values, and how many it may write there.  With
    ``shares`` (a guess: each thread's count at the last call, taken as at
    most its rows), after the guessed counts of the threads before it, up to
    the next thread's place; without, from its first row (where it can
    write all its rows)."""
    ends = [*firsts[1:], rows]
    if shares is None or len(shares) != len(firsts):
        return firsts, [end - first for first, end in zip(firsts, ends, strict=True)]
    guess = [min(max(share, 0), end - first) for share, first, end in zip(shares, firsts, ends, strict=True)]
    places = [0, *itertools.accumulate(guess[:-1])]
    return places, [*guess[:-1], rows - places[-1]]


def _threads(rows: int, threads: int) -> int:
    """The threads a program runs on over ``rows`` rows."""
    return max(1, min(threads, rows // KERNEL_ROWS_PER_THREAD))


def kernel_loaded() -> bool:
    """Whether the C kernel of fused trees is there (and not turned off)."""
    return _fused_kernel() is not None


def _fused_kernel() -> Any:
    return kernels.function("segql_fused_run", _I, [_P, _I, _P, _I, _I, _P, _P, _P, _I, _I, _I, _P, _I])


def kernel_address(array: np.ndarray) -> int:
    return kernels.address(array)


# ---------------------------------------------------------------- compiling
class Compiler:
    """Fused trees of one executor's nodes (None: not fusable), remembered per node."""

    def __init__(self, executor: Executor) -> None:
        self.ex = executor
        self.trees: dict[ast.Node, Tree | None] = {}
        self.root: ast.Node | None = None
        self.dictionaries: list[tuple[pa.Array, ast.Node, tuple[np.ndarray, np.ndarray]]] = []

    def fused(self, node: ast.Node, truth: bool) -> Value | None:
        """``node``'s truth (or value) fused, or None when it is not worth it or cannot be."""
        if isinstance(node, (ast.In, ast.StringTest)) and _fused_kernel() is None:
            return None  # a single leaf: one Arrow kernel (rule 236)
        rows = self.ex.num_rows
        key = self._kept_key(node, ("value", truth)) if rows else None
        kept = _kept(key, self.ex.table)
        if kept is not None:
            return kept.run(rows, self.ex.threads)
        tree = self._root(node)
        if tree is None or all(isinstance(leaf, BoolLeaf) for leaf in tree.leaves()):
            return None  # bitmaps only (bool columns, values computed already): Arrow's kernels combine them faster
        if self.ex.threads > 1:
            tree = attrs.evolve(tree, threads=self.ex.threads)
        return run(tree, rows, truth, functools.partial(self._keep, key, tree))

    def program(self, node: ast.Node, select: str | None = None) -> Program | None:
        """``node``'s truth compiled for the C kernel, to be counted or (with
        ``select``, a column of the table) to take that column's values of
        its true rows, or None where the kernel does not take it (then the
        truth is computed and counted or selected as a value).  Not a tree
        of bitmaps only: Arrow's kernels combine them and count the result
        faster (the 20-segment file's count: 12.3-12.9 ms against 15.7 ms in
        the kernel)."""
        if not self.ex.num_rows or _fused_kernel() is None:
            return None
        key = self._kept_key(node, ("truth", select))
        kept = _kept(key, self.ex.table)
        if kept is not None:
            return kept
        tree = self._root(node)
        if tree is None or all(isinstance(leaf, BoolLeaf) for leaf in tree.leaves()):
            return None
        program = Program.of(tree, True, self.ex.table.column(select) if select is not None else None)
        if program is not None:
            self._keep(key, tree, program)
        return program

    # ------------------------------------------------------- kept programs
    def _kept_key(self, node: ast.Node, use: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """What a compiled program of ``node`` depends on besides its
        table's columns (``_PROGRAMS``): the node, what it is compiled for,
        the rows and threads, the kernel's loops, the instant (when the node
        reads it), the zone and the parameters it reads; None when a
        parameter's value cannot be a key."""
        ex = self.ex
        return _hashable(
            (
                node,
                use,
                id(ex.table),
                ex.num_rows,
                _threads(ex.num_rows, ex.threads),  # (the pieces a kept program holds are for these)
                KERNEL_SIMD,
                ex.table_name,
                *self._read(node),
            )
        )

    def _keep(self, key: tuple[Any, ...] | None, tree: Tree, program: Program) -> None:
        """Keep ``program`` for the next evaluations over this table when
        every column it reads is one of the table's, as it is (not a value
        this evaluation computed, not a column converted)."""
        if key is None or not all(self._stable(leaf.data) for leaf in tree.leaves()):
            return
        kept = program.detached(self.ex.num_rows, max(tree.threads, self.ex.threads))
        # (Forgotten when the table goes: a batch, a row slice, tables of one evaluation only.)
        _PROGRAMS.put(key, self.ex.table, kept, PROGRAMS_KEPT)

    def _stable(self, data: Chunks) -> bool:
        """Whether ``data`` is (a view of the buffers of) a column of the
        table, so that the addresses a program holds stay valid and mean the
        same values as long as the table lives."""
        if data.source is None:
            return False
        kind, name = data.source
        if kind == "column":
            return True
        raw = self.ex.table.column(name).chunks
        own = [c for c in raw if len(c)]
        return len(own) == len(data.chunks) and all(
            _addresses(a) == _addresses(b) and _addresses(a.dictionary) == _addresses(b.dictionary)
            for a, b in zip(own, data.chunks, strict=True)
        )

    def _root(self, node: ast.Node) -> Tree | None:
        """``node``'s tree when it is fused as a root: a tree, or a leaf worth a pass alone."""
        outer, self.root = self.root, node  # (computing a shared node inside fuses that node)
        try:
            tree = self.tree(node)
        finally:
            self.root = outer
        if tree is None or (tree.leaf is not None and not self._alone(tree.leaf, self.ex.num_rows)):
            return None
        return tree

    @staticmethod
    def _alone(leaf: Leaf, rows: int) -> bool:
        """Whether a single leaf is fused: a date comparison (rule 239), and
        with the C kernel any leaf but a bitmap on a large table (one pass
        writing bits, on the threads; rule 264)."""
        if getattr(leaf, "alone", False):
            return True
        return rows >= KERNEL_ALONE_MIN_ROWS and not isinstance(leaf, BoolLeaf) and _fused_kernel() is not None

    def tree(self, node: ast.Node) -> Tree | None:
        if node in self.trees:
            cached = self.trees[node]
            if cached is None or cached.leaf is None or isinstance(cached.leaf, BoolLeaf):
                return cached
            # A leaf compiled as a root (left to Arrow) may have been computed since.
            known = self.ex.known_value(node)
            return cached if known is None else self._value_leaf(known)
        try:
            tree = self._tree(node)
        except (SegqlError, pa.ArrowException, OverflowError, ValueError):
            tree = None  # a constant that does not evaluate: the ordinary path decides (and reports)
        self.trees[node] = tree
        return tree

    def _tree(self, node: ast.Node) -> Tree | None:
        ex = self.ex
        known = ex.known_value(node)
        if known is not None:
            return self._value_leaf(known)
        tree = self._structure(node)
        if tree is not None and node is not self.root and ex.shared(node) and isinstance(node, _SHARED):
            return self._value_leaf(ex.eval(node))  # read by several declarations: computed once, kept
        return tree

    def _structure(self, node: ast.Node) -> Tree | None:
        if isinstance(node, (ast.And, ast.Or)):
            children = [self.tree(o) for o in node.operands]
            if any(c is None for c in children):
                return None
            kept = [c for c in children if c is not None]
            if all(c.costly for c in kept) and _fused_kernel() is None:
                return None  # string tests only, no C kernel: Arrow kernels on slices per thread (rules 255, 264)
            kept.sort(key=lambda c: c.costly)  # string tests last: on the rows the others leave open
            return Tree("and" if isinstance(node, ast.And) else "or", tuple(kept))
        if isinstance(node, ast.Not):
            child = self.tree(node.operand)
            return None if child is None else Tree("not", (child,))
        if isinstance(node, ast.IsBool):
            child = self.tree(node.operand)
            if child is None:
                return None
            tree = Tree("true" if node.value else "false", (child,))
            return Tree("not", (tree,)) if node.negated else tree
        if isinstance(node, ast.Between):
            low = self.tree(ast.Compare(op=">=", left=node.operand, right=node.low))
            high = self.tree(ast.Compare(op="<=", left=node.operand, right=node.high))
            if low is None or high is None:
                return None
            tree = Tree("and", (low, high))
            return Tree("not", (tree,)) if node.negated else tree
        if isinstance(node, ast.Column) and node.type is not None and node.type.kind == "bool":
            if not _profile_column(node, self.ex):
                return None
            column = self._raw(node)
            bits = BoolLeaf(Chunks(column, ("column", node.name)))
            return Tree("leaf", leaf=bits) if pa.types.is_boolean(column.type) else None
        if isinstance(node, ast.IsNull) and isinstance(node.operand, ast.Column) and node.operand.table is None:
            column = self._raw(node.operand)
            plain = pa.types.is_string(column.type) or pa.types.is_boolean(column.type)
            if (pa.types.is_dictionary(column.type) or _fixed_width(column.type) is None) and not plain:
                return None
            return Tree("leaf", leaf=NullLeaf(Chunks(column, ("column", node.operand.name)), node.negated))
        if isinstance(node, ast.Ref):
            return None
        dictionary = self._dictionary_leaf(node)
        if dictionary is not None:
            return Tree("leaf", leaf=dictionary)
        strings = self._string_leaf(node)
        if strings is not None:
            return Tree("leaf", leaf=strings)
        if isinstance(node, ast.Compare):
            leaf = self._compare_leaf(node)
            return None if leaf is None else Tree("leaf", leaf=leaf)
        return None

    # ------------------------------------------------------------ leaves
    def _operand(self, node: ast.Node) -> bool:
        """Whether a comparison's operand is read by a leaf: a profile column,
        or (with the C kernel) a count, sum or average over a related table
        computed for every profile (decisions 309)."""
        if _profile_column(node, self.ex):
            return True
        if not _numeric_aggregate(node) or _fused_kernel() is None:
            return False
        value = self.ex.aggregates.get(node)
        return isinstance(value, (pa.Array, pa.ChunkedArray)) and len(value) == self.ex.num_rows

    def _raw(self, column: ast.Column) -> pa.ChunkedArray:
        return self.ex.table.column(column.name)

    def _value_leaf(self, value: Value) -> Tree | None:
        if isinstance(value, pa.Scalar) or not pa.types.is_boolean(value.type) or len(value) != self.ex.num_rows:
            return None
        return Tree("leaf", leaf=BoolLeaf(Chunks(value), computed=True))

    def _compare_leaf(self, node: ast.Compare) -> Leaf | None:
        op, column, other = node.op, node.left, node.right
        if not self._operand(column):
            op, column, other = _FLIP[op], node.right, node.left
            if not self._operand(column):
                return None
        assert isinstance(column, (ast.Column, ast.Aggregate))
        if not _constant(other):
            return None
        if isinstance(column, ast.Column):
            raw, source = self._raw(column), ("column", column.name)
        else:  # a related table's aggregate, one value per profile: computed by this evaluation
            raw, source = self.ex.aggregates[column], None
        dtype = _fixed_width(raw.type)
        kind = column.type.kind if column.type is not None else None
        if dtype is None:
            return None
        value, ns = self.ex._comparand(other)
        if not isinstance(value, pa.Scalar) or not value.is_valid:
            return None
        if kind in ("date", "timestamp"):
            if ns is None:
                return None
            column_ns = temporal.NS_PER_DAY if pa.types.is_date32(raw.type) else temporal.NS_PER_TICK[raw.type.unit]
            if kind == "date" and not pa.types.is_date32(raw.type):
                return None
            if kind == "timestamp" and not pa.types.is_timestamp(raw.type):
                return None
            op, bound = _integer_bound(*_temporal_bound(op, int(value.as_py()), ns, column_ns), dtype)
        elif kind == "int" and pa.types.is_integer(raw.type):
            if ns is not None or not pa.types.is_integer(value.type):
                return None
            op, bound = _integer_bound(op, int(value.as_py()), dtype)
        elif kind == "float" and pa.types.is_floating(raw.type) and raw.type != pa.float16():
            if ns is not None:
                return None
            exact = pa.types.is_integer(value.type) and abs(value.as_py()) <= FLOAT_EXACT_INT
            if not (pa.types.is_floating(value.type) or exact):
                return None
            bound = np.float64(value.as_py())
        else:
            return None
        return CompareLeaf(Chunks(raw, source), dtype, op, bound, alone=kind == "date")

    def _string_leaf(self, node: ast.Node) -> Leaf | None:
        """``=``, ``!=``, ``[not] in``, ``[not] starts with / ends with /
        contains`` of a plain string column with non-null string constants."""
        column = column_against_constants(node)
        if column is None or not _profile_column(column, self.ex) or column.type is None:
            return None
        raw = self._raw(column)
        if column.type.kind != "string" or not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
            return None
        if isinstance(node, ast.Compare):
            if node.op not in ("=", "!="):
                return None
            other = node.right if node.left is column else node.left
            value = self.ex.eval(other)
            texts = [_text(value)]
            op, negated = "equal", node.op == "!="
        elif isinstance(node, ast.In):
            if not isinstance(node.values, (ast.ListLiteral, ast.Param)):
                return None
            items = self.ex.eval(node.values)
            if not isinstance(items, pa.Scalar) or not items.is_valid or not pa.types.is_list(items.type):
                return None
            texts = [_text(pa.scalar(v, items.type.value_type)) for v in items.as_py()]
            if not texts:
                return None
            op, negated = "equal", node.negated
        elif isinstance(node, ast.StringTest) and node.op in ("starts_with", "ends_with", "contains"):
            if node.operand is not column:
                return None
            texts = [_text(self.ex.eval(node.pattern))]
            op = {"starts_with": "prefix", "ends_with": "suffix", "contains": "contains"}[node.op]
            negated = node.negated
        else:
            return None
        if any(t is None for t in texts):
            return None
        needles = [t.encode("utf-8") for t in texts if t is not None]
        return StringLeaf(Chunks(raw, ("column", column.name)), op, needles, negated)

    def _dictionary_leaf(self, node: ast.Node) -> Leaf | None:
        """A comparison, ``in`` or string test of one dictionary column with constants."""
        if isinstance(node, ast.Between):  # split into two comparisons before it gets here
            return None
        if isinstance(node, ast.In) and not isinstance(node.values, (ast.ListLiteral, ast.Param)):
            return None
        column = column_against_constants(node)
        if column is None or not _profile_column(column, self.ex):
            return None
        if column.type is None or column.type.kind != "string":
            return None
        if not pa.types.is_dictionary(self._raw(column).type):
            return None
        canonical = self.ex.eval(column)
        assert isinstance(canonical, pa.ChunkedArray)
        chunks = Chunks(canonical, ("canonical", column.name))
        # Chunks sharing a dictionary's buffers (a Parquet file's row groups)
        # share one table, found by the buffers' addresses once per chunk.
        tables, seen = [], {}
        for chunk in chunks.chunks:
            dictionary = chunk.dictionary
            ident = (len(dictionary), dictionary.offset, _addresses(dictionary))
            if ident not in seen:
                seen[ident] = self._dictionary_table(node, column, dictionary)
            tables.append(seen[ident])
        return DictLeaf(chunks, tables)

    def _dictionary_table(
        self, node: ast.Node, column: ast.Column, dictionary: pa.Array
    ) -> tuple[np.ndarray, np.ndarray]:
        for seen, seen_node, table in self.dictionaries:
            if seen_node == node and _same_array(seen, dictionary):
                return table
        key = self._table_key(node, dictionary)
        with _TABLES_LOCK:
            kept = _TABLES.get(key) if key is not None else None
        if kept is not None:
            self.dictionaries.append((dictionary, node, kept[1]))
            return kept[1]
        table = self._computed_table(node, column, dictionary)
        if key is not None:
            with _TABLES_LOCK:
                _TABLES[key] = (dictionary, table)
                while len(_TABLES) > TABLES_KEPT:
                    del _TABLES[next(iter(_TABLES))]
        return table

    def _table_key(self, node: ast.Node, dictionary: pa.Array) -> tuple[Any, ...] | None:
        """What a dictionary's table depends on, for ``_TABLES``: the node,
        the dictionary's buffers (the entry holds the dictionary, so buffers
        at those addresses hold its values), the instant (when the node reads
        it), the zone and the parameters the node reads; None when a parameter's value cannot be a key."""
        layout = (dictionary.type, len(dictionary), dictionary.offset, _addresses(dictionary))
        return _hashable((node, *layout, *self._read(node)))

    def _read(self, node: ast.Node) -> tuple[Any, ...]:
        """What of the evaluation ``node`` depends on besides the data: the
        instant (when the node reads it), the zone, the parameters it reads."""
        ex = self.ex
        now, params = _reads(node)
        return ex.as_of_instant if now else None, ex.time_zone, tuple((name, ex.params.get(name)) for name in params)

    def _computed_table(
        self, node: ast.Node, column: ast.Column, dictionary: pa.Array
    ) -> tuple[np.ndarray, np.ndarray]:
        values = self.ex.on_values(column.name, dictionary).eval(node)
        if isinstance(values, pa.Scalar):
            values = pa.array([values.as_py()] * len(dictionary), pa.bool_())
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        hits = np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)
        valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
        table = (hits, np.logical_and(~hits, valid))
        for part in table:
            part.flags.writeable = False  # kept across evaluations (_TABLES)
        self.dictionaries.append((dictionary, node, table))
        return table


PROGRAMS_KEPT = 64
"""Compiled programs kept across evaluations (``_PROGRAMS``, oldest dropped first)."""
_PROGRAMS: PerTable[Program] = PerTable()
"""Programs compiled for the C kernel, per node and use (``Compiler._kept_key``),
each for the table it reads: a program holds its columns' addresses, valid
while that table lives, and no reference to it (``Program.detached``).
Compiling one takes 0.1-0.35 ms (2M rows in 16 chunks), as long as the
kernel takes over 200,000 rows (docs/decisions.md 306)."""


def _kept(key: tuple[Any, ...] | None, table: pa.Table) -> Program | None:
    """The program kept under ``key`` for ``table`` (the same object, alive), or None."""
    if key is None or _fused_kernel() is None:
        return None
    return _PROGRAMS.get(key, table)


def _addresses(array: pa.Array) -> tuple[int, ...]:
    """The addresses of an array's buffers (0: absent)."""
    return tuple(b.address if b is not None else 0 for b in array.buffers())


def _hashable(key: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """``key``, or None when some part of it (a parameter's value) cannot be hashed."""
    try:
        hash(key)
    except TypeError:
        return None
    return key


@functools.lru_cache(maxsize=4096)
def _reads(node: ast.Node) -> tuple[bool, tuple[str, ...]]:
    """Whether ``node`` reads the evaluation's instant, and the parameters it reads."""
    nodes = list(ast.walk(node))
    params = tuple(sorted({n.name for n in nodes if isinstance(n, ast.Param)}))
    return any(isinstance(n, (ast.Now, ast.Today)) for n in nodes), params


TABLES_KEPT = 64
"""Dictionary tables kept across evaluations (``_TABLES``, oldest dropped first)."""
_TABLES: dict[tuple[Any, ...], tuple[pa.Array, tuple[np.ndarray, np.ndarray]]] = {}
"""A dictionary column's per-code tables (true, false) of a node, kept across
evaluations: computing one evaluates the node over the dictionary's values
with Arrow (~0.1 ms); a count over 10,000 rows took 0.52 ms, 0.28 ms with
them kept (decisions 292).  Never modified once made."""
_TABLES_LOCK = threading.Lock()

_SHARED = (ast.And, ast.Or, ast.Not, ast.IsBool, ast.Between, ast.Compare, ast.In, ast.StringTest, ast.IsNull)
"""Nodes computed once when shared (a column is read where it is, and is never a computed value)."""


def _text(value: Any) -> str | None:
    """A constant's text, or None (a null, not a string: left to the Arrow path)."""
    if not isinstance(value, pa.Scalar) or not value.is_valid:
        return None
    if not (pa.types.is_string(value.type) or pa.types.is_large_string(value.type)):
        return None
    text = value.as_py()
    return text if isinstance(text, str) else None


def _same_array(a: pa.Array, b: pa.Array) -> bool:
    if a is b:
        return True
    if len(a) != len(b) or a.type != b.type or a.offset != b.offset:
        return False
    if _addresses(a) == _addresses(b):
        return True
    return len(a) <= 4096 and a.equals(b)


def _profile_column(node: ast.Node, ex: Executor) -> bool:
    return isinstance(node, ast.Column) and node.table is None and ex.table_name is None and ex.has_column(node.name)


@functools.lru_cache(maxsize=4096)
def _constant(node: ast.Node) -> bool:
    """Made of literals, parameters and the evaluation's instant only.  A
    fact of the plan's node alone (its hash is cached), so remembered: the
    walk ran on every evaluation (decision 301)."""
    variable = (ast.Column, ast.Ref, ast.Aggregate, ast.Sequence, ast.Func)
    return not any(isinstance(n, variable) for n in ast.walk(node))


def _fixed_width(dtype: pa.DataType) -> np.dtype[Any] | None:
    """The NumPy type of a column's values, for the types fused comparisons read."""
    if pa.types.is_timestamp(dtype):
        return np.dtype(np.int64)
    if pa.types.is_date32(dtype):
        return np.dtype(np.int32)
    if (pa.types.is_integer(dtype) and dtype != pa.uint64()) or dtype in (pa.float32(), pa.float64()):
        width: np.dtype[Any] = np.dtype(dtype.to_pandas_dtype())
        return width
    return None


def _temporal_bound(op: str, ticks: int, ticks_ns: int, column_ns: int) -> tuple[str, Any]:
    """``column op constant`` as a comparison of the column's own counts:
    the constant (``ticks`` of ``ticks_ns`` ns) in the column's unit, exactly;
    a constant between two counts is the one below it.  ("all", "none": every
    valid row is, or none is, in.)"""
    if ticks_ns >= column_ns:
        bound = ticks * (ticks_ns // column_ns)
        exact = True
    else:
        k = column_ns // ticks_ns
        bound, remainder = divmod(ticks, k)  # floor
        exact = remainder == 0
    if not exact:
        # column < c and column <= c: column <= floor(c); > and >=: column > floor(c).
        op = {"<": "<=", "<=": "<=", ">": ">", ">=": ">", "=": "none", "!=": "all"}[op]
    if op in ("all", "none"):
        return op, None
    return op, bound


def _integer_bound(op: str, bound: int, dtype: np.dtype[Any]) -> tuple[str, Any]:
    """``column op bound`` for an integer column of ``dtype``: the bound in
    that type (so NumPy compares without widening the column), or a constant
    test ("all", "none") when the bound is beyond every value of the type."""
    if op in ("all", "none"):
        return op, None
    info = np.iinfo(dtype)
    if bound > info.max:
        return ("all" if op in ("<", "<=", "!=") else "none"), None
    if bound < info.min:
        return ("all" if op in (">", ">=", "!=") else "none"), None
    return op, dtype.type(bound)


def bandwidth_bound(exprs: Sequence[ast.Node], schema: pa.Schema) -> bool:
    """Whether every expression is a boolean tree of the leaves the fused
    evaluator reads (or one such leaf), judged from the plan and the schema
    alone.  Such declarations read each column once at the memory's speed,
    which one core already saturates: measured on 2 cores, two row slices on
    two threads took 1.5-1.7x the time of one (docs/decisions.md 238).  The
    C kernel splits such a slice's rows over the threads itself (rule 262),
    string tests included, and a reference to another declaration (itself
    judged here) is a bitmap the slice already holds (rule 264)."""
    kernel = _fused_kernel() is not None
    return bool(exprs) and all(_simple(e, schema, strings=kernel, kernel=kernel) for e in exprs)


def _simple(node: ast.Node, schema: pa.Schema, strings: bool = False, kernel: bool = False) -> bool:
    """``strings``: a plain string test counts, as it runs on the rows its
    siblings leave open (rule 255: alone, or with string tests only, it runs
    on every row, a compute-bound Arrow kernel that two threads speed up),
    or in the C kernel (``kernel``) on the threads."""
    if isinstance(node, (ast.And, ast.Or)):
        if kernel:
            return all(_simple(o, schema, strings, kernel) for o in node.operands)
        plain = [o for o in node.operands if _simple(o, schema)]
        return bool(plain) and all(o in plain or _simple(o, schema, strings=True) for o in node.operands)
    if isinstance(node, (ast.Not, ast.IsBool)):
        return _simple(node.operand, schema, strings, kernel)
    if isinstance(node, ast.Ref):
        return kernel
    if isinstance(node, ast.IsNull):
        return isinstance(node.operand, ast.Column) and _readable(node.operand, schema) is not None
    if isinstance(node, ast.Column):
        return _readable(node, schema) == "bool"
    if kernel and _aggregate_against_constants(node):
        return True
    column = column_against_constants(node)
    if column is None:
        return False
    readable = _readable(column, schema)
    if readable == "dictionary":
        return True
    if readable == "string":
        if isinstance(node, ast.Compare):
            return strings and node.op in ("=", "!=")
        return strings and (isinstance(node, ast.In) or (isinstance(node, ast.StringTest) and node.op != "matches"))
    return readable == "fixed" and isinstance(node, (ast.Compare, ast.Between))


def _numeric_aggregate(node: ast.Node) -> bool:
    """A count, sum or average over a related table: an int or float per profile."""
    return (
        isinstance(node, ast.Aggregate)
        and node.func in ("count", "sum", "avg")
        and node.type is not None
        and node.type.kind in ("int", "float")
    )


def _aggregate_against_constants(node: ast.Node) -> bool:
    """A comparison or ``between`` of such an aggregate with constants."""
    if isinstance(node, ast.Between):
        parts = [node.operand, node.low, node.high]
    elif isinstance(node, ast.Compare):
        parts = [node.left, node.right]
    else:
        return False
    aggregates = [p for p in parts if _numeric_aggregate(p)]
    return len(aggregates) == 1 and all(p is aggregates[0] or _constant(p) for p in parts)


def column_against_constants(node: ast.Node) -> ast.Column | None:
    """The one column a comparison, ``between``, ``in`` or string test reads,
    when its other operands are constants; else None."""
    if isinstance(node, ast.Between):
        parts = [node.operand, node.low, node.high]
    elif isinstance(node, ast.Compare):
        parts = [node.left, node.right]
    elif isinstance(node, ast.In):
        parts = [node.operand, node.values]
    elif isinstance(node, ast.StringTest):
        parts = [node.operand, node.pattern]
    else:
        return None
    columns = [p for p in parts if isinstance(p, ast.Column)]
    if len(columns) != 1 or not all(p is columns[0] or _constant(p) for p in parts):
        return None
    return columns[0]


def _readable(column: ast.Column, schema: pa.Schema) -> str | None:
    """How the fused evaluator reads a profile column: "fixed" (numbers,
    dates, timestamps), "bool", "dictionary" (strings), "string" (plain), or None."""
    if column.table is not None or column.name not in schema.names:
        return None
    dtype = schema.field(column.name).type
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_dictionary(dtype) and pa.types.is_string(dtype.value_type):
        return "dictionary"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    return "fixed" if _fixed_width(dtype) is not None else None
