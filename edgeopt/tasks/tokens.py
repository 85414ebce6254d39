"""Token classification (a tagger): one BIO tag per token. Its outputs are (sentences, seq_len, tags); padding
(tag -1 past each sentence's end) is out of every metric; the headline is entity F1 over exact spans of whole
sentences (entities past seq_len, which the model never sees, count as missed); per-token accuracy and per-tag
figures are secondary."""
from __future__ import annotations

from typing import Sequence

import numpy as np

PAD_TAG = -1  # a padded position's tag id: out of the loss and every metric


class TokenClassification:
    name = "token_classification"
    headline = "entity_f1"
    best_dev = "best_dev_entity_f1"
    unit = "real tokens"
    clients = False  # MediaPipe's TextClassifier takes one score row per text, a tagger gives one per token
    gpu = False  # the GPU check compares one score row per example

    def labels(self, gold: Sequence, seq_len: int) -> np.ndarray:
        from ..data.conll import padded_tags

        return padded_tags(gold, seq_len, PAD_TAG)

    def output_shape(self, seq_len: int, num_labels: int) -> tuple:
        return (seq_len, num_labels)

    def outputs(self) -> str:
        return "tag scores per token"

    def rows(self, logits, y):
        logits, y = np.asarray(logits), np.asarray(y)
        if logits.ndim != 3:
            return logits, y
        keep = y >= 0
        return logits[keep], y[keep]

    def entities(self, logits, gold, label_names):
        from ..data.conll import split_scores

        return split_scores(np.asarray(logits).argmax(-1), gold, list(label_names))

    def headline_value(self, quality) -> float:
        return quality.entities["micro"]["f1"]
