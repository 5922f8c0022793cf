"""The function registry: every function a segql source can call.

Built-in functions and industry packs register here through the same pluggy
hook (:func:`segql.hookspecs.segql_register_functions`).  A function declares
typed parameters (with optional defaults written in segql), a return type and
a vectorised implementation over Arrow data; the checker uses the declaration
to type-check calls before any row is touched.

Type specs are small strings:

``int`` ``float`` ``decimal`` ``string`` ``bool`` ``date`` ``timestamp`` ``duration``
    a concrete type (``float`` also accepts int and decimal arguments, which are
    converted; ``decimal`` accepts int; ``timestamp`` accepts date and relative
    times such as ``-30d``)
``number`` / ``temporal`` / ``orderable`` / ``any``
    any numeric / date-or-timestamp / comparable scalar / any type, passed as is
``list<string>`` (any element type)
    a list
``T``, ``T:number``, ``T:orderable``, ``T:temporal``
    a type variable: all arguments with the same variable are brought to one
    common type, which the return type may name
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, TypeAlias

import attrs
import pyarrow as pa

from segql.engines.arrow.values import broadcast, decode, to_float64
from segql.engines.sql.dialects import DIALECTS
from segql.errors import PluginError
from segql.span import Span
from segql.types import SType, parse_type_name

Value: TypeAlias = pa.Array | pa.ChunkedArray | pa.Scalar

CONSTRAINTS = ("number", "temporal", "orderable", "any")
_SPEC_RE = re.compile(r"^\s*(?:(?P<var>[A-Z])(?::(?P<constraint>\w+))?|(?P<name>\w+)(?:\s*<\s*(?P<elem>\w+)\s*>)?)\s*$")


@attrs.frozen
class TypeSpec:
    """A parsed type spec (see the module docstring)."""

    text: str
    concrete: SType | None = None
    constraint: str | None = None  # number | temporal | orderable | any
    var: str | None = None

    def accepts(self, t: SType) -> bool:
        """Whether an argument of type ``t`` may be passed (perhaps after a conversion)."""
        if t.is_null or t.is_any:
            return True
        if self.concrete is not None:
            c = self.concrete
            if c == t:
                return True
            if c.kind == "float":
                return t.is_numeric
            if c.kind == "decimal":
                return t.kind in ("int", "decimal")
            if c.kind == "timestamp":
                return t.kind in ("date", "timestamp")
            if c.is_list and t.is_list:
                empty = t.elem is None or t.elem.is_null  # [] fits any list
                return c.elem is not None and (c.elem.is_any or c.elem == t.elem or empty)
            return False
        return satisfies(t, self.constraint or "any")


def satisfies(t: SType, constraint: str) -> bool:
    if t.is_null or t.is_any:
        return True
    if constraint == "number":
        return t.is_numeric
    if constraint == "temporal":
        return t.is_temporal
    if constraint == "orderable":
        return t.is_numeric or t.is_temporal or t.kind in ("string", "duration", "bool")
    return True


def parse_spec(text: str) -> TypeSpec:
    m = _SPEC_RE.match(text)
    if not m:
        raise ValueError(f"bad type spec {text!r}")
    if m.group("var"):
        constraint = m.group("constraint") or "any"
        if constraint not in CONSTRAINTS:
            raise ValueError(f"bad type constraint in {text!r}; use one of {', '.join(CONSTRAINTS)}")
        return TypeSpec(text=text, var=m.group("var"), constraint=constraint)
    name, elem = m.group("name"), m.group("elem")
    if name in CONSTRAINTS and elem is None:
        return TypeSpec(text=text, constraint=name)
    if name == "list" and elem == "any":
        return TypeSpec(text=text, concrete=SType("list", SType("any")))
    elem_type = parse_type_name(elem) if elem else None
    concrete = parse_type_name(name, elem_type)
    if concrete is None:
        raise ValueError(f"bad type spec {text!r}")
    return TypeSpec(text=text, concrete=concrete)


NO_DEFAULT: Any = object()


@attrs.frozen
class Parameter:
    """One parameter of a function.  ``default`` is segql source text (an
    ordinary expression evaluated in the caller's context, e.g. ``"0"``,
    ``'"math"'`` or ``"count(orders)"``), or None when the argument is required."""

    name: str
    type: TypeSpec
    default: str | None = None
    doc: str = ""


@attrs.frozen
class CallContext:
    """What an implementation receives besides its arguments."""

    as_of: pa.TimestampScalar
    """The evaluation instant, timestamp[us] (UTC, no zone)."""
    num_rows: int
    """Rows being evaluated (the population for population-level functions)."""
    arg_types: tuple[SType, ...]
    result_type: SType
    function: str
    arg_spans: tuple[Span, ...] = ()
    """Where each argument is written in the source: an error about one
    argument (``SegqlError(..., span=ctx.arg_spans[i])``) points at it."""
    time_zone: str | None = "UTC"
    """The evaluation's time zone (an IANA name, ``time_zone=``): calendar
    notions (days, hours, weekdays) are local to it.  None only while segql
    folds constant calls of its own functions at plan time, before any zone
    is known (they then raise, and are left for the evaluation)."""

    def broadcast(self, value: Value) -> pa.ChunkedArray:
        """``value`` as a ChunkedArray of ``num_rows`` rows (scalars are repeated)."""
        return broadcast(value, self.num_rows)

    def floats(self, value: Value) -> pa.ChunkedArray:
        """A numeric ``value`` (integers, floats, decimals, dictionaries of
        them) as float64, one per row: each the nearest double, as SQL's
        ``CAST(… AS DOUBLE)`` gives (Arrow's own decimal cast can be one unit
        in the last place off)."""
        result: pa.ChunkedArray = to_float64(decode(self.broadcast(value)))
        return result


Implementation = Callable[..., Value]
TypeRule = Callable[[tuple[SType, ...]], SType]
AggregateTypeRule = Callable[[SType], SType]


@attrs.frozen
class Function:
    """A registered function."""

    name: str
    params: tuple[Parameter, ...]
    returns: TypeSpec
    impl: Implementation
    variadic: bool = False
    """The last parameter repeats (``coalesce(a, b, c, …)``)."""
    population: bool = False
    """The result of a row depends on the other rows (quantiles, ranks); such
    functions see the whole population being evaluated."""
    pack: str = "segql"
    doc: str = ""
    type_rule: TypeRule | None = None
    """Optional: computes the return type from the argument types."""
    constant_args: tuple[str, ...] = ()
    """Parameters whose argument must be a constant (literal or $param)."""
    sql: Callable[..., str] | None = None
    pure: bool = True
    """The result depends only on the arguments (not on as_of); such calls on
    constants are folded at plan time."""
    raises: bool = True
    """The call may raise on some input (an overflow, a value out of range, a
    pack's check).  ``raises=False`` promises a value (perhaps null) for every
    input: the optimizer may then drop the call where the result does not
    depend on it, and an and/or need not defer it (segql.effects)."""

    def signature(self) -> str:
        parts = []
        for i, p in enumerate(self.params):
            text = f"{p.name}: {p.type.text}"
            if p.default is not None:
                text += f" = {p.default}"
            if self.variadic and i == len(self.params) - 1:
                text += ", …"
            parts.append(text)
        return f"{self.name}({', '.join(parts)}) -> {self.returns.text}"


VALUE_FORMS = ("required", "optional", "none")


@attrs.frozen
class AggregateSpec:
    """A registered aggregate over a related table (LANGUAGE.md §3): everything
    the checker, the Arrow engine and the SQL writer need, declared once
    (built-ins in :mod:`segql.aggregates`, packs through
    :meth:`FunctionRegistry.add_aggregate`).

    ``reducer(groups, node, mask, value, by)`` returns one value per profile
    row: ``groups`` (:class:`segql.engines.arrow.aggregate.Groups`) holds the
    profile position of every related row and the reductions; ``mask`` (NumPy
    bools or None) is the ``where`` filter; ``value`` and ``by`` are Arrow
    arrays of the related rows (None when absent); ``node.args`` holds the
    constant arguments after the value.  ``sql(writer, node)`` returns the
    aggregate in its table's ``GROUP BY`` subquery (DuckDB SQL; sqlglot writes
    the other dialects) with the ``where`` filter as ``FILTER (WHERE …)``; for
    an aggregate with ``by`` (or ``query``) it is ``sql(writer, node, key,
    source, column)``, a query of one row per key.  ``empty_sql`` is what a customer without rows
    gets (``COALESCE``), None for null."""

    name: str
    reducer: Callable[..., pa.Array] | None
    sql: Callable[..., str] | None
    accepts: str = "any"
    """The value types accepted: a constraint (number, temporal, orderable, any)."""
    type_rule: AggregateTypeRule | None = None
    """The result type from the value type (None: the value's type)."""
    returns: SType | None = None
    """The result type, when it does not depend on the value's (else None)."""
    value: str = "required"
    """``required`` (``sum(orders.amount)``), ``optional`` (``count(orders)``
    or ``count(orders.x)``) or ``none`` (``exists(orders where …)``)."""
    by: bool = False
    """Takes (and needs) an order: ``first(orders.sku by orders.at)``."""
    query: bool | frozenset[str] = False
    """Without ``by``, its SQL is still a query of one row per key
    (``sql(writer, node, key, source, column)``), not an expression of the
    table's ``GROUP BY`` subquery: ``mode`` counts each value first.  A set
    of dialect names: a query in those dialects only (``median`` in
    PostgreSQL and Spark)."""

    def query_in(self, dialect: str) -> bool:
        """Whether the SQL of this aggregate without ``by`` is a query of one row per key in ``dialect``."""
        return self.query if isinstance(self.query, bool) else dialect in self.query

    params: tuple[str, ...] = ()
    """Constant number arguments after the value (``quantile(orders.amount, q)``)."""
    check_args: Callable[[tuple[Any, ...]], list[str | None]] | None = None
    """Per constant argument: a message when its value is refused, else None."""
    refuse: str = "{func} cannot take {value}, which is {type}"
    """The error when the value's type is not accepted ({func}, {value}, {type})."""
    empty: Any = None
    """The value of an empty group (a Python value; None: null)."""
    empty_sql: str | None = None
    pack: str = "segql"
    doc: str = ""

    def result_type(self, value: SType) -> SType | None:
        """The type of the aggregate of values of type ``value``, None if refused."""
        if self.value != "none" and not satisfies(value, self.accepts):
            return None
        if self.returns is not None:
            return self.returns
        return self.type_rule(value) if self.type_rule is not None else value

    def example(self) -> str:
        """A call, for messages: ``sum(orders.amount)``."""
        args = "orders" if self.value != "required" else "orders.amount"
        args += "".join(f", <{p}>" for p in self.params)
        return f"{self.name}({args}" + (" by orders.at" if self.by else "") + ")"


class FunctionRegistry:
    """Where hook implementations register functions (``registry.add(...)``)
    and aggregates (``registry.add_aggregate(...)``)."""

    def __init__(self) -> None:
        self._functions: dict[str, Function] = {}
        self._aggregates: dict[str, AggregateSpec] = {}
        self._lock = threading.Lock()
        self.current_pack = "segql"

    def add(
        self,
        name: str,
        impl: Implementation,
        *,
        params: Sequence[tuple[str, str] | tuple[str, str, str | None] | Parameter] = (),
        returns: str,
        variadic: bool = False,
        population: bool = False,
        doc: str = "",
        type_rule: TypeRule | None = None,
        constant_args: tuple[str, ...] = (),
        sql: Callable[..., str] | None = None,
        pure: bool = True,
        raises: bool = True,
    ) -> Function:
        """Register a function.

        ``params`` is a sequence of ``(name, type_spec)`` or
        ``(name, type_spec, default_source)``; ``returns`` is a type spec.
        """
        pack = self.current_pack
        try:
            parsed = tuple(_parameter(p) for p in params)
            returns_spec = parse_spec(returns)
        except (ValueError, TypeError) as exc:
            raise PluginError(f"pack {pack!r} registers {name!r} with {exc}", pack=pack, function=name) from None
        if not _valid_name(name):
            raise PluginError(f"pack {pack!r} registers a function with an invalid name {name!r}", pack=pack)
        if not callable(impl):
            raise PluginError(f"pack {pack!r} registers {name!r} without a callable implementation", pack=pack)
        fn = Function(
            name=name,
            params=parsed,
            returns=returns_spec,
            impl=impl,
            variadic=variadic,
            population=population,
            pack=pack,
            doc=doc,
            type_rule=type_rule,
            constant_args=constant_args,
            sql=sql,
            pure=pure,
            raises=raises,
        )
        key = name.lower()
        with self._lock:
            existing = self._functions.get(key) or self._aggregates.get(key)
            if existing is not None:
                raise PluginError(
                    f"pack {pack!r} registers function {name!r}, already registered by pack {existing.pack!r}",
                    pack=pack,
                    function=name,
                )
            self._functions[key] = fn
        return fn

    def add_aggregate(
        self,
        name: str,
        *,
        reducer: Callable[..., pa.Array] | None,
        sql: Callable[..., str] | None,
        accepts: str = "any",
        returns: str | None = None,
        type_rule: AggregateTypeRule | None = None,
        value: str = "required",
        by: bool = False,
        query: bool | Collection[str] = False,
        params: Sequence[str] = (),
        check_args: Callable[[tuple[Any, ...]], list[str | None]] | None = None,
        refuse: str = "{func} cannot take {value}, which is {type}",
        empty: Any = None,
        empty_sql: str | None = None,
        doc: str = "",
    ) -> AggregateSpec:
        """Register an aggregate (see :class:`AggregateSpec`).  ``returns`` is a
        concrete type spec (``"float"``) or None for the value's type (or
        ``type_rule``'s); ``accepts`` a constraint on the value's type.  A
        ``reducer`` or ``sql`` of None means the aggregate cannot run on that
        engine (a ``SqlError`` / ``EvaluationError`` names it)."""
        pack = self.current_pack
        try:
            if accepts not in CONSTRAINTS:
                raise ValueError(f"accepts={accepts!r}; use one of {', '.join(CONSTRAINTS)}")
            if value not in VALUE_FORMS:
                raise ValueError(f"value={value!r}; use one of {', '.join(VALUE_FORMS)}")
            concrete = None
            if returns is not None:
                concrete = parse_spec(returns).concrete
                if concrete is None:
                    raise ValueError(f"returns={returns!r} is not a concrete type")
            if not isinstance(query, bool):
                query = frozenset(query)
                if not query <= set(DIALECTS):
                    raise ValueError(f"query={sorted(query)!r}; name dialects among {', '.join(DIALECTS)}")
            if not all(isinstance(p, str) and _valid_name(p) for p in params):
                raise ValueError(f"bad parameter names {params!r}")
        except (ValueError, TypeError) as exc:
            raise PluginError(f"pack {pack!r} registers aggregate {name!r} with {exc}", pack=pack) from None
        if not _valid_name(name):
            raise PluginError(f"pack {pack!r} registers an aggregate with an invalid name {name!r}", pack=pack)
        for what, part in (("reducer", reducer), ("sql", sql), ("type_rule", type_rule), ("check_args", check_args)):
            if part is not None and not callable(part):
                raise PluginError(f"pack {pack!r} registers aggregate {name!r} with a {what} that is not callable")
        spec = AggregateSpec(
            name=name,
            reducer=reducer,
            sql=sql,
            accepts=accepts,
            type_rule=type_rule,
            returns=concrete,
            value=value,
            by=by,
            query=query,
            params=tuple(params),
            check_args=check_args,
            refuse=refuse,
            empty=empty,
            empty_sql=empty_sql,
            pack=pack,
            doc=doc,
        )
        key = name.lower()
        with self._lock:
            existing = self._aggregates.get(key) or self._functions.get(key)
            if existing is not None:
                raise PluginError(
                    f"pack {pack!r} registers aggregate {name!r}, a name already registered by pack {existing.pack!r}",
                    pack=pack,
                )
            self._aggregates[key] = spec
        return spec

    def aggregate(self, name: str) -> AggregateSpec | None:
        """The aggregate called ``name`` (any case), None if there is none."""
        return self._aggregates.get(name.lower())

    def aggregates(self) -> list[AggregateSpec]:
        return sorted(self._aggregates.values(), key=lambda a: a.name)

    @classmethod
    def of(cls, functions: Iterable[Function]) -> FunctionRegistry:
        """A registry holding these functions (e.g. rebuilt in a Spark worker:
        a registry's lock does not pickle, its functions do)."""
        registry = cls()
        registry._functions = {f.name.lower(): f for f in functions}
        return registry

    def get(self, name: str) -> Function | None:
        return self._functions.get(name.lower())

    def remove_pack(self, pack: str) -> None:
        """Forget every function a pack registered (used to roll back a failed pack)."""
        with self._lock:
            for key in [k for k, f in self._functions.items() if f.pack == pack]:
                del self._functions[key]
            for key in [k for k, a in self._aggregates.items() if a.pack == pack]:
                del self._aggregates[key]

    def names(self) -> list[str]:
        return sorted(f.name for f in self._functions.values())

    def __iter__(self) -> Iterator[Function]:
        return iter(sorted(self._functions.values(), key=lambda f: f.name))

    def __len__(self) -> int:
        return len(self._functions)


def _parameter(p: Any) -> Parameter:
    if isinstance(p, Parameter):
        return p
    if not isinstance(p, tuple) or len(p) not in (2, 3):
        raise TypeError(f"a parameter must be (name, type) or (name, type, default), got {p!r}")
    name, spec = p[0], p[1]
    default = p[2] if len(p) == 3 else None
    if not isinstance(name, str) or not _valid_name(name):
        raise TypeError(f"bad parameter name {name!r}")
    return Parameter(name=name, type=parse_spec(spec), default=default)


_NAME_RE = re.compile(r"^[^\W\d]\w*(\.[^\W\d]\w*)?$")


def _valid_name(name: str) -> bool:
    return isinstance(name, str) and bool(_NAME_RE.match(name))
