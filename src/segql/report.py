"""Reports for people: segment counts, attrition, and how programs and
explanations look in a notebook.

``Program.counts`` (``Counts``): each segment's size and share, the overlap
of every pair, and optionally an exclusive allocation by priority, counted
batch by batch over ``Program.stream``: memory holds one result batch and a
k × k matrix of counts, whatever the number of rows.

``Program.attrition`` (``Attrition``): how many customers pass each clause
of a segment's top-level ``and`` chain, in the order written, cumulatively
(the funnel Hightouch and Braze show beside an audience).

``Explanation`` and ``Why`` are the texts of ``Program.explain`` and
``Program.why``: ``str`` subclasses (so ``str(x)``, ``print(x)``, ``==``
behave as they always did) that a notebook shows as text, not as an escaped
string, and as HTML.

Plots need matplotlib (the optional extra ``segql[plot]``), imported only
when a plot is drawn; files are drawn on the Agg canvas (no display, no
pyplot state) and written whole or not at all (segql.output).

The rules are docs/decisions.md 101–110.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import pyarrow as pa

from segql import ast
from segql.errors import DataError, ParameterError, SegqlError
from segql.output import atomic_output
from segql.span import Span

PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
"""What ``save_plot`` and ``segql count --plot`` write, by the file's extension."""

TABLES = ("sizes", "overlap", "allocation")
"""The tables ``Counts.to_arrow`` gives."""

_STYLE = (
    "<style>.segql-report table{border-collapse:collapse;margin:0 0 .8em 0}"
    ".segql-report th,.segql-report td{padding:2px 8px;text-align:left;vertical-align:top}"
    ".segql-report td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".segql-report caption{text-align:left;font-weight:bold;padding:2px 0}"
    ".segql-report .bar{display:inline-block;height:.8em;background:#4c78a8}</style>"
)


