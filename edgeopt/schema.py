"""The base of every typed config edgeopt reads from a user (specs, targets, recipes, manifests, baselines).

Frozen, unknown keys forbidden, no NaN or infinity, and no YAML/JSON boolean where a number is expected:
pydantic's lax mode would read ``max_size_bytes: true`` as a 1-byte budget, which silently changes a build.
"""
from __future__ import annotations

import types
import typing

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _wants_number(annotation) -> bool:
    """True when the annotation accepts int or float but not bool (Optional and Annotated are looked through)."""
    seen, stack = set(), [annotation]
    while stack:
        a = stack.pop()
        if a is bool:
            return False
        if a in (int, float):
            seen.add(a)
        origin = typing.get_origin(a)
        if origin in (typing.Union, types.UnionType, typing.Annotated):
            stack.extend(typing.get_args(a)[:1] if origin is typing.Annotated else typing.get_args(a))
    return bool(seen)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, v, info: ValidationInfo):
        if isinstance(v, bool) and _wants_number(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"expected a number, got the boolean {v!r}")
        return v
