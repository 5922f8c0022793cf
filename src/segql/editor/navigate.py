"""Hover, signature help, go-to-definition, find-references and rename."""

from __future__ import annotations

from collections.abc import Iterator

from segql import ast
from segql.check import is_aggregate_call
from segql.editor.analysis import Analysis, analyse
from segql.editor.complete import aggregate_signature, callee_before
from segql.editor.model import EditorContext, Hover, Position, Range, SignatureHelp, TextEdit
from segql.editor.symbols import Occurrence, Symbol, Symbols, symbols_of
from segql.editor.text import Lines, is_plain_name, significant, tokens
from segql.errors import SegqlNameError, SegqlSyntaxError
from segql.parse import keywords
from segql.registry import AggregateSpec, Function, FunctionRegistry
from segql.span import Span
from segql.types import ANY, SType

# ------------------------------------------------------------------ hover


def _contains(span: Span, offset: int) -> bool:
    return span.known and span.start <= offset <= span.end


def _innermost(root: ast.Node, offset: int) -> list[ast.Node]:
    """The nodes of ``root`` whose span holds ``offset``, outermost first."""
    path: list[ast.Node] = []
    node: ast.Node | None = root
    while node is not None:
        path.append(node)
        node = next((c for c in ast.children(node) if _contains(c.span, offset)), None)
    return path


def _bound_at(analysis: Analysis, name: str, span: Span) -> ast.Node | None:
    """The bound node of declaration ``name`` written at exactly ``span``."""
    bound = analysis.bound.get(name)
    if bound is None:
        return None
    best: ast.Node | None = None
    for node in ast.walk(bound):
        same = node.span.known and node.span.start == span.start and node.span.end == span.end
        if same and (best is None or isinstance(best, ast.Cast)):
            best = node
    return best


def _type_text(t: SType | None) -> str:
    return str(t) if t is not None and not t.is_any else "any (not known without a schema)"


def _decl_markdown(analysis: Analysis, symbol: Symbol) -> str:
    node = symbol.node
    if isinstance(node, ast.ParamDecl):
        text = f"```segql\n{analysis.source[node.span.start : node.span.end].strip()}\n```"
        return text + "\n\nparameter"
    if node is None:
        return f"`${symbol.name}`: parameter used without a declaration; its type is the value's given at evaluation"
    assert isinstance(node, (ast.SegmentDecl, ast.FeatureDecl))
    bound = analysis.bound.get(node.name)
    kind = symbol.kind
    header = f"**{kind}** `{node.name}`"
    if bound is not None:
        header += f": {_type_text(bound.type)}"
    parts = [header]
    if node.description:
        parts.append(node.description)
    snippet = analysis.source[node.span.start : node.span.end].strip()
    if len(snippet) > 400:
        snippet = snippet[:400] + "…"
    parts.append(f"```segql\n{snippet}\n```")
    return "\n\n".join(parts)


def function_markdown(fn: Function) -> str:
    pack = "" if fn.pack == "segql" else f"\n\nfrom pack `{fn.pack}`"
    doc = f"\n\n{fn.doc}" if fn.doc else ""
    return f"```segql\n{fn.signature()}\n```{doc}{pack}"


def aggregate_markdown(spec: AggregateSpec) -> str:
    pack = "" if spec.pack == "segql" else f"\n\nfrom pack `{spec.pack}`"
    doc = f"\n\n{spec.doc}" if spec.doc else ""
    return f"```segql\n{aggregate_signature(spec)}\n```\naggregate over a related table{doc}{pack}"


def hover(source: str, pos: Position, ctx: EditorContext | None = None) -> Hover | None:
    """What the thing at ``pos`` is: a segment, feature or parameter (its
    declaration and description, its type), a column (its type from the
    schema), a function or aggregate (signature and documentation, packs'
    included), a pack's segment or feature, or any other expression (its
    type).  None where there is nothing to say (spaces, comments, keywords)."""
    analysis = analyse(source, ctx)
    offset = analysis.lines.offset(pos)
    if not source[max(0, offset - 1) : offset + 1].strip():
        return None  # between two spaces
    symbols = symbols_of(analysis)
    occurrence = symbols.at(offset)
    if occurrence is not None:
        symbol = symbols.symbols[occurrence.key]
        return Hover(analysis.lines.range(occurrence.start, occurrence.end), _decl_markdown(analysis, symbol))
    for decl in analysis.all_decls():
        if not _contains(decl.span, offset):
            continue
        path = _innermost(decl, offset)
        name = decl.name if isinstance(decl, (ast.SegmentDecl, ast.FeatureDecl)) else ""
        for node in reversed(path):
            found = _hover_node(analysis, name, node, offset)
            if found is not None:
                return found
    return None