# ------------------------------------------------------------------ text
class Text(str):
    """A report that is text: a ``str`` that IPython prints as it is (not
    quoted and escaped) and Jupyter shows as preformatted HTML."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        lines = "\n".join(self._html_line(line) for line in str(self).splitlines())
        return f'<pre class="segql-report">{lines}</pre>'

    def _html_line(self, line: str) -> str:
        return html.escape(line)


class Explanation(Text):
    """``Program.explain``: the plan as text; in HTML the declarations stand out."""

    def _html_line(self, line: str) -> str:
        if line.startswith(("segment ", "feature ")):
            return f"<b>{html.escape(line)}</b>"
        return html.escape(line)


class Why(Text):
    """``Program.why``: the explanation tree; in HTML the verdicts are coloured."""

    def _html_line(self, line: str) -> str:
        for verdict, colour in (("  → not a member", "#b00"), ("  → member", "#070")):
            if line.startswith("segment ") and line.endswith(verdict):
                head = html.escape(line[: -len(verdict)])
                return f'<b>{head}</b><span style="color:{colour}">{html.escape(verdict)}</span>'
        if line.startswith("feature "):
            return f"<b>{html.escape(line)}</b>"
        return html.escape(line)


# ---------------------------------------------------------------- counting
def _member_bits(batch: pa.RecordBatch, names: Sequence[str]) -> np.ndarray:
    """The membership columns of a result batch as a names × words matrix
    of uint64 bitmaps (row r: bit r % 64 of word r // 64; the bits past the
    last row are 0).  A member is true and not null (segment columns are
    never null, the engine's promise; null counts as not a member).  A bool
    column whose rows start on a byte is read from its own buffers; one
    sliced from inside a byte (or any other column) goes through NumPy."""
    rows = batch.num_rows
    size = (rows + 7) // 8
    matrix = np.zeros((len(names), (size + 7) // 8 * 8), dtype=np.uint8)
    for j, name in enumerate(names):
        column = batch.column(name)
        if pa.types.is_boolean(column.type) and column.offset % 8 == 0:
            validity, values = column.buffers()
            start = column.offset // 8
            bits = np.frombuffer(values, dtype=np.uint8, count=size, offset=start)
            if validity is not None and column.null_count:
                bits = bits & np.frombuffer(validity, dtype=np.uint8, count=size, offset=start)
        else:
            flags = column if pa.types.is_boolean(column.type) else column.cast(pa.bool_())
            bits = np.packbits(flags.fill_null(False).to_numpy(zero_copy_only=False), bitorder="little")
        matrix[j, :size] = bits
    if rows % 8:
        matrix[:, size - 1] &= (1 << rows % 8) - 1
    return matrix.view(np.uint64)


@attrs.frozen
class Tally:
    """What one pass over result batches counted."""

    rows: int
    both: np.ndarray = attrs.field(eq=False)
    """k × k: rows in segment i and segment j (the diagonal: the sizes)."""
    first: np.ndarray | None = attrs.field(eq=False)
    """Per priority segment, the rows allocated to it (None: no priority)."""


def tally(batches: Iterable[pa.RecordBatch], segments: Sequence[str], priority: Sequence[str] | None) -> Tally:
    """Sizes, pairwise overlaps and the allocation, one batch at a time, on
    the batches' membership bitmaps: the overlap of segments i and j is the
    number of set bits of ``bits_i & bits_j`` (NumPy's ``bitwise_count``, as
    the fused kernels' results use it); a row goes to the first
    priority segment it is in (docs/decisions.md 316)."""
    k = len(segments)
    both = np.zeros((k, k), dtype=np.int64)
    order = [list(segments).index(name) for name in priority] if priority is not None else None
    first = np.zeros(len(order), dtype=np.int64) if order is not None else None
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        if not batch.num_rows or not k:
            continue
        bits = _member_bits(batch, segments)
        for i in range(k):
            counts = np.bitwise_count(bits[i] & bits[i:]).sum(axis=1, dtype=np.int64)
            both[i, i:] += counts
            both[i + 1 :, i] += counts[1:]
        if order is not None and first is not None:
            taken = np.zeros(bits.shape[1], dtype=np.uint64)
            for place, j in enumerate(order):
                fresh = bits[j] & ~taken
                first[place] += int(np.bitwise_count(fresh).sum())
                taken |= fresh
    return Tally(rows, both, first)


def cumulative_passes(
    batches: Iterable[pa.RecordBatch], chains: Sequence[Sequence[str]]
) -> tuple[int, list[list[int]]]:
    """For each chain of clause columns, how many rows are true in the first
    1, 2, … of them (one pass over the batches)."""
    passed = [[0] * len(chain) for chain in chains]
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for counts, chain in zip(passed, chains, strict=True):
            alive = np.ones(batch.num_rows, dtype=bool)
            for step, name in enumerate(chain):
                alive &= batch.column(name).fill_null(False).to_numpy(zero_copy_only=False)
                counts[step] += int(alive.sum())
    return rows, passed


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _when(as_of: str | None) -> str:
    return f", as of {html.escape(as_of)}" if as_of else ""


def _pandas(table: pa.Table) -> Any:
    try:
        return table.to_pandas()
    except ImportError:
        raise SegqlError("to_pandas needs pandas", hint="pip install pandas") from None


def _polars(table: pa.Table) -> Any:
    try:
        import polars
    except ImportError:
        raise SegqlError("to_polars needs Polars", hint="pip install polars") from None
    return polars.from_arrow(table)


class _Printed:
    """IPython's text display of a report: its ``text()``."""

    def text(self) -> str:
        raise NotImplementedError

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())


def table_lines(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] | None = None, pretty: bool = False
) -> list[str]:
    """A text table's lines: columns separated by two spaces, or (``pretty``)
    drawn with box characters; ``right`` columns right-aligned."""
    right = right or set()
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return ("│ " + " │ ".join(parts) + " │") if pretty else "  ".join(parts).rstrip()

    if not pretty:
        return [line(header), *(line(r) for r in rows)]
    top = "┌─" + "─┬─".join("─" * w for w in widths) + "─┐"
    mid = "├─" + "─┼─".join("─" * w for w in widths) + "─┤"
    bottom = "└─" + "─┴─".join("─" * w for w in widths) + "─┘"
    return [top, line(header), mid, *(line(r) for r in rows), bottom]


