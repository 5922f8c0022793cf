"""Function calls: the function is found in the registry (an aggregate's name
goes to ``aggregates``), arguments are bound to parameters by position or
name, missing ones get the parameter's default (pack source, bound in the
caller's context), argument types are checked against the declared type
specs and brought to one type per type variable, and the result type comes
from the declaration or the function's type rule."""

from __future__ import annotations

import attrs

from segql import ast
from segql.check.aggregates import aggregate_names, bind_aggregate
from segql.check.coerce import cast, relative
from segql.check.constants import is_constant
from segql.check.scope import Binder, Scope
from segql.errors import PluginError, SegqlError, SegqlNameError, SegqlTypeError, describe_exception
from segql.format import format_expression
from segql.registry import Function, TypeSpec, satisfies
from segql.span import Span
from segql.suggest import did_you_mean, suggest
from segql.types import ANY, NULL, TIMESTAMP, SType, unify


def bind_call(ck: Binder, node: ast.Call, scope: Scope) -> ast.Node:
    name = node.dotted
    if ck.functions.aggregate(name) is not None:
        if scope.table is not None:
            raise scope.error(SegqlTypeError, "aggregates cannot be nested", node)
        return bind_aggregate(ck, node, scope)
    fn = ck.functions.get(name)
    if fn is None:
        unavailable = ck.catalog.unavailable(name)
        if unavailable is not None:
            raise scope.error(PluginError, unavailable.message, _name_of(node), hint=unavailable.hint)
        raise scope.error(
            SegqlNameError,
            f"unknown function '{name}'",
            _name_of(node),
            hint=did_you_mean(suggest(name, ck.functions.names() + sorted(aggregate_names(ck.functions)))),
        )
    if node.by is not None or node.where is not None:
        raise scope.error(
            SegqlTypeError,
            f"only aggregates take 'by' or 'where'; {fn.name} is a function",
            node.by if node.by is not None else node.where or node,
        )
    return bind_function(ck, fn, node, scope)


def bind_function(ck: Binder, fn: Function, node: ast.Call, scope: Scope) -> ast.Node:
    params = fn.params
    args: list[ast.Node | None] = [None] * len(params)
    extra: list[ast.Node] = []
    for i, arg in enumerate(node.args):
        if i < len(params) and not (fn.variadic and i >= len(params) - 1):
            args[i] = arg
        elif fn.variadic:
            extra.append(arg)
        else:
            raise scope.error(
                SegqlTypeError,
                f"{fn.name} takes at most {len(params)} argument{'s' if len(params) != 1 else ''}",
                arg,
                hint=f"signature: {fn.signature()}",
            )
    for named in node.named:
        index = next((i for i, p in enumerate(params) if p.name.lower() == named.name.lower()), None)
        if index is None:
            raise scope.error(
                SegqlNameError,
                f"{fn.name} has no argument '{named.name}'",
                named,
                hint=did_you_mean(suggest(named.name, [p.name for p in params])) or f"signature: {fn.signature()}",
            )
        if args[index] is not None:
            raise scope.error(SegqlTypeError, f"argument '{params[index].name}' of {fn.name} is given twice", named)
        args[index] = named.value
    bound: list[ast.Node] = []
    specs: list[TypeSpec] = []
    for i, (param, given) in enumerate(zip(params, args)):
        is_variadic = fn.variadic and i == len(params) - 1
        if given is None:
            if is_variadic and extra:
                continue
            if param.default is None:
                if is_variadic:
                    continue
                raise scope.error(
                    SegqlTypeError,
                    f"{fn.name} needs argument '{param.name}'",
                    _name_of(node),
                    hint=f"signature: {fn.signature()}",
                )
            earlier = {
                p.name: cast(b, p.type.concrete)
                if p.type.concrete is not None and b.type is not None and b.type.is_null
                else b
                for p, b in zip(params, bound)
            }
            bound.append(_bind_default(ck, fn, param.name, param.default, node, scope, earlier))
        else:
            arg = ck.bind(given, scope)
            if param.type.constraint == "temporal" or param.type.concrete == TIMESTAMP:
                arg = relative(arg, TIMESTAMP)  # -30d where an instant is expected
            if param.type.concrete is not None and not param.type.accepts(arg.type or ANY):
                # Checked now, before a later default can use it as `$name`.
                raise scope.error(
                    SegqlTypeError,
                    f"{fn.name} expects {param.type.text} here, but {scope.describe(arg)} is not",
                    arg,
                    hint=f"signature: {fn.signature()}",
                )
            bound.append(arg)
        specs.append(param.type)
    if fn.variadic:
        vspec = params[-1].type
        for arg in extra:
            bound.append(ck.bind(arg, scope))
            specs.append(vspec)
        if not bound:
            raise scope.error(SegqlTypeError, f"{fn.name} needs at least one argument", node)
    bound = _type_arguments(fn, bound, specs, node, scope)
    for pname in fn.constant_args:
        index = next(i for i, p in enumerate(params) if p.name == pname)
        if index < len(bound) and not is_constant(bound[index]):
            raise scope.error(
                SegqlTypeError,
                f"argument '{pname}' of {fn.name} must be a constant (a literal or a $parameter)",
                bound[index],
            )
    result = _return_type(fn, bound, specs, node, scope)
    if result.is_null and fn.pack == "segql":
        # Only nulls were passed where the result's type comes from
        # (least(null, null), abs(null)): the built-ins give null.
        return ast.Literal(value=None, type=NULL, span=node.span)
    return ast.Func(name=fn.name, args=tuple(bound), type=result, span=node.span)


