"""``travel.trip_purpose`` and ``travel.traveler_type`` in SQL, for ``Program.to_sql`` and Spark.

The rules are the Arrow implementation's, written as one ``CASE`` each: a
rule whose condition is null before a true one gives null, as ``first_true``
does; counts and prices are doubles with unusable values (NaN, ±inf, negative
counts) read as null (``segql.pack.number_sql``, as ``numbers`` in Arrow).

The price tiers of ``traveler_type`` are exact: each threshold is a scalar
subquery over the query's rows (``writer.rows_from``) that counts the known
prices per distinct value, finds the two at the positions Arrow's ``quantile``
picks with a running count over the distinct values, and interpolates with
Arrow's formula in doubles: with ``i = (n - 1) q``, ``k = floor(i)`` and
``f = i - k``, the threshold is the (k+1)-th smallest price when ``f = 0``,
else ``f * next + (1 - f) * it``.  (Engines' own interpolating quantiles, e.g.
DuckDB's ``quantile_cont``, round differently in the last bit, which moves
prices tied at a threshold into another tier.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segql.pack import PluginError, SqlContext, check_number, number_sql, python_literal, string_literal
from segql_travel.party import channel_names
from segql_travel.traveler import check_quantiles


def first_true_sql(rules: Sequence[tuple[str, str | None]], otherwise: str | None) -> str:
    """segql.pack.first_true: the label of the first true condition; null when a
    condition before it is null; ``otherwise`` when all are false.  Each
    condition is written once (``CASE c WHEN TRUE … WHEN FALSE …``: a null
    matches neither)."""
    result = label_sql(otherwise)
    for condition, label in reversed(rules):
        result = f"(CASE {condition} WHEN TRUE THEN {label_sql(label)} WHEN FALSE THEN {result} END)"
    return result


def label_sql(label: str | None) -> str:
    return "CAST(NULL AS VARCHAR)" if label is None else string_literal(label)


def count_sql(value: str, kind: str | None) -> str:
    """purpose.counts: a double; NaN, ±inf and negative counts as null."""
    return number_sql(value, kind=kind, minimum=0)


def known(value: Any, name: str) -> Any:
    """A constant argument's Python value, refused when null (as segql.pack.constant)."""
    if value is None:
        raise PluginError(f"{name} must not be null")
    return value


def party_sql(adults: str, children: str, babies: str) -> tuple[str, str]:
    """party.no_guests and party.with_children."""
    no_guests = f"({adults} = 0.0 AND {children} = 0.0 AND {babies} = 0.0)"
    return no_guests, f"({children} > 0.0 OR {babies} > 0.0)"


def trip_purpose_sql(
    adults: str,
    children: str,
    babies: str,
    weekday_nights: str,
    weekend_nights: str,
    lead_time_days: str,
    channel: str,
    corporate_channels: str,
    business_max_nights: str,
    business_max_lead_days: str,
    *,
    constants: tuple[Any, ...],
    kinds: tuple[str | None, ...],
) -> str:
    """purpose.trip_purpose."""
    a, c, b, weekday, weekend, lead = (
        count_sql(x, kind)
        for x, kind in zip((adults, children, babies, weekday_nights, weekend_nights, lead_time_days), kinds)
    )
    # (constant_args make these constants, never NOT_CONSTANT)
    channels, max_nights, max_lead = constants[7], constants[8], constants[9]
    wanted = channel_names(known(channels, "corporate_channels"))
    lowered = f"LOWER({channel})"
    listed = f"({lowered} IN ({', '.join(map(string_literal, wanted))}))" if wanted else "FALSE"
    corporate = f"(CASE WHEN {lowered} IS NULL THEN NULL ELSE {listed} END)"
    nights = python_literal(check_number(max_nights, "business_max_nights"))
    ahead = python_literal(check_number(max_lead, "business_max_lead_days"))
    business = (
        f"(({corporate} AND {a} >= 1.0) OR ({a} = 1.0 AND {weekend} = 0.0 AND {weekday} >= 1.0 "
        f"AND {weekday} <= {nights} AND {lead} <= {ahead}))"
    )
    no_guests, with_children = party_sql(a, c, b)
    rules = [
        (no_guests, None),
        (with_children, "family"),
        (business, "business"),
        (f"({a} = 2.0 AND {weekend} >= 1.0)", "couple"),
    ]
    return first_true_sql(rules, "leisure")


def quantile_sql(price: str, q: float, writer: SqlContext) -> str:
    """The ``q`` quantile of the known prices of the query's rows, as Arrow's
    ``quantile(interpolation="linear")`` computes it (a scalar subquery); null
    when it is NaN (prices of -inf and +inf) or no price is known.

    The prices are counted per distinct value first (a GROUP BY, which Spark
    spreads over partitions); only the distinct values are sorted, by a
    running count: the value at sorted position k (0-based) is the one whose
    rows cover positions ``below .. below + c - 1``."""
    counted = (
        f"SELECT v, COUNT(*) AS c FROM (SELECT {price} AS v FROM {writer.rows_from}) AS prices "
        "WHERE v IS NOT NULL GROUP BY v"
    )
    ranked = (
        # NULLS FIRST: there are none, and the dialects whose default it is (BigQuery) need no clause.
        "SELECT v, SUM(c) OVER (ORDER BY v NULLS FIRST ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS below, c, "
        f"CAST(SUM(c) OVER () - 1 AS DOUBLE) * {python_literal(q)} AS i FROM ({counted}) AS counted"
    )

    def at(position: str) -> str:
        return f"MAX(CASE WHEN COALESCE(below, 0) <= {position} AND {position} < COALESCE(below, 0) + c THEN v END)"

    picked = (
        f"SELECT MAX(i - FLOOR(i)) AS f, {at('FLOOR(i)')} AS lo, {at('FLOOR(i) + 1')} AS hi FROM ({ranked}) AS ranked"
    )
    interpolated = f"SELECT CASE WHEN f = 0.0 THEN lo ELSE f * hi + (1.0 - f) * lo END AS t FROM ({picked}) AS picked"
    return f"(SELECT CASE WHEN {writer.is_nan('t')} THEN NULL ELSE t END FROM ({interpolated}) AS threshold)"


def traveler_type_sql(
    adults: str,
    children: str,
    babies: str,
    price: str,
    purpose: str,
    luxury_quantile: str,
    budget_quantile: str,
    *,
    writer: SqlContext,
    constants: tuple[Any, ...],
    kinds: tuple[str | None, ...],
) -> str:
    """traveler.traveler_type."""
    high_q = check_number(constants[5], "luxury_quantile", minimum=0, maximum=1)
    low_q = check_number(constants[6], "budget_quantile", minimum=0, maximum=1)
    check_quantiles(low_q, high_q)
    a, c, b = (count_sql(x, kind) for x, kind in zip((adults, children, babies), kinds))
    rate = number_sql(price, kind=kinds[3])
    no_guests, with_children = party_sql(a, c, b)

    def tier(op: str, q: float) -> str:
        # A NaN threshold (null here) compares false, as in Arrow; a null one
        # means no price is known, so the row's price is null too.
        threshold = quantile_sql(rate, q, writer)
        return f"(CASE WHEN {rate} IS NULL THEN NULL ELSE COALESCE({rate} {op} {threshold}, FALSE) END)"

    rules = [
        (no_guests, None),
        (f"(LOWER({purpose}) = 'business')", "business"),
        (tier(">=", high_q), "luxury"),
        (tier("<=", low_q), "budget"),
        (with_children, "family"),
        (f"({a} = 1.0)", "solo"),
    ]
    return first_true_sql(rules, None)
