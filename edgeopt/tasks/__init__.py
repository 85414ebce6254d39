"""Tasks as objects (see base.py): the one table of them, and ``task_for(name)``."""
from __future__ import annotations

from .base import Task
from .text import TextClassification
from .tokens import PAD_TAG, TokenClassification

TASKS: dict[str, Task] = {t.name: t for t in (TextClassification(), TokenClassification())}


def task_for(name) -> Task:
    """The task object of a spec's ``task`` (None or a name); a Task is returned as it is."""
    if name is None:
        return TASKS["text_classification"]
    if not isinstance(name, str):
        return name
    return TASKS[name]


def task_of(data_spec) -> str:
    """The task a ``data:`` section's examples are for: the one task that reads them (CoNLL files and WNUT-17 are
    token classification)."""
    return next(t.name for t in TASKS.values() if t.reads(data_spec))


__all__ = ["PAD_TAG", "TASKS", "Task", "TextClassification", "TokenClassification", "task_for", "task_of"]