def _bind_default(
    ck: Binder,
    fn: Function,
    pname: str,
    text: str,
    call: ast.Call,
    scope: Scope,
    earlier: dict[str, ast.Node],
) -> ast.Node:
    """Bind a parameter's default (pack source) for this call.  Inside it,
    ``$name`` is the call's argument for an earlier parameter ``name``."""
    tree = ck.catalog.default_tree(fn.name, pname, text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Param) and node.name not in earlier:
            raise scope.error(
                PluginError,
                f"the default of {fn.name}({pname}) refers to ${node.name}, "
                "which is not one of the function's earlier parameters",
                call,
            )
    # A default is the pack's expression: bare names are columns; its text is the default's.
    inner = Scope(text=text, table=scope.table, in_pack=True, defaults=earlier)
    try:
        bound = ck.bind(tree, inner)
    except SegqlError as exc:
        shown = format_expression(tree)  # as renamed for this host's conventions
        raise scope.error(
            type(exc),
            f"the default of argument '{pname}' of {fn.name} (`{shown}`) does not fit this data: {exc.message}",
            call,
            hint=f"pass {pname}: … explicitly",
        ) from None
    # Errors later in evaluation point at the call (line and column), but the
    # nodes have no text of their own in the user's source (an empty range).
    s = call.span
    at_call = Span(s.start, s.start, s.line, s.column, s.end_line, s.end_column)
    return ast.transform(bound, lambda n: attrs.evolve(n, span=at_call))


def _type_arguments(
    fn: Function, args: list[ast.Node], specs: list[TypeSpec], call: ast.Call, scope: Scope
) -> list[ast.Node]:
    # Signed durations become instants where a temporal argument is expected.
    args = [
        relative(a, TIMESTAMP) if s.constraint == "temporal" or (s.concrete == TIMESTAMP) else a
        for a, s in zip(args, specs)
    ]
    variables: dict[str, SType] = {}
    for arg, spec in zip(args, specs):
        t = arg.type or ANY
        if not spec.accepts(t):
            raise scope.error(
                SegqlTypeError,
                f"{fn.name} expects {spec.text} here, but {scope.describe(arg)} is not",
                arg,
                hint=f"signature: {fn.signature()}",
            )
        if spec.var is not None:
            current = variables.get(spec.var, NULL)
            merged = unify(current, t)
            if merged is None:
                raise scope.error(
                    SegqlTypeError,
                    f"arguments of {fn.name} must have one type, but {scope.describe(arg)} does not match {current}",
                    arg,
                )
            variables[spec.var] = merged
    if fn.pack == "segql" and fn.name in ("least", "greatest"):
        for arg in args:
            if isinstance(arg, ast.DurationLiteral) and arg.months:
                raise scope.error(
                    SegqlTypeError,
                    f"months and years have no fixed length, so {fn.name} cannot order them",
                    arg,
                    hint="write the duration in days or weeks, e.g. 30d",
                )
    for var, t in variables.items():
        constraint = next(s.constraint for s in specs if s.var == var)
        if not satisfies(t, constraint or "any"):
            raise scope.error(SegqlTypeError, f"{fn.name} does not accept {t} arguments", call)
    out = []
    for arg, spec in zip(args, specs):
        t = arg.type or ANY
        if spec.var is not None:
            target = variables[spec.var]
            out.append(cast(arg, target) if not target.is_null else arg)
        elif spec.concrete is not None and not t.is_any:
            out.append(cast(arg, spec.concrete))
        else:
            out.append(arg)
    return out


def _return_type(fn: Function, args: list[ast.Node], specs: list[TypeSpec], call: ast.Call, scope: Scope) -> SType:
    arg_types = tuple(a.type or ANY for a in args)
    if fn.type_rule is not None:
        try:
            return fn.type_rule(arg_types)
        except SegqlError as exc:
            raise scope.error(type(exc), exc.message, call) from None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the pack's type rule failed: its error, at the call
            raise scope.error(
                PluginError, f"the type rule of {fn.name} (pack {fn.pack}) raised {describe_exception(exc)}", call
            ) from None
    ret = fn.returns
    if ret.var is not None:
        for arg, spec in zip(args, specs):
            if spec.var == ret.var:
                t = arg.type or ANY
                if not t.is_null:
                    return t
        return NULL
    if ret.concrete is not None:
        return ret.concrete
    return ANY


def _name_of(call: ast.Call) -> ast.Node:
    """A stand-in node spanning a call's function name, for errors about the function."""
    return ast.Name(parts=call.name, span=call.name_span if call.name_span.known else call.span)
