"""The `match` condition: one test of one event field, named by a dotted path."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from genea_automate.config.endpoints import FrozenModel
from genea_automate.config.issues import did_you_mean
from genea_automate.events.model import EVENT_FIELDS

Scalar = bool | int | float | str
OPERATORS = ("equals", "in", "regex", "glob", "exists")
# Fields whose content is the payload's own, so any path below them is allowed.
FREE_FORM = frozenset({"details", "raw"})


class MatchConfig(FrozenModel):
    """`match: {path: door.name, equals: Server Room}`: exactly one operator.

    Values compare as text, so `equals: 3` matches the string "3" and
    `equals: true` matches a JSON true.
    """

    path: str
    equals: Scalar | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)
    regex: str | None = None
    glob: str | None = None
    exists: bool | None = None
    ignore_case: bool = False

    @field_validator("path")
    @classmethod
    def _known_path(cls, value: str) -> str:
        problem = path_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(
                    f"{value!r} is not a valid regular expression: {exc.msg} at "
                    f"position {exc.pos}"
                ) from None
        return value

    @model_validator(mode="after")
    def _one_operator(self) -> MatchConfig:
        given = [name for name in OPERATORS if self.operand(name) is not None]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            raise ValueError(
                f"match needs exactly one of {', '.join(OPERATORS)}; found {found}. "
                "Combine several tests with all:, any: or not:"
            )
        return self

    def operand(self, operator: str) -> Any:
        return getattr(self, "in_" if operator == "in" else operator)

    @property
    def operator(self) -> str:
        return next(name for name in OPERATORS if self.operand(name) is not None)


def path_problem(path: str) -> str | None:
    """Why a dotted path names no event field, or None when it may."""
    head, *rest = path.split(".")
    if head not in EVENT_FIELDS:
        return (
            f"no event field is called {head!r}{did_you_mean(head, EVENT_FIELDS)}; "
            f"paths start with one of: {', '.join(EVENT_FIELDS)}"
        )
    if head in FREE_FORM or not rest:
        return None
    inner = EVENT_FIELDS[head]
    if not inner:
        return f"{head!r} is a single value, so {path!r} cannot go below it"
    if rest[0] not in inner or len(rest) > 1:
        hint = did_you_mean(rest[0], inner)
        return (
            f"{head!r} has no field {'.'.join(rest)!r}{hint}; "
            f"its fields are: {', '.join(inner)}"
        )
    return None
