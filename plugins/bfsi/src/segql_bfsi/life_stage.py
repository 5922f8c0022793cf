"""Life stage of a retail-banking customer from age, marital status and dependants.

Retail banks segment customers by life stage (the family life-cycle models used
in bank marketing: starting out, forming a family, consolidating, preparing for
retirement, retired) because needs follow it: first accounts and credit cards,
then mortgages and protection, then savings and pensions, then income and
estate planning.  This module assigns one of five stages:

=====================  ===================================================================
stage                  rule (``R`` = ``retirement_age``, 65 by default)
=====================  ===================================================================
``retiree``            age >= R
``pre_retiree``        R - 10 <= age < R (55-64 by default)
``established_family`` 40 <= age < R - 10 (40-54 by default), whatever the household
``young_family``       18 <= age < 40 and the household is a family: partnered *or* dependants > 0
``young_adult``        18 <= age < 40, not partnered and no dependants
=====================  ===================================================================

* Age: ages below 18 or above 120, null, NaN or infinite give null.
* Marital status is compared after lower-casing, trimming and turning runs of
  spaces, ``_`` and ``-`` into one space.  Partnered: ``married``,
  ``remarried``, ``partnered``, ``civil partnership``, ``civil partner``,
  ``civil union``, ``registered partnership``, ``domestic partnership``,
  ``domestic partner``, ``cohabiting``, ``cohabitant``, ``living together``,
  ``common law``, ``de facto``.  Unknown: null, the empty string, ``unknown``,
  ``not known``, ``not stated``, ``n/a``, ``na``, ``prefer not to say``.  Any
  other value (``single``, ``divorced``, ``separated``, ``widowed``…) is not
  partnered.
* Dependants: a count; more than 0 means a family; 0 means none; null, NaN,
  infinite or a negative count is unknown.
* "Family" is the SQL three-valued ``partnered OR has dependants``: true when
  either is known true, false when both are known false, otherwise unknown.
  Under 40 an unknown family status gives null (the stage cannot be decided);
  from 40 the household does not matter.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from segql.pack import CallContext, PluginError, Value, constant_number, keep_where, numbers, texts
from segql_bfsi.rules import adult_age

FAMILY_AGE_LIMIT = 40.0
"""From this age a customer is 'established' (or older stages), whatever the household."""
PRE_RETIREMENT_YEARS = 10.0
"""Pre-retirees are within this many years of the retirement age."""
MIN_RETIREMENT_AGE = 50.0
"""The lowest retirement age accepted, so that pre-retirement starts at 40 or later."""

PARTNERED = (
    "married",
    "remarried",
    "partnered",
    "civil partnership",
    "civil partner",
    "civil union",
    "registered partnership",
    "domestic partnership",
    "domestic partner",
    "cohabiting",
    "cohabitant",
    "living together",
    "common law",
    "de facto",
)
UNKNOWN = ("", "unknown", "not known", "not stated", "n/a", "na", "prefer not to say")

STAGES = ("young_adult", "young_family", "established_family", "pre_retiree", "retiree")


def normalise_marital(status: pa.Array) -> pa.Array:
    """Lower-case, trimmed, with runs of spaces, ``_`` and ``-`` as one space."""
    lowered = pc.utf8_trim_whitespace(pc.utf8_lower(status))
    return pc.replace_substring_regex(lowered, pattern=r"[\s_\-]+", replacement=" ")


def is_partnered(status: pa.Array) -> pa.Array:
    """True for a partnered status, false for any other known status, null when unknown."""
    norm = normalise_marital(status)
    listed_unknown = pc.is_in(norm, value_set=pa.array(UNKNOWN, pa.string()))  # false for null input
    known = pc.and_(pc.is_valid(norm), pc.invert(listed_unknown))
    return keep_where(known, pc.is_in(norm, value_set=pa.array(PARTNERED, pa.string())))


def has_dependants(dependants: pa.Array) -> pa.Array:
    """True for more than 0 dependants, false for 0, null when unknown (null: missing or unusable)."""
    return pc.greater(dependants, 0.0)


def life_stage(
    ctx: CallContext, age: Value, marital_status: Value, dependants: Value, retirement_age: Value
) -> pa.Array:
    """young_adult / young_family / established_family / pre_retiree / retiree (null when undecidable).

    With R = retirement_age (65): retiree from R; pre_retiree from R - 10 (55); established_family
    from 40 whatever the household; under 40 young_family when partnered OR dependants > 0 (SQL
    three-valued OR), young_adult when neither.  Ages outside 18-120 give null; marital status is
    matched case-insensitively against documented partnered / unknown lists (module docstring).
    Source: family life-cycle models used in retail-banking marketing; bands are this pack's defaults.
    """
    retire = constant_number(retirement_age, "retirement_age")
    if not MIN_RETIREMENT_AGE <= retire <= 120.0:
        raise PluginError(f"retirement_age must be between {MIN_RETIREMENT_AGE:g} and 120, got {retire:g}")
    years = adult_age(ctx, age)
    count = numbers(ctx, dependants, minimum=0)  # a negative count is unusable: unknown
    family = pc.or_kleene(is_partnered(texts(ctx, marital_status)), has_dependants(count))
    young = pc.if_else(family, "young_family", "young_adult")  # unknown family -> null
    stage = pc.if_else(pc.greater_equal(years, FAMILY_AGE_LIMIT), "established_family", young)
    stage = pc.if_else(pc.greater_equal(years, retire - PRE_RETIREMENT_YEARS), "pre_retiree", stage)
    return pc.if_else(pc.greater_equal(years, retire), "retiree", stage)
