"""segql-bfsi: the banking, financial services and insurance pack for segql.

Functions (namespace ``bfsi``):

* ``bfsi.risk_score(...)`` -> float 1.0-3.0, ``bfsi.risk_tolerance(...)`` ->
  ``"conservative"`` / ``"moderate"`` / ``"aggressive"`` (see :mod:`segql_bfsi.risk`);
* ``bfsi.equity_allocation(age, base)`` -> per cent, the "100 minus age" rule;
* ``bfsi.life_stage(...)`` -> ``"young_adult"`` / ``"young_family"`` /
  ``"established_family"`` / ``"pre_retiree"`` / ``"retiree"`` (see :mod:`segql_bfsi.life_stage`).

Ready-made features and segments: :mod:`segql_bfsi.library`.  The README lists
every rule, threshold and source.
"""

from __future__ import annotations

import inspect

import segql
from segql.library import Conventions, Library
from segql.registry import FunctionRegistry
from segql_bfsi.library import CONVENTIONS, LIBRARY_SOURCE
from segql_bfsi.life_stage import life_stage
from segql_bfsi.risk import RISK_CONSTANTS, RISK_PARAMS, equity_allocation, risk_score, risk_tolerance

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "segql_register_conventions",
    "segql_register_functions",
    "segql_register_library",
]


@segql.hookimpl
def segql_register_conventions(conventions: Conventions) -> None:
    for name, doc in CONVENTIONS:
        conventions.add(name, kind="column", doc=doc)


@segql.hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    registry.add(
        "bfsi.risk_score",
        risk_score,
        params=RISK_PARAMS,
        returns="float",
        constant_args=RISK_CONSTANTS,
        doc=inspect.getdoc(risk_score) or "",
    )
    registry.add(
        "bfsi.risk_tolerance",
        risk_tolerance,
        params=RISK_PARAMS,
        returns="string",
        constant_args=RISK_CONSTANTS,
        doc=inspect.getdoc(risk_tolerance) or "",
    )
    registry.add(
        "bfsi.equity_allocation",
        equity_allocation,
        params=[("age", "float", "age"), ("base", "float", "100")],
        returns="float",
        constant_args=("base",),
        doc=inspect.getdoc(equity_allocation) or "",
    )
    registry.add(
        "bfsi.life_stage",
        life_stage,
        params=[
            ("age", "float", "age"),
            ("marital_status", "string", "marital_status"),
            ("dependants", "float", "dependants"),
            ("retirement_age", "float", "65"),
        ],
        returns="string",
        constant_args=("retirement_age",),
        doc=inspect.getdoc(life_stage) or "",
    )


@segql.hookimpl
def segql_register_library(library: Library) -> None:
    library.add(LIBRARY_SOURCE)