def render_table(rows: list[list[str]], header: list[str], pretty: bool, right: set[int] | None = None) -> str:
    """:func:`table_lines` as one text, each line ended."""
    return "\n".join(table_lines(header, rows, right, pretty)) + "\n"


# ------------------------------------------------------------------ Counts
@attrs.frozen
class Counts(_Printed):
    """Segment sizes, shares, overlaps and (with a priority) the exclusive
    allocation, from ``Program.counts``.  Tables: ``to_arrow("sizes" |
    "overlap" | "allocation")`` (and ``to_pandas``, ``to_polars``); plots:
    ``plot``, ``plot_overlap``, ``save_plot`` (matplotlib)."""

    rows: int
    """Customers (profile rows) counted."""
    sizes: dict[str, int]
    """Members of each segment, in program order."""
    overlap: dict[str, dict[str, int]]
    """``overlap[a][b]``: customers in both ``a`` and ``b`` (``overlap[a][a]`` is ``sizes[a]``)."""
    descriptions: dict[str, str | None]
    """Each segment's description (None where it has none)."""
    allocation: dict[str, int] | None = None
    """With a priority: the customers allocated to each segment of it (each
    customer to the first it is a member of), in priority order."""
    as_of: str | None = None
    """The evaluation instant (ISO 8601, UTC)."""

    @property
    def segments(self) -> list[str]:
        return list(self.sizes)

    @property
    def shares(self) -> dict[str, float | None]:
        """Each segment's share of the rows (None when there are no rows)."""
        return {name: _share(size, self.rows) for name, size in self.sizes.items()}

    @property
    def unallocated(self) -> int | None:
        """With a priority: customers in none of its segments."""
        return None if self.allocation is None else self.rows - sum(self.allocation.values())

    # ------------------------------------------------------------- tables
    def to_arrow(self, table: str = "sizes") -> pa.Table:
        """``"sizes"``: segment, description, members, share.  ``"overlap"``
        (long form, one row per ordered pair): segment, other, members (in
        both), share (of ``segment``'s members; null when it has none).
        ``"allocation"``: segment (null: in none), members, share."""
        if table == "sizes":
            return pa.table(
                {
                    "segment": pa.array(self.segments, pa.string()),
                    "description": pa.array([self.descriptions.get(n) for n in self.segments], pa.string()),
                    "members": pa.array(list(self.sizes.values()), pa.int64()),
                    "share": pa.array(list(self.shares.values()), pa.float64()),
                }
            )
        if table == "overlap":
            pairs = [(a, b) for a in self.segments for b in self.segments]
            return pa.table(
                {
                    "segment": pa.array([a for a, _ in pairs], pa.string()),
                    "other": pa.array([b for _, b in pairs], pa.string()),
                    "members": pa.array([self.overlap[a][b] for a, b in pairs], pa.int64()),
                    "share": pa.array([_share(self.overlap[a][b], self.sizes[a]) for a, b in pairs], pa.float64()),
                }
            )
        if table == "allocation":
            if self.allocation is None:
                raise ParameterError("these counts have no allocation", hint="pass priority=[...] to Program.counts")
            names: list[str | None] = [*self.allocation, None]
            members = [*self.allocation.values(), self.unallocated]
            return pa.table(
                {
                    "segment": pa.array(names, pa.string()),
                    "members": pa.array(members, pa.int64()),
                    "share": pa.array([_share(m or 0, self.rows) for m in members], pa.float64()),
                }
            )
        raise ParameterError(f"no table {table!r}", hint=f"one of {', '.join(TABLES)}")

    def to_pandas(self, table: str = "sizes") -> Any:
        """``to_arrow(table)`` as a pandas DataFrame (pandas must be installed)."""
        return _pandas(self.to_arrow(table))

    def to_polars(self, table: str = "sizes") -> Any:
        """``to_arrow(table)`` as a Polars DataFrame (Polars must be installed)."""
        return _polars(self.to_arrow(table))

    # ----------------------------------------------------- notebook display
    def text(self) -> str:
        """The sizes (with descriptions) and the overlaps as plain text tables."""
        when = f", as of {self.as_of}" if self.as_of else ""
        lines = [f"{self.rows:,} customers{when}"]
        rows = [
            [n, f"{self.sizes[n]:,}", _percent(self.shares[n]), " ".join((self.descriptions.get(n) or "").split())]
            for n in self.segments
        ]
        lines += table_lines(["segment", "members", "share", "description"], rows, {1, 2})
        if len(self.segments) >= 2:
            lines += ["", "overlap (customers in both)"]
            matrix = [[a, *(f"{self.overlap[a][b]:,}" for b in self.segments)] for a in self.segments]
            lines += table_lines(["", *self.segments], matrix, set(range(1, len(self.segments) + 1)))
        if self.allocation is not None:
            lines += ["", "allocation (each customer in the first of the priority it is in)"]
            shown = [*self.allocation.items(), ("(none)", self.unallocated or 0)]
            body = [[n, f"{m:,}", _percent(_share(m, self.rows))] for n, m in shown]
            lines += table_lines(["segment", "members", "share"], body, {1, 2})
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        parts = [_STYLE, '<div class="segql-report">']
        when = _when(self.as_of)
        largest = max(self.sizes.values(), default=0)
        body = []
        for name in self.segments:
            size = self.sizes[name]
            width = round(120 * size / largest) if largest else 0
            body.append(
                f"<tr><td>{html.escape(name)}</td><td class='n'>{size:,}</td>"
                f"<td class='n'>{_percent(self.shares[name])}</td>"
                f"<td><span class='bar' style='width:{width}px'></span></td>"
                f"<td>{html.escape(self.descriptions.get(name) or '')}</td></tr>"
            )
        parts.append(
            f"<table><caption>segments ({self.rows:,} customers{when})</caption>"
            "<tr><th>segment</th><th>members</th><th>share</th><th></th><th>description</th></tr>"
            + "".join(body)
            + "</table>"
        )
        if len(self.segments) >= 2:
            head = "".join(f"<th>{html.escape(n)}</th>" for n in self.segments)
            rows = []
            for a in self.segments:
                cells = []
                for b in self.segments:
                    share = _share(self.overlap[a][b], self.sizes[a]) or 0.0
                    colour = f"rgba(76,120,168,{0.6 * share:.2f})"
                    cells.append(f"<td class='n' style='background:{colour}'>{self.overlap[a][b]:,}</td>")
                rows.append(f"<tr><th>{html.escape(a)}</th>{''.join(cells)}</tr>")
            parts.append(
                "<table><caption>overlap (customers in both; shaded by the share of the row's segment)</caption>"
                f"<tr><th></th>{head}</tr>{''.join(rows)}</table>"
            )
        if self.allocation is not None:
            shown = [*((html.escape(n), m) for n, m in self.allocation.items()), ("(none)", self.unallocated or 0)]
            rows = [
                f"<tr><td>{n}</td><td class='n'>{m:,}</td><td class='n'>{_percent(_share(m, self.rows))}</td></tr>"
                for n, m in shown
            ]
            parts.append(
                "<table><caption>allocation (each customer in the first of the priority it is in)</caption>"
                f"<tr><th>segment</th><th>members</th><th>share</th></tr>{''.join(rows)}</table>"
            )
        parts.append("</div>")
        return "".join(parts)

    # ------------------------------------------------------------- plots
    def plot(self, ax: Any = None) -> Any:
        """A horizontal bar chart of the segment sizes on ``ax`` (default: a
        new pyplot figure); returns the axes."""
        if ax is None:
            ax = _pyplot().subplots(figsize=(7, 0.5 + 0.4 * max(len(self.segments), 1)))[1]
        names = self.segments
        positions = np.arange(len(names))
        values = [self.sizes[n] for n in names]
        ax.barh(positions, values, color="#4c78a8")
        ax.set_yticks(positions, labels=names)
        ax.invert_yaxis()  # program order, top to bottom
        largest = max(values, default=0)
        for y, value in zip(positions, values, strict=True):
            ax.text(value + largest * 0.01, y, f"{value:,} ({_percent(_share(value, self.rows))})", va="center")
        ax.set_xlim(0, largest * 1.25 if largest else 1)
        ax.xaxis.set_major_formatter("{x:,.0f}")
        ax.set_xlabel(f"members (of {self.rows:,} customers)")
        ax.set_title("segment sizes")
        return ax

    def plot_overlap(self, ax: Any = None) -> Any:
        """A heatmap of the overlaps on ``ax`` (default: a new pyplot figure):
        cell (a, b) is shaded by the share of ``a``'s members also in ``b``
        and labelled with the count; returns the axes."""
        if ax is None:
            side = 1.5 + 0.6 * max(len(self.segments), 1)
            ax = _pyplot().subplots(figsize=(side + 1, side))[1]
        names = self.segments
        shares = np.array(
            [[_share(self.overlap[a][b], self.sizes[a]) or 0.0 for b in names] for a in names], dtype=np.float64
        ).reshape(len(names), len(names))
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        ticks = np.arange(len(names))
        ax.set_xticks(ticks, labels=names, rotation=45, ha="right")
        ax.set_yticks(ticks, labels=names)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                ax.text(
                    j,
                    i,
                    f"{self.overlap[a][b]:,}",
                    ha="center",
                    va="center",
                    color="white" if shares[i, j] > 0.6 else "black",
                )
        ax.figure.colorbar(image, ax=ax, label="share of the row's segment")
        ax.set_title("overlap (customers in both)")
        return ax

    def save_plot(self, path: str | os.PathLike[str]) -> None:
        """The sizes chart (and, with two segments or more, the overlap
        heatmap beside it) as a PNG, SVG or PDF file, by extension; written
        whole or not at all (segql.output)."""
        target = os.fspath(path)
        kind = plot_format(target)
        figure_class, canvas_class = _agg()
        pair = len(self.segments) >= 2
        rows = max(len(self.segments), 1)
        height = max(3.5 if pair else 2.0, 1.5 + 0.55 * rows)
        figure = figure_class(figsize=(13 if pair else 7, height), layout="constrained")
        canvas_class(figure)
        if pair:
            left, right = figure.subplots(1, 2, width_ratios=[1.3, 1])
            self.plot(left)
            self.plot_overlap(right)
        else:
            self.plot(figure.subplots())
        try:
            with atomic_output(target) as temporary:
                figure.savefig(temporary, format=kind, dpi=100)
        except OSError as exc:
            raise DataError(f"could not write {target}: {exc.strerror or exc}") from None