def _hover_node(analysis: Analysis, decl: str, node: ast.Node, offset: int) -> Hover | None:
    lines = analysis.lines
    functions = analysis.host.functions
    if isinstance(node, ast.Call) and _contains(node.name_span, offset):
        rng = lines.span(node.name_span)
        spec = functions.aggregate(node.dotted)
        if spec is not None:
            return Hover(rng, aggregate_markdown(spec))
        fn = functions.get(node.dotted)
        if fn is not None:
            return Hover(rng, function_markdown(fn))
        return None
    if isinstance(node, ast.Name):
        rng = lines.span(node.span)
        entry = analysis.host.library.get(node.dotted) if len(node.parts) == 2 else None
        bound = _bound_at(analysis, decl, node.span)
        if isinstance(bound, ast.Ref) and entry is not None:
            doc = f"\n\n{entry.description}" if entry.description else ""
            return Hover(rng, f"**{entry.kind}** `{entry.name}` of pack `{entry.pack}`: {_type_text(bound.type)}{doc}")
        if isinstance(bound, ast.Column):
            where = f" of {bound.table}" if bound.table else ""
            return Hover(rng, f"**column** `{bound.name}`{where}: {_type_text(bound.type)}")
        if entry is not None:
            doc = f"\n\n{entry.description}" if entry.description else ""
            return Hover(rng, f"**{entry.kind}** `{entry.name}` of pack `{entry.pack}`{doc}")
        return Hover(rng, f"`{node.dotted}`" + (f": {_type_text(bound.type)}" if bound is not None else ""))
    if isinstance(node, (ast.SegmentDecl, ast.FeatureDecl, ast.ParamDecl, ast.EventsDecl, ast.NamedArg)):
        return None
    if isinstance(node, ast.When):
        return None
    bound = _bound_at(analysis, decl, node.span)
    if bound is None or bound.type is None:
        return None
    snippet = " ".join(analysis.source[node.span.start : node.span.end].split())
    if len(snippet) > 60:
        snippet = snippet[:57] + "…"
    return Hover(lines.span(node.span), f"`{snippet}`: {_type_text(bound.type or ANY)}")


# --------------------------------------------------------- signature help


def signature_help(source: str, pos: Position, ctx: EditorContext | None = None) -> SignatureHelp | None:
    """The signature of the function or aggregate whose parentheses hold
    ``pos``, with the parameter being written (by position, or by name for
    ``name: value``).  None outside a call."""
    if not isinstance(source, str):
        raise SegqlSyntaxError(f"source must be a str, got {type(source).__name__}")
    context = ctx or EditorContext()
    offset = Lines(source).offset(pos)
    sig = significant(tokens(source, 0, offset))
    depth = 0
    commas = 0
    named: str | None = None
    for i in range(len(sig) - 1, -1, -1):
        tok = sig[i]
        if tok.text in (")", "]"):
            depth += 1
        elif tok.text in ("(", "["):
            if depth:
                depth -= 1
                continue
            callee = callee_before(sig, i) if tok.text == "(" else None
            if callee is None:  # a list or a parenthesised expression: the call is further out
                commas = 0
                named = None
                continue
            return _signature(context.host.functions, callee, commas, named)
        elif depth == 0 and tok.text == ",":
            commas += 1
        elif depth == 0 and tok.text == ":" and i >= 1 and sig[i - 1].kind == "name" and commas == 0 and named is None:
            named = sig[i - 1].text
    return None


def _signature(functions: FunctionRegistry, callee: str, commas: int, named: str | None) -> SignatureHelp | None:
    spec = functions.aggregate(callee)
    if spec is not None:
        first = aggregate_signature(spec).split("(", 1)[1].split(" ")[0].rstrip(",)")
        params = (first, *spec.params)
        return SignatureHelp(aggregate_signature(spec), spec.doc, params, min(commas, len(params) - 1))
    fn = functions.get(callee)
    if fn is None:
        return None
    params = tuple(f"{p.name}: {p.type.text}" + (f" = {p.default}" if p.default is not None else "") for p in fn.params)
    if not params:
        return SignatureHelp(fn.signature(), fn.doc, (), 0)
    active = commas
    if named is not None:
        active = next((k for k, p in enumerate(fn.params) if p.name.lower() == named.lower()), commas)
    if fn.variadic:
        active = min(active, len(params) - 1)
    return SignatureHelp(fn.signature(), fn.doc, params, min(active, len(params) - 1))


# ---------------------------------------------------- definition & references


def _symbol_at(source: str, pos: Position, ctx: EditorContext | None) -> tuple[Analysis, Symbols, Occurrence | None]:
    analysis = analyse(source, ctx)
    symbols = symbols_of(analysis)
    return analysis, symbols, symbols.at(analysis.lines.offset(pos))


def definition(source: str, pos: Position, ctx: EditorContext | None = None) -> Range | None:
    """The range of the name in the declaration of the segment, feature or
    parameter at ``pos``; None when there is none (a column, an undeclared
    parameter, a declaration that does not parse)."""
    analysis, symbols, occurrence = _symbol_at(source, pos, ctx)
    if occurrence is None:
        return None
    decl = symbols.declaration(occurrence.key)
    return analysis.lines.range(decl.start, decl.end) if decl is not None else None


