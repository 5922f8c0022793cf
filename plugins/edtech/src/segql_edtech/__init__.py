"""segql-edtech: skill levels and learning-style segments for education technology.

Functions (see README.md for the rules, thresholds and sources):

* ``edtech.skill_level(subject, score, method, low, high, group)`` -> beginner / intermediate / advanced
* ``edtech.percentile_rank(subject, score, group)`` -> mid-point percentile rank 0..100
* ``edtech.learning_style(video, reading, interactive, min_share, min_total)``
  -> video / reading / interactive / blended

Ready-made features ``edtech.math_level``, ``edtech.reading_level``,
``edtech.preferred_format`` and segments such as ``edtech.advanced_math``,
``edtech.struggling_readers`` and ``edtech.video_learners``.
"""

from __future__ import annotations

import segql
from segql.library import Conventions, Library
from segql.registry import FunctionRegistry
from segql_edtech import ranks, ranks_sql, skill, style
from segql_edtech.library import LIBRARY
from segql_edtech.subjects import SUBJECT_PARAMS

__version__ = "0.1.0"

__all__ = [
    "segql_register_conventions",
    "segql_register_functions",
    "segql_register_library",
]


@segql.hookimpl
def segql_register_conventions(conventions: Conventions) -> None:
    conventions.add("math_score", kind="column", doc="the learner's math score (profile table)")
    conventions.add("reading_score", kind="column", doc="the learner's reading score (profile table)")
    conventions.add("activity", kind="table", doc="content consumption, one row per viewing / reading / exercise")
    conventions.add("activity.format", kind="column", doc='"video", "reading" or "interactive"')
    conventions.add("activity.minutes", kind="column", doc="minutes spent on that piece of content")


@segql.hookimpl
def segql_register_functions(registry: FunctionRegistry) -> None:
    registry.add(
        "edtech.skill_level",
        skill.skill_level,
        params=skill.PARAMS,
        returns="string",
        population=True,
        constant_args=("subject", "method"),
        doc=_first_line(skill.skill_level.__doc__),
        sql=ranks_sql.skill_level_sql,
    )
    registry.add(
        "edtech.percentile_rank",
        ranks.percentile_rank,
        params=(*SUBJECT_PARAMS, ("group", "orderable", "null")),
        constant_args=("subject",),
        returns="float",
        population=True,
        doc=_first_line(ranks.percentile_rank.__doc__),
        sql=ranks_sql.percentile_rank_sql,
    )
    registry.add(
        "edtech.learning_style",
        style.learning_style,
        params=style.PARAMS,
        returns="string",
        constant_args=("min_share", "min_total"),
        doc=_first_line(style.learning_style.__doc__),
    )


@segql.hookimpl
def segql_register_library(library: Library) -> None:
    library.add(LIBRARY)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0]