def plot_format(path: str) -> str:
    """The file format of a plot path (by extension), or a ParameterError."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in PLOT_FORMATS:
        raise ParameterError(
            f"{path}: a plot is written as {', '.join(PLOT_FORMATS)}, not {suffix or '(no extension)'}",
            hint="e.g. sizes.png",
        )
    return PLOT_FORMATS[suffix]


def require_matplotlib() -> None:
    """A SegqlError when matplotlib cannot be imported (before any work)."""
    _agg()


def _agg() -> tuple[Any, Any]:
    """matplotlib's Figure and its Agg canvas (no display, no pyplot state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise _no_matplotlib() from None
    return Figure, FigureCanvasAgg


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot
    except ImportError:
        raise _no_matplotlib() from None
    return matplotlib.pyplot


def _no_matplotlib() -> SegqlError:
    return SegqlError("plots need matplotlib, which is not installed", hint="pip install 'segql[plot]'")


# --------------------------------------------------------------- attrition
@attrs.frozen
class AttritionPlan:
    """The clauses of some segments as segments of a derived program: the
    source itself (so the clauses see its features and parameters), then one
    ``segment __segql_attrition_i_k = (clause)`` per clause
    (docs/decisions.md 105)."""

    source: str
    chains: list[list[str]]
    """Per segment, its clauses' segment names in the derived program."""
    clauses: list[list[str]]
    """Per segment, its clauses' text (whitespace runs made single spaces)."""
    blocks: list[tuple[int, Span]]
    """Per clause: the derived source's line where its text starts, and its span in the original."""

    def in_source(self, exc: SegqlError, original: str) -> SegqlError:
        """An error of the derived program, its position moved to where the
        clause stands in the original source."""
        if exc.line is None:
            return exc
        moved = False
        for first, span in self.blocks:
            lines = span.end_line - span.line + 1
            if first <= exc.line < first + lines:
                exc.line, exc.column = _moved(exc.line, exc.column, first, span)
                if exc.end_line is not None and first <= exc.end_line < first + lines:
                    exc.end_line, exc.end_column = _moved(exc.end_line, exc.end_column, first, span)
                else:
                    exc.end_line = exc.end_column = None
                moved = True
                break
        if not moved and exc.line > original.count("\n") + 1:  # on a line only the derived source has
            exc.line = exc.column = exc.end_line = exc.end_column = None
        exc.source_line = None
        return exc.with_source(original)


