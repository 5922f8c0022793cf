"""Completion at a position.

The text before the cursor is read with the tolerant lexer (it never fails,
so a half-typed source completes): the word being typed is the prefix, the
tokens before it say where the cursor is -- the header of a declaration, the
type of a parameter, an operand or an operator of an expression, inside an
aggregate over a related table (whose columns bare names then are), after
``table.`` or ``pack.``, after a number (duration units).  Proposals are
filtered by the prefix (case-insensitively) and returned in a stable order.
"""

from __future__ import annotations

import re

import attrs

from segql.editor.model import CompletionItem, EditorContext, Position
from segql.editor.text import (
    DECLARATION_KEYWORDS,
    Lines,
    Token,
    declaration_starts,
    significant,
    split,
    tokens,
    written_name,
)
from segql.errors import SegqlSyntaxError
from segql.inputs import logical_schema
from segql.registry import AggregateSpec, Function
from segql.types import SType

UNITS = (("d", "days"), ("w", "weeks"), ("m", "calendar months"), ("y", "calendar years"), ("h", "hours"))
TYPE_NAMES = ("int", "float", "decimal", "string", "bool", "date", "timestamp", "duration", "list")
OPERAND_KEYWORDS = ("not", "case", "true", "false", "null", "now", "today")
OPERATOR_KEYWORDS = ("and", "or", "in", "not", "between", "is", "contains", "starts with", "ends with", "matches")
VALUE_END_WORDS = {"null", "true", "false", "now", "today", "end"}
_DIGITS = re.compile(r"^\d[\d_]*$")


@attrs.define
class Frame:
    """An open parenthesis before the cursor."""

    callee: str | None
    table: str | None = None
    """Inside an aggregate or a sequence step: its related table (once written)."""
    tokens: int = 0
    """Significant tokens written inside the frame so far (at its own depth)."""
    kind: str = "group"  # group | call | aggregate | sequence | list


def callee_before(sig: list[Token], i: int) -> str | None:
    """The dotted name written just before the parenthesis at ``sig[i]``."""
    parts: list[str] = []
    j = i - 1
    while j >= 0 and sig[j].kind == "name":
        parts.insert(0, sig[j].text)
        if j >= 1 and sig[j - 1].text == ".":
            j -= 2
            continue
        break
    return ".".join(parts) if parts else None


