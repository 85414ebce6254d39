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
    dev_split = "stratified"
    robustness_judged = True

    def reads(self, data_spec) -> bool:
        from ..catalog import tagged

        return not tagged(data_spec)

    def check_spec(self, spec) -> None:
        from ..architectures import TAGGERS

        if spec.architecture is not None and spec.architecture.name in TAGGERS:
            raise ValueError(f"architecture {spec.architecture.name} tags tokens; set 'task: "
                             f"token_classification' (with CoNLL data) or use text_cnn, bilstm or transformer")

    def check_labels(self, name, label_names, train_labels) -> None:
        from ..errors import DataError

        if len(set(train_labels)) < 2:
            raise DataError(f"dataset {name!r}: the training split has {len(set(train_labels))} class "
                            f"({', '.join(label_names[:2])}); a classifier needs at least two. Fix: give examples of "
                            f"every class.")

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

    def chance(self, rows, y, entities, gold, label_names) -> dict:
        from ..validate.chance import chance_level

        return chance_level(np.asarray(rows).argmax(1), y, label_names)

    def headline_value(self, quality) -> float:
        return quality.accuracy

    def check_plan(self, spec, steps, target, where: str, teacher=None) -> None:
        return None
