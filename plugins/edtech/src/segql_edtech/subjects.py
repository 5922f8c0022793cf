"""Subjects and the default score column of each (the pack's conventions)."""

from __future__ import annotations

from segql.pack import PluginError, Value, constant

SUBJECTS = {"math": "math_score", "reading": "reading_score"}
"""Subject -> the profile column its default score reads."""

_DISPATCH = " ".join(f'when "{subject}" then {column}' for subject, column in SUBJECTS.items())
SUBJECT_PARAMS: tuple[tuple[str, str, str], ...] = (
    ("subject", "string", '"math"'),
    ("score", "float", f"case $subject {_DISPATCH} end"),
)
"""The first two parameters of the score functions: ``subject`` chooses the default ``score``."""


def check_subject(subject: Value) -> str:
    """The subject's name; an error for a subject without a default score column."""
    name = constant(subject, "subject", allow_null=True)
    if name not in SUBJECTS:
        raise PluginError(
            f"subject must be one of {', '.join(map(repr, SUBJECTS))}, not {name!r}; "
            "for another subject pass its column as score: and leave subject out"
        )
    return name