class Completer:
    def __init__(self, source: str, pos: Position, ctx: EditorContext | None) -> None:
        if not isinstance(source, str):
            raise SegqlSyntaxError(f"source must be a str, got {type(source).__name__}")
        self.ctx = ctx or EditorContext()
        self.host = self.ctx.host
        self.source = source
        self.all_tokens = tokens(source)
        self.chunks = split(source, self.all_tokens)
        self.offset = Lines(source).offset(pos)

    # --------------------------------------------------------------- driver
    def run(self) -> list[CompletionItem]:
        toks = tokens(self.source, 0, self.offset)  # the token at the cursor ends there
        last = toks[-1] if toks else None
        inside = last is not None and (last.kind == "comment" or (last.kind in ("string", "qname") and not last.closed))
        if inside:
            return []
        prefix = ""
        if last is not None and last.end == self.offset and last.kind in ("name", "param", "number"):
            prefix = last.text
            toks = toks[:-1]
        sig = significant(toks)
        if prefix and _DIGITS.match(prefix):
            return self._units(prefix)
        if prefix[:1].isdigit():
            return []
        items = self._items(sig, prefix)
        low = prefix.lower()
        out: list[CompletionItem] = []
        seen: set[tuple[str, str]] = set()
        for item in items:
            if item.label.lower().startswith(low) and (item.label, item.kind) not in seen:
                seen.add((item.label, item.kind))
                out.append(item)
        return out

    def _items(self, sig: list[Token], prefix: str) -> list[CompletionItem]:
        events = _events_header(sig)
        if events is not None:
            return self._tables() if events == "table" else self._keywords(["by"])
        starts = declaration_starts(sig)
        start = starts[-1][0] if starts else 0
        keyword = starts[-1][1] if starts else ""
        head = sig[start:] if starts else sig
        current = starts[-1][2].text if starts and starts[-1][2] is not None else None
        if keyword in ("segment", "feature"):
            equals = next((i for i, t in enumerate(head) if t.text == "="), None)
            if equals is None:
                return []  # the name (and description) of the declaration
            return self._expression(head[equals + 1 :], prefix, current)
        if keyword == "param":
            colon = next((i for i, t in enumerate(head) if t.text == ":"), None)
            equals = next((i for i, t in enumerate(head) if t.text == "="), None)
            if colon is None:
                return []
            if equals is None:
                return [
                    CompletionItem(t, "keyword", "parameter type", "", t + ("<" if t == "list" else ""))
                    for t in TYPE_NAMES
                ]
            return self._expression(head[equals + 1 :], prefix, current, constants=True)
        if keyword == "events":
            return self._events(head)
        if not sig:
            return self._declaration_keywords() + self._expression([], prefix, None)
        return self._expression(sig, prefix, None)

    # ----------------------------------------------------------- expressions
    def _expression(
        self, sig: list[Token], prefix: str, current: str | None, constants: bool = False
    ) -> list[CompletionItem]:
        frames: list[Frame] = []
        cases = 0
        for i, tok in enumerate(sig):
            if frames:
                frames[-1].tokens += 1
            if tok.text in ("(", "["):
                frames.append(self._frame(sig, i) if tok.text == "(" else Frame(None, kind="list"))
                continue
            if tok.text in (")", "]"):
                if frames:
                    frames.pop()
                continue
            if tok.lower == "case":
                cases += 1
            elif tok.lower == "end" and cases:
                cases -= 1
            if frames and frames[-1].kind in ("aggregate", "sequence"):
                frame = frames[-1]
                if frame.kind == "sequence" and tok.lower == "then":
                    frame.table = None
                    frame.tokens = 0
                elif frame.table is None and tok.kind in ("name", "qname") and frame.tokens == 1:
                    frame.table = tok.text[1:-1] if tok.kind == "qname" else tok.text
        scope = next((f for f in reversed(frames) if f.kind in ("aggregate", "sequence")), None)
        prev = sig[-1] if sig else None
        # `table.` / `pack.`
        if prev is not None and prev.text == "." and len(sig) >= 2 and sig[-2].kind in ("name", "qname"):
            qualifier = sig[-2].text.strip("`")
            return self._dotted(qualifier, scope)
        if prefix.startswith("$"):
            return self._params()
        if prev is not None and _value_end(prev):
            return self._operators(frames, cases, scope, at_top=not frames)
        if (prev is not None and prev.lower == "is") or (
            prev is not None and prev.lower == "not" and len(sig) >= 2 and sig[-2].lower == "is"
        ):
            return [CompletionItem(w, "keyword", "", "", w) for w in ("null", "true", "false", "not")]
        if scope is not None and frames and frames[-1] is scope and scope.table is None and scope.tokens <= 1:
            return self._tables()
        if scope is not None and scope.table is not None:
            return self._columns_of(scope.table) + self._params() + self._functions() + self._keywords(OPERAND_KEYWORDS)
        if constants:
            return self._keywords(("true", "false", "null"))
        arguments: list[CompletionItem] = []
        if frames and frames[-1].kind == "call" and prev is not None and prev.text in ("(", ","):
            arguments = self._arguments(frames[-1].callee or "")
        return (
            arguments
            + self._columns()
            + self._declared(current)
            + self._params()
            + self._library()
            + self._functions()
            + self._aggregates()
            + self._keywords(OPERAND_KEYWORDS)
            + [CompletionItem("sequence", "snippet", "sequence(STEP then STEP [within DURATION])", "", "sequence(")]
        )

    def _frame(self, sig: list[Token], i: int) -> Frame:
        callee = callee_before(sig, i)
        if callee is None:
            return Frame(None)
        if callee.lower() == "sequence":
            return Frame(callee, kind="sequence")
        if self.host.functions.aggregate(callee) is not None:
            return Frame(callee, kind="aggregate")
        return Frame(callee, kind="call")

    def _operators(self, frames: list[Frame], cases: int, scope: Frame | None, at_top: bool) -> list[CompletionItem]:
        words = list(OPERATOR_KEYWORDS)
        if scope is not None and scope.kind == "aggregate":
            words += ["where", "by"]
        if scope is not None and scope.kind == "sequence":
            words += ["where", "then", "within"]
        if cases:
            words += ["when", "then", "else", "end"]
        items = self._keywords(words)
        if at_top:
            items += self._declaration_keywords()
        return items

    # ------------------------------------------------------------- sources
    def _units(self, number: str) -> list[CompletionItem]:
        return [
            CompletionItem(
                f"{number}{unit}", "unit", f"{number} {name}", f"a duration of {number} {name}", f"{number}{unit}"
            )
            for unit, name in UNITS
        ]

    def _declaration_keywords(self) -> list[CompletionItem]:
        snippets = {
            "segment": ('segment NAME ["description"] = CONDITION', "segment "),
            "feature": ('feature NAME ["description"] = EXPRESSION', "feature "),
            "param": ("param NAME: TYPE [= DEFAULT]", "param "),
            "events": ("events TABLE by TIME_COLUMN", "events "),
        }
        return [CompletionItem(k, "keyword", snippets[k][0], "", snippets[k][1]) for k in DECLARATION_KEYWORDS]

    def _keywords(self, words: tuple[str, ...] | list[str]) -> list[CompletionItem]:
        return [CompletionItem(w, "keyword", "", "", w) for w in words]

    def _columns(self) -> list[CompletionItem]:
        schema = self.ctx.schema
        if schema is None:
            return []
        types, unsupported = logical_schema(schema, "the data")
        key = self.ctx.key
        items = [
            CompletionItem(n, "column", f"{t} (key)" if n == key else str(t), "", written_name(n))
            for n, t in types.items()
        ]
        return items + [
            CompletionItem(n, "column", f"{t} (not usable)", "", written_name(n)) for n, t in unsupported.items()
        ]

    def _related(self) -> dict[str, dict[str, SType]]:
        related = self.ctx.related or {}
        return {name: logical_schema(s, f"related table {name}")[0] for name, s in related.items()}

    def _tables(self) -> list[CompletionItem]:
        related = self._related()
        names = list(related) if self.ctx.related is not None else self._tables_in_source()
        return [
            CompletionItem(n, "table", "related table", ", ".join(related.get(n, {})), written_name(n)) for n in names
        ]

    def _tables_in_source(self) -> list[str]:
        """Tables the source already aggregates over (when no related table is known)."""
        sig = significant(self.all_tokens)
        found: list[str] = []
        for i in range(len(sig) - 2):
            is_table = sig[i + 1].text == "(" and sig[i + 2].kind == "name"
            if is_table and self.host.functions.aggregate(sig[i].text) and sig[i + 2].text not in found:
                found.append(sig[i + 2].text)
        return found

    def _columns_of(self, table: str) -> list[CompletionItem]:
        related = self._related()
        match = next((n for n in related if n == table), None) or next(
            (n for n in related if n.lower() == table.lower()), None
        )
        if match is None:
            return []
        return [CompletionItem(n, "column", f"{t} ({match})", "", written_name(n)) for n, t in related[match].items()]

    def _dotted(self, qualifier: str, scope: Frame | None) -> list[CompletionItem]:
        columns = self._columns_of(qualifier)
        if columns:
            return columns
        low = qualifier.lower() + "."
        items: list[CompletionItem] = []
        for fn in self.host.functions:
            if fn.name.lower().startswith(low):
                items.append(_function_item(fn, fn.name[len(low) :]))
        for entry in self.host.library:
            if entry.name.lower().startswith(low):
                short = entry.name[len(low) :]
                items.append(
                    CompletionItem(short, entry.kind, f"{entry.kind} {entry.name}", entry.description or "", short)
                )
        return items

    def _declared(self, current: str | None) -> list[CompletionItem]:
        items: list[CompletionItem] = []
        for chunk in self.chunks:
            if chunk.keyword in ("segment", "feature") and chunk.name and chunk.name != current:
                doc = chunk.description or ""
                items.append(CompletionItem(chunk.name, chunk.keyword, chunk.keyword, doc, written_name(chunk.name)))
        return items

    def _params(self) -> list[CompletionItem]:
        items: list[CompletionItem] = []
        for chunk in self.chunks:
            if chunk.keyword == "param" and chunk.name:
                detail = f"param {chunk.type_text}" if chunk.type_text else "param"
                items.append(CompletionItem("$" + chunk.name, "param", detail, "", "$" + chunk.name))
        return items

    def _library(self) -> list[CompletionItem]:
        return [
            CompletionItem(e.name, e.kind, f"{e.kind} of pack {e.pack}", e.description or "", e.name)
            for e in self.host.library
        ]

    def _arguments(self, callee: str) -> list[CompletionItem]:
        """``name:`` for each parameter of the function being called."""
        fn = self.host.functions.get(callee)
        if fn is None:
            return []
        items = []
        for p in fn.params:
            default = f" = {p.default}" if p.default is not None else ""
            detail = f"argument of {fn.name}: {p.type.text}{default}"
            items.append(CompletionItem(f"{p.name}:", "param", detail, p.doc, f"{p.name}: "))
        return items

    def _functions(self) -> list[CompletionItem]:
        return [_function_item(fn, fn.name) for fn in self.host.functions]

    def _aggregates(self) -> list[CompletionItem]:
        return [_aggregate_item(a) for a in self.host.functions.aggregates()]

    def _events(self, head: list[Token]) -> list[CompletionItem]:
        if len(head) <= 1:
            return self._tables()
        by = next((i for i, t in enumerate(head) if t.lower == "by"), None)
        if by is None:
            return self._keywords(["by"]) if len(head) == 2 else []
        table = head[1].text.strip("`")
        return [i for i in self._columns_of(table) if i.detail.split(" ")[0] in ("timestamp", "date")]


