"""The ``Task`` protocol: what a model does, and everything that differs between tasks in one object. A module
outside ``tasks/`` asks the task (``task_for(name)``) instead of comparing the task's name.

A task owns: the labels of a split (class ids, or padded tag ids), the rows its metrics are taken over, the output
shape an exported file must have, its quality figures over a split (accuracy, per-class, and for a tagger the entity
spans), its headline figure, and what a prediction prints.
"""
from __future__ import annotations

from typing import Optional, Protocol, Sequence

import numpy as np


class Task(Protocol):
    name: str  # the spec's ``task``: text_classification | token_classification
    headline: str  # the figure a build leads with: "accuracy" | "entity_f1"
    best_dev: str  # the training record's key of the best dev figure
    unit: str  # what one scored row is: "examples" | "real tokens"
    per_token: bool  # its outputs and labels are per token (padded), not per text
    clients: bool  # MediaPipe's TextClassifier can run it, and its metadata writer describe it (one score row per text)
    gpu: bool  # LiteRT's GPU check is built for its outputs
    tunable: bool  # `edgeopt tune` can compare its candidates
    training_keys: tuple[str, ...]  # the training record's own keys a manifest's ``training`` section adds
    dev_split: str  # a dev split taken from train when none is given: "stratified" by label | "random" (sentences)
    robustness_judged: bool  # budgets.max_robustness_drop judges it (else measured and reported only)

    def labels(self, gold: Sequence, seq_len: int) -> np.ndarray:
        """The label array a split's model outputs are scored against."""

    def output_shape(self, seq_len: int, num_labels: int) -> tuple:
        """The per-example output shape an exported file must have."""

    def outputs(self) -> str:
        """What the outputs are, in words (for errors)."""

    def rows(self, logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits, labels) of the rows the metrics count: every example, or a tagger's real tokens."""

    def entities(self, logits: np.ndarray, gold: Sequence, label_names: Sequence[str]) -> Optional[dict]:
        """A tagger's entity precision/recall/F1 over whole sentences (None for a classifier)."""

    def chance(self, rows, y, entities, gold, label_names) -> dict:
        """Is the file better than a constant output? (validate/chance.py: the exact test, its record)"""

    def headline_value(self, quality) -> float:
        """The headline figure of a quality record."""

    def reads(self, data_spec) -> bool:
        """Whether a spec's ``data:`` section holds this task's examples (exactly one task reads any data)."""

    def check_spec(self, spec) -> None:
        """Refuse (ValueError, the spec checker's message) what a spec of this task cannot be: its architecture,
        tokenizer."""

    def check_labels(self, name: str, label_names: Sequence[str], train_labels: Sequence) -> None:
        """Refuse (DataError) a training split this task cannot learn from."""

    def check_plan(self, spec, steps, target, where: str, teacher=None) -> None:
        """Refuse, before any training, what this task's path does not do (one line, the fix)."""