def _moved(line: int, column: int | None, first: int, span: Span) -> tuple[int, int | None]:
    offset = line - first
    if column is None:
        return span.line + offset, None
    return span.line + offset, column + (span.column - 1 if offset == 0 else 0)


def attrition_plan(source: str, tree: ast.SourceFile, names: Sequence[str], taken: Sequence[str]) -> AttritionPlan:
    """The derived program that evaluates each clause of the top-level ``and``
    chain of segments ``names`` (a parenthesised group is one clause); its
    segment names avoid ``taken`` (case-insensitively)."""
    decls = {d.name: d for d in tree.decls if isinstance(d, ast.SegmentDecl)}
    avoid = {n.lower() for n in taken}
    derived = "" if tree.bare else source + "\n\n"
    chains: list[list[str]] = []
    clauses: list[list[str]] = []
    blocks: list[tuple[int, Span]] = []
    for i, name in enumerate(names):
        expr = decls[name].expr
        parts = expr.operands if isinstance(expr, ast.And) else (expr,)
        chain: list[str] = []
        texts: list[str] = []
        for k, part in enumerate(parts):
            hidden = f"__segql_attrition_{i}_{k}"
            while hidden.lower() in avoid:
                hidden += "_"
            text = source[part.span.start : part.span.end]
            blocks.append((derived.count("\n") + 2, part.span))
            # On lines of their own: a comment inside the clause ends before the parenthesis.
            derived += f"segment {hidden} = (\n{text}\n)\n"
            chain.append(hidden)
            texts.append(" ".join(text.split()))
        chains.append(chain)
        clauses.append(texts)
    return AttritionPlan(derived, chains, clauses, blocks)