def _events_header(sig: list[Token]) -> str | None:
    """ "table" right after a top-level ``events``, "by" after ``events TABLE``
    (before the ``by`` is written the lexer cannot know it is a declaration)."""
    for back, what in ((1, "table"), (2, "by")):
        if len(sig) < back or sig[-back].lower != "events":
            continue
        if what == "by" and sig[-1].kind not in ("name", "qname"):
            continue
        before = sig[-back - 1] if len(sig) > back else None
        if before is None or before.text == ";" or _value_end(before):
            return what
    return None


def _value_end(tok: Token) -> bool:
    if tok.kind in ("name", "qname"):
        return tok.lower not in _OPERATOR_WORDS or tok.lower in VALUE_END_WORDS
    if tok.kind in ("number", "param"):
        return True
    if tok.kind == "string":
        return tok.closed
    return tok.text in (")", "]")


_OPERATOR_WORDS = {
    "and", "or", "not", "in", "between", "is", "contains", "any", "all", "starts", "ends", "with", "matches",
    "case", "when", "then", "else", "by", "where", "within", "segment", "feature", "param",
}  # fmt: skip


def _function_item(fn: Function, label: str) -> CompletionItem:
    return CompletionItem(label, "function", fn.signature(), fn.doc, label + "(")


def _aggregate_item(spec: AggregateSpec) -> CompletionItem:
    return CompletionItem(spec.name, "aggregate", aggregate_signature(spec), spec.doc, spec.name + "(")


def aggregate_signature(spec: AggregateSpec) -> str:
    """``sum(table.value [where CONDITION])`` and the like."""
    if spec.value == "none":
        first = "table"
    elif spec.value == "optional":
        first = "table[.value]"
    else:
        first = "table.value"
    params = "".join(f", {p}" for p in spec.params)
    by = " by table.order" if spec.by else ""
    return f"{spec.name}({first}{params}{by} [where condition])"


def complete(source: str, pos: Position, ctx: EditorContext | None = None) -> list[CompletionItem]:
    """The completions at ``pos`` of ``source`` (see the module docstring)."""
    return Completer(source, pos, ctx).run()
