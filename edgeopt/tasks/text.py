"""Text classification: one class per text; scored per example (accuracy, per-class figures, macro-F1)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


class TextClassification:
    name = "text_classification"
    headline = "accuracy"
    best_dev = "best_dev_accuracy"
    unit = "examples"
    per_token = False
    clients = True
    gpu = True
    tunable = True
    training_keys = ()

    def labels(self, gold: Sequence, seq_len: int) -> np.ndarray:
        return np.asarray(gold)

    def output_shape(self, seq_len: int, num_labels: int) -> tuple:
        return (num_labels,)

    def outputs(self) -> str:
        return "class scores"

    def rows(self, logits, y):
        return np.asarray(logits), np.asarray(y)

    def entities(self, logits, gold, label_names):
        return None

    def headline_value(self, quality) -> float:
        return quality.accuracy

    def check_plan(self, spec, steps, target, where: str) -> None:
        return None
