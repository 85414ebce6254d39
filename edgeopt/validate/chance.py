"""Is an artifact better than chance? A file whose accuracy is not significantly above the majority-class rate of
the rows it is scored on (one-sided exact binomial test, scipy's ``binomtest``) tells an app nothing, however close
it is to its float32 twin: a model trained badly, a file exported wrong, or a model whose outputs are in another
order than the data's labels (a user's own model with its labels sorted, say) all look like that.

When the outputs are no better than chance, the assignment of outputs to labels that explains them best
(``scipy.optimize.linear_sum_assignment`` on the confusion matrix) says whether a label order is the likely cause:
if reading the outputs in that order is significantly better than chance, the message names the order and
``labels:``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

ALPHA = 1e-3  # the test's one-sided significance level: the chance of calling a chance-level file better


def _p_value(correct: int, n: int, rate: float) -> float:
    from scipy.stats import binomtest

    if n == 0:
        return 1.0
    return float(binomtest(int(correct), int(n), min(max(rate, 0.0), 1.0), alternative="greater").pvalue)


def chance_level(pred: np.ndarray, y: np.ndarray, label_names: Sequence[str]) -> dict:
    """The file's predictions ``pred`` against the labels ``y`` (the rows its task scores): its accuracy, the
    majority-class rate, the exact test's p-value and whether it passed; when it did not and a permutation of the
    outputs explains them, the accuracy read that way and the first outputs it moves."""
    pred, y = np.asarray(pred, np.int64), np.asarray(y, np.int64)
    n, k = len(y), len(label_names)
    counts = np.bincount(y, minlength=k)
    majority = int(counts.argmax()) if n else 0
    rate = float(counts[majority] / n) if n else 1.0
    correct = int((pred == y).sum())
    p = _p_value(correct, n, rate)
    out = {"measure": "accuracy", "rows": n, "value": round(correct / n, 6) if n else None,
           "chance": round(rate, 6), "chance_by": f"always '{label_names[majority]}' (the majority class)",
           "p_value": float(f"{p:.3g}"), "alpha": ALPHA, "passed": bool(p < ALPHA)}
    if not out["passed"] and n:
        out.update(_label_order(pred, y, label_names, rate, correct) or {})
    return out


def _label_order(pred: np.ndarray, y: np.ndarray, label_names: Sequence[str], rate: float,
                 correct: int) -> Optional[dict]:
    """The outputs-to-labels assignment that maximizes agreement, when reading the outputs that way is itself
    significantly better than chance (and better than as they are)."""
    from scipy.optimize import linear_sum_assignment

    k = len(label_names)
    conf = np.zeros((k, k), np.int64)  # conf[output, label]
    np.add.at(conf, (np.clip(pred, 0, k - 1), y), 1)
    outputs, labels = linear_sum_assignment(-conf)
    hits = int(conf[outputs, labels].sum())
    if hits <= correct or _p_value(hits, len(y), rate) >= ALPHA:
        return None
    moved = [(int(o), int(lb)) for o, lb in zip(outputs, labels) if o != lb]
    return {"permuted_accuracy": round(hits / len(y), 6), "outputs_moved": len(moved),
            "permutation_sample": [f"output {o} reads as {label_names[lb]!r} (not {label_names[o]!r})"
                                   for o, lb in moved[:3]]}


def entity_chance(entities: dict, gold: Sequence, label_names: Sequence[str]) -> dict:
    """A tagger against chance: its share of predicted entity spans that are exactly right, against the best
    constant tagger's (one tag for every token: the all-'O' tagger predicts no span at all), by the same exact test.
    Its token accuracy is no guide (a tagger that finds entities tags fewer tokens 'O' than the majority class)."""
    from ..data.conll import entity_scores

    names = list(label_names)
    gold_tags = [[names[t] for t in s] for s in gold]
    best, rate = "O", 0.0
    for tag in names:
        if tag == "O":
            continue
        m = entity_scores(gold_tags, [[tag] * len(s) for s in gold_tags])["micro"]
        if m["precision"] > rate:
            best, rate = tag, m["precision"]
    micro = entities["micro"]
    k, n = int(micro["correct"]), int(micro["predicted"])
    p = _p_value(k, n, rate) if n else 1.0
    return {"measure": "entity span precision", "rows": n, "value": round(k / n, 6) if n else 0.0,
            "chance": round(rate, 6), "chance_by": f"always '{best}' (the best constant tag)",
            "p_value": float(f"{p:.3g}"), "alpha": ALPHA, "passed": bool(n and p < ALPHA)}


def describe(label: str, c: dict) -> str:
    """One line: ``label``'s figure against chance; when it is no better, why, and the likely cause."""
    if c["passed"]:
        return f"{label}: {c['measure']} {c['value']:.4f} vs {c['chance']:.4f}, p={c['p_value']:.3g}"
    head = (f"{label}: {c['measure']} {c['value']:.4f} is not above {c['chance']:.4f}, {c['chance_by']} (exact "
            f"test p={c['p_value']:.3g} over {c['rows']} {'spans' if c['measure'] != 'accuracy' else 'rows'})")
    if "permuted_accuracy" in c:
        return (f"{head}; its outputs are in another order than the data's labels: read as "
                f"{'; '.join(c['permutation_sample'])} ({c['outputs_moved']} outputs moved) they score "
                f"{c['permuted_accuracy']:.4f}. Fix: declare the model's output labels in order (model.labels in the "
                f"spec, or --labels FILE)")
    return f"{head}: no better than chance (an untrained or broken model, or too few test rows to tell)"
