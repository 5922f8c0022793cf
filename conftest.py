"""Hypothesis runs the same examples on every machine unless asked otherwise.

By default every property test is derandomized (its examples derive from the
test itself), so a failure seen once comes back on the next run, with or
without ``CI`` set.  ``SEGQL_HYPOTHESIS=random pytest …`` explores new random
examples instead (a failure then prints the blob that reproduces it).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("segql-fixed", derandomize=True, database=None, print_blob=True)
settings.register_profile("segql-random", derandomize=False, database=None, print_blob=True)

_CHOICE = os.environ.get("SEGQL_HYPOTHESIS", "fixed")
if _CHOICE not in ("fixed", "random"):
    raise SystemExit(f"SEGQL_HYPOTHESIS must be 'fixed' or 'random', not {_CHOICE!r}")
settings.load_profile(f"segql-{_CHOICE}")