def references(
    source: str, pos: Position, ctx: EditorContext | None = None, include_declaration: bool = True
) -> list[Range]:
    """Every place the segment, feature or parameter at ``pos`` is written
    (its name; for a parameter without the ``$``), in source order."""
    analysis, symbols, occurrence = _symbol_at(source, pos, ctx)
    if occurrence is None:
        return []
    return [
        analysis.lines.range(o.start, o.end)
        for o in symbols.of(occurrence.key)
        if include_declaration or not o.declaration
    ]


def rename(source: str, pos: Position, new_name: str, ctx: EditorContext | None = None) -> list[TextEdit]:
    """Edits renaming the segment, feature or parameter at ``pos`` everywhere
    in the source.  Raises SegqlNameError when there is nothing to rename at
    ``pos``, when ``new_name`` is not a valid name (a parameter's may be
    given with its ``$``) or is a keyword, or when it clashes with another
    segment, feature or parameter -- or with a column of the context's schema,
    which the new name would hide."""
    analysis, symbols, occurrence = _symbol_at(source, pos, ctx)
    if occurrence is None:
        raise SegqlNameError("there is no segment, feature or parameter to rename here")
    symbol = symbols.symbols[occurrence.key]
    name = new_name[1:] if symbol.kind == "param" and new_name.startswith("$") else new_name
    if not isinstance(name, str) or not is_plain_name(name):
        why = "it is a keyword" if name.lower() in keywords() else "names are a letter or _ then letters, digits or _"
        raise SegqlNameError(f"'{new_name}' is not a valid {symbol.kind} name", hint=why)
    if name == symbol.name:
        return []
    _check_clash(analysis, symbols, symbol, name)
    _check_broken(analysis, symbols, symbol, occurrence)
    return [TextEdit(analysis.lines.range(o.start, o.end), name) for o in symbols.of(occurrence.key)]


def _check_clash(analysis: Analysis, symbols: Symbols, symbol: Symbol, name: str) -> None:
    low = name.lower()
    for other in symbols.symbols.values():
        if other is symbol or other.key[0] != symbol.key[0]:
            continue
        if other.name.lower() == low:
            raise SegqlNameError(
                f"cannot rename {symbol.kind} '{symbol.name}' to '{name}': "
                f"{other.kind} '{other.name}' already has that name"
            )
    if symbol.kind == "param":
        return
    for chunk in analysis.chunks:
        if chunk.keyword in ("segment", "feature") and chunk.name.lower() == low:
            raise SegqlNameError(
                f"cannot rename {symbol.kind} '{symbol.name}' to '{name}': "
                f"{chunk.keyword} '{chunk.name}' already has that name"
            )
    for line in _column_uses(analysis, low):
        raise SegqlNameError(
            f"cannot rename {symbol.kind} '{symbol.name}' to '{name}': '{name}' is used as a column "
            f"(line {line + 1}), which would then mean the {symbol.kind}"
        )
    schema = analysis.ctx.schema
    if schema is not None and any(n.lower() == low for n in schema.names):
        raise SegqlNameError(
            f"cannot rename {symbol.kind} '{symbol.name}' to '{name}': the data has a column of that name, "
            "which the new name would hide"
        )


def _check_broken(analysis: Analysis, symbols: Symbols, symbol: Symbol, occurrence: Occurrence) -> None:
    """Refuse when a declaration that does not parse writes the name where
    no occurrence was found: renaming would miss it."""
    covered = {o.start for o in symbols.of(occurrence.key)}
    low = symbol.name.lower()
    for chunk in analysis.broken_chunks:
        for tok in tokens(analysis.source, chunk.start, chunk.end):
            start = tok.start + 1 if tok.kind == "param" else tok.start
            text = tok.text[1:] if tok.kind == "param" else tok.text
            wanted = "param" if symbol.kind == "param" else "name"
            if tok.kind == wanted and text.lower() == low and start not in covered:
                line = analysis.lines.position(tok.start).line + 1
                raise SegqlNameError(
                    f"cannot rename '{symbol.name}': line {line} does not parse, and the '{text}' there "
                    "would not be renamed",
                    hint="fix the syntax error first",
                )


def _column_uses(analysis: Analysis, low: str) -> Iterator[int]:
    """Lines where a bare name ``low`` (any case) is read as a profile column."""
    functions = analysis.host.functions
    for decl in analysis.user_decls(repaired=True):
        stack: list[ast.Node] = [decl.expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Sequence) or is_aggregate_call(node, functions):
                continue
            if isinstance(node, ast.Name) and not node.quoted and node.dotted.lower() == low:
                yield analysis.lines.position(node.span.start).line
            stack.extend(ast.children(node))
