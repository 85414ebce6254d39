"""Task accuracy of an artifact over a split, and parity of its logits with a reference (the Keras model)."""
from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels) -> float:
    labels = np.asarray(labels)
    return float((np.argmax(logits, axis=1) == labels).mean()) if len(labels) else float("nan")


def parity(reference: np.ndarray, logits: np.ndarray) -> dict:
    """Agreement of two models' outputs on the same inputs: argmax agreement and logit differences."""
    ref, got = np.asarray(reference, np.float32), np.asarray(logits, np.float32)
    diff = np.abs(ref - got)
    return {"argmax_agreement": round(float((ref.argmax(1) == got.argmax(1)).mean()), 6),
            "max_abs_diff": round(float(diff.max()), 6), "mean_abs_diff": round(float(diff.mean()), 6),
            "examples": int(len(ref))}