@attrs.frozen
class Step:
    """One clause of a segment's top-level ``and`` chain."""

    segment: str
    step: int
    """1 for the first clause as written."""
    clause: str
    """The clause's source text (whitespace runs made single spaces)."""
    customers: int
    """Customers for whom this clause and every earlier one is true."""


@attrs.frozen
class Attrition(_Printed):
    """``Program.attrition``: per segment, how many customers pass each clause
    of its top-level ``and`` chain, cumulatively, in the order written.  The
    last step of a segment counts its members."""

    rows: int
    steps: tuple[Step, ...]
    descriptions: dict[str, str | None]
    as_of: str | None = None

    @property
    def segments(self) -> list[str]:
        return list(dict.fromkeys(step.segment for step in self.steps))

    def of(self, segment: str) -> list[Step]:
        """The steps of one segment."""
        return [s for s in self.steps if s.segment == segment]

    def kept(self, step: Step) -> float | None:
        """The share of the previous step's customers (of all rows, for step 1) this step keeps."""
        before = self.rows if step.step == 1 else self.of(step.segment)[step.step - 2].customers
        return _share(step.customers, before)

    def to_arrow(self) -> pa.Table:
        """segment, step, clause, customers, share (of all rows), kept (of the previous step)."""
        return pa.table(
            {
                "segment": pa.array([s.segment for s in self.steps], pa.string()),
                "step": pa.array([s.step for s in self.steps], pa.int64()),
                "clause": pa.array([s.clause for s in self.steps], pa.string()),
                "customers": pa.array([s.customers for s in self.steps], pa.int64()),
                "share": pa.array([_share(s.customers, self.rows) for s in self.steps], pa.float64()),
                "kept": pa.array([self.kept(s) for s in self.steps], pa.float64()),
            }
        )

    def to_pandas(self) -> Any:
        return _pandas(self.to_arrow())

    def to_polars(self) -> Any:
        return _polars(self.to_arrow())

    HEADER = ("step", "clause", "customers", "share", "kept")
    """The columns of ``title``/``cells`` tables; 0, 2, 3, 4 are numbers."""

    def title(self, segment: str) -> str:
        description = self.descriptions.get(segment)
        return f"segment {segment}" + (f" — {description}" if description else "") + f" ({self.rows:,} rows)"

    def cells(self, segment: str, separators: bool = True) -> list[list[str]]:
        """One segment's steps as text cells (``HEADER``)."""
        number = "{:,}" if separators else "{}"
        rows = []
        for s in self.of(segment):
            share = _percent(_share(s.customers, self.rows))
            rows.append([str(s.step), s.clause, number.format(s.customers), share, _percent(self.kept(s))])
        return rows

    def text(self, separators: bool = True) -> str:
        """Each segment's steps as a plain text table."""
        lines: list[str] = []
        for segment in self.segments:
            lines += [*([""] if lines else []), self.title(segment)]
            lines += table_lines(self.HEADER, self.cells(segment, separators), {0, 2, 3, 4})
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        parts = [_STYLE, '<div class="segql-report">']
        when = _when(self.as_of)
        for segment in self.segments:
            description = self.descriptions.get(segment)
            title = html.escape(segment) + (f" — {html.escape(description)}" if description else "")
            rows = []
            for step in self.of(segment):
                width = round(120 * step.customers / self.rows) if self.rows else 0
                rows.append(
                    f"<tr><td class='n'>{step.step}</td><td><code>{html.escape(step.clause)}</code></td>"
                    f"<td class='n'>{step.customers:,}</td>"
                    f"<td class='n'>{_percent(_share(step.customers, self.rows))}</td>"
                    f"<td class='n'>{_percent(self.kept(step))}</td>"
                    f"<td><span class='bar' style='width:{width}px'></span></td></tr>"
                )
            parts.append(
                f"<table><caption>{title} ({self.rows:,} customers{when})</caption>"
                "<tr><th>step</th><th>clause</th><th>customers</th><th>share</th><th>kept</th><th></th></tr>"
                + "".join(rows)
                + "</table>"
            )
        parts.append("</div>")
        return "".join(parts)


