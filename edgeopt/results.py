"""Typed results that travel between the pipeline's stages and into the manifest, frozen: a conversion (every attempt
of the fallback chain) and a verdict (every budget check). They are pydantic models so that the manifest writes
and reads them through one schema (``manifest.Manifest``), and closed (``extra="forbid"``): a key nobody declared
is an error, not a silent addition. Their dict-style reading (``verdict["passed"]``) is the manifest's JSON view of
the same record."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, model_serializer


class Record(BaseModel):
    """A closed, frozen record. ``record["key"]`` reads a field as the manifest's JSON does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __getitem__(self, key: str):
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key, default) if key in type(self).model_fields else default


class Sparse(BaseModel):
    """A closed schema whose optional keys are written only when they were given (a tagger's figures, a failed
    attempt's error, a side file's role): the JSON has the keys the producer set, as it did before it was typed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_serializer(mode="wrap")
    def _given_only(self, handler):
        data = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set}


class Attempt(Record, Sparse):
    """One conversion of the fallback chain: converted, or failed/crashed with the error and the model's layers
    (written only when given)."""

    mode: str
    outcome: Literal["converted", "failed", "crashed"]
    error: Optional[str] = None
    layer_types: Optional[tuple[str, ...]] = None


class Conversion(Record):
    """The deployed file's conversion: the quantization asked, the one deployed, every attempt in order."""

    asked: str
    deployed: str
    attempts: tuple[Attempt, ...]
    fell_back: bool


class BudgetCheck(Record):
    """One budget judged: its limit, the measured value (or why there is none), the unit, pass/fail. ``skipped``:
    why a budget the user asked not to measure (``--no-count``) was not judged; it then neither passes on a
    value nor fails the build, and every report says so."""

    name: str
    limit: Any
    value: Any
    unit: str
    passed: bool
    skipped: Optional[str] = None
    hint: Optional[str] = None  # a failed budget's cause and knobs (the size budget: what drives the size)


class Verdict(Record):
    """Every budget judged on one artifact's evidence; passed when every check passed."""

    passed: bool
    checks: tuple[BudgetCheck, ...]

    def failed(self) -> tuple[BudgetCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)
