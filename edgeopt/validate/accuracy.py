"""Task accuracy of an artifact over a split, and parity of its logits with a reference (the Keras model)."""
from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels) -> float:
    """Top-1 accuracy; a row with a non-finite score counts as wrong (argmax over NaN would pick class 0)."""
    labels = np.asarray(labels)
    if not len(labels):
        return float("nan")
    logits = np.asarray(logits)
    ok = np.isfinite(logits).all(axis=1)
    return float(((np.argmax(logits, axis=1) == labels) & ok).mean())


def real_rows(logits, labels):
    """(logits, labels) of the rows metrics are taken over: unchanged for a classifier; a tagger's
    (sentences, seq_len, tags) logits and padded tag ids (-1 past each sentence's end) as one row per real token."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 3:
        return logits, labels
    keep = labels >= 0
    return logits[keep], labels[keep]


def parity(reference: np.ndarray, logits: np.ndarray) -> dict:
    """Agreement of two models' outputs on the same inputs, over the rows where both are finite: argmax agreement
    and logit differences (None when no row could be compared)."""
    ref, got = np.asarray(reference, np.float32), np.asarray(logits, np.float32)
    ok = np.isfinite(ref).all(axis=1) & np.isfinite(got).all(axis=1)
    if not ok.any():
        return {"argmax_agreement": None, "max_abs_diff": None, "mean_abs_diff": None, "examples": 0,
                "non_finite_rows": int(len(ref))}
    ref, got = ref[ok], got[ok]
    diff = np.abs(ref - got)
    return {"argmax_agreement": round(float((ref.argmax(1) == got.argmax(1)).mean() * ok.mean()), 6),
            "max_abs_diff": round(float(diff.max()), 6), "mean_abs_diff": round(float(diff.mean()), 6),
            "examples": int(ok.sum()), "non_finite_rows": int((~ok).sum())}


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def scores_record(reference: np.ndarray, logits: np.ndarray) -> dict:
    """What the deployed file's outputs are, and why: logits, because a softmax would squash the differences every
    parity check reads. Measured on the test split: :func:`parity` with the float32 twin in logits and in
    probabilities (over the same finite rows), and how sure the file is (its mean top-1 probability)."""
    rec = {"output": "logits", "to_probabilities": "softmax over every label's score"}
    in_logits = parity(reference, logits)
    if not in_logits["examples"]:
        return rec
    in_probs = parity(softmax(reference), softmax(logits))
    ref, got = np.asarray(reference, np.float32), np.asarray(logits, np.float32)
    got = got[np.isfinite(ref).all(axis=1) & np.isfinite(got).all(axis=1)]  # parity's rows
    return {**rec, "examples": in_logits["examples"],
            "max_abs_logit_diff_vs_baseline": in_logits["max_abs_diff"],
            "max_abs_probability_diff_vs_baseline": in_probs["max_abs_diff"],
            "mean_top1_probability": round(float(softmax(got).max(axis=1).mean()), 6)}