# ----------------------------------------------------------------- Program
def program_html(
    segments: Mapping[str, tuple[str | None, str]],
    features: Mapping[str, tuple[str | None, str, str]],
    params: Mapping[str, tuple[str, str, bool]],
    title: str,
) -> str:
    """A program as HTML: ``segments`` name -> (description, definition),
    ``features`` name -> (description, type, definition), ``params`` name ->
    (type, default, declared).  Every name and text is escaped."""
    parts = [_STYLE, '<div class="segql-report">', f"<b>{html.escape(title)}</b>"]

    def table(caption: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if not rows:
            return
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
        parts.append(f"<table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{body}</table>")

    def code(text: str) -> str:
        return f"<code>{html.escape(text)}</code>"

    table(
        "segments",
        ["segment", "description", "definition"],
        [[html.escape(n), html.escape(d or ""), code(text)] for n, (d, text) in segments.items()],
    )
    table(
        "features",
        ["feature", "type", "description", "definition"],
        [[html.escape(n), code(t), html.escape(d or ""), code(text)] for n, (d, t, text) in features.items()],
    )
    table(
        "parameters",
        ["parameter", "type", "default"],
        [
            [code("$" + n), code(t) if declared else "<i>(undeclared)</i>", code(default)]
            for n, (t, default, declared) in params.items()
        ],
    )
    parts.append("</div>")
    return "".join(parts)
