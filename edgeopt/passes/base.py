"""The ``Pass`` shape: one step on a model. Every pass is an object with a name and
``run(model, ctx, cfg) -> PassOutput(model, record)`` (``cfg``: its config, of the type ``recipe.PASS_CONFIGS``
declares for its name: the one place a recipe file's pass sections are typed); ``passes/__init__.py`` holds the one table of them, and the
build session runs a recipe's steps through it (cached by key, measured as a float export where the pass allows).

A pass never mutates its input model. ``ctx`` is a :class:`PassRun`: the data and model factories of the build
(``data``, a :class:`~edgeopt.passes.common.PassContext`), the spec it trains by, the facts of a model file, and the
teacher's logits (a distillation), fetched through the context when a pass asks for them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol


@dataclass(frozen=True)
class PassOutput:
    model: Any
    record: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PassRun:
    """What a pass runs with."""

    data: Any  # passes.common.PassContext: the splits, the model factories, the task's loss and metrics
    spec: Any  # the ModelSpec (its training section)
    quiet: bool = False
    facts: dict = field(default_factory=dict)  # a model file's path, format and hash
    teacher: Optional[Callable[[], tuple]] = None  # -> (teacher logits over the training split, teacher record)


class Pass(Protocol):
    name: str
    keyed: bool  # its output is a model, keyed and cached (False: a step that only adds a record)
    base: bool  # its output is the uncompressed model: the float32 baseline every drop is measured against
    quantization_aware: bool  # its output is a QAT graph (converts to TFLite only; no float export is measured)

    def run(self, model, ctx: PassRun, cfg) -> PassOutput: ...

    def structure(self, parent, ctx: PassRun) -> Callable[[], Any]:
        """A model of the structure a cached output's weights fit (loaded into it)."""


class KeyedPass:
    """Defaults of a pass whose output is a model of the spec's own structure."""

    keyed = True
    base = False
    quantization_aware = False

    def structure(self, parent, ctx: PassRun):
        return ctx.data.rebuild


class RecordOnly:
    """A step that does nothing to the model and records why it is in the recipe (the strip steps: the passes
    before them strip their own wrappers)."""

    keyed = False
    base = False
    quantization_aware = False

    def __init__(self, name: str):
        self.name = name

    def run(self, model, ctx: PassRun, cfg) -> PassOutput:
        return PassOutput(model, {})

    def structure(self, parent, ctx: PassRun):
        return ctx.data.rebuild
