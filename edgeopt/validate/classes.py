"""Per-class quality of an artifact: precision, recall, F1 and support per class, macro- and weighted-F1 and the
confusion matrix (scikit-learn's metrics), plus what a report needs from two of them: the classes that lost most
F1 and the most frequent confusions."""
from __future__ import annotations

import numpy as np


def per_class(predictions, labels, label_names: list[str]) -> dict:
    """Metrics of predicted class ids against true ones. A class never predicted has precision 0 (and F1 0), not
    NaN, so macro-F1 punishes a model that stops predicting a rare class."""
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y, p = np.asarray(labels), np.asarray(predictions)
    ids = list(range(len(label_names)))
    prec, rec, f1, sup = precision_recall_fscore_support(y, p, labels=ids, zero_division=0)
    return {"labels": list(label_names),
            "precision": [round(float(v), 6) for v in prec], "recall": [round(float(v), 6) for v in rec],
            "f1": [round(float(v), 6) for v in f1], "support": [int(v) for v in sup],
            "macro_f1": round(float(f1_score(y, p, labels=ids, average="macro", zero_division=0)), 6),
            "weighted_f1": round(float(f1_score(y, p, labels=ids, average="weighted", zero_division=0)), 6),
            "confusion": confusion_matrix(y, p, labels=ids).tolist()}


def macro_f1(predictions, labels, num_classes: int) -> float:
    """Macro-F1 (classes 0..num_classes-1, zero division 0), by counting: the regression gate's bootstrap calls
    it thousands of times, where scikit-learn's input checks would dominate."""
    y, p = np.asarray(labels), np.asarray(predictions)
    tp = np.bincount(y[y == p], minlength=num_classes).astype(float)
    pred = np.bincount(p, minlength=num_classes).astype(float)
    true = np.bincount(y, minlength=num_classes).astype(float)
    denom = pred + true
    f1 = np.divide(2 * tp, denom, out=np.zeros(num_classes), where=denom > 0)
    return float(f1.mean())


def biggest_losses(deployed: dict, baseline: dict, k: int = 5) -> list[dict]:
    """The k classes whose F1 fell most from the float32 artifact to the deployed one (only those that fell)."""
    rows = [{"label": n, "f1_float32": b, "f1_deployed": d, "drop": round(b - d, 6), "support": s}
            for n, d, b, s in zip(deployed["labels"], deployed["f1"], baseline["f1"], deployed["support"])]
    return sorted((r for r in rows if r["drop"] > 0), key=lambda r: (-r["drop"], r["label"]))[:k]


def top_confusions(metrics: dict, k: int = 5) -> list[dict]:
    """The k most frequent (true label -> predicted label) mistakes."""
    cm = np.asarray(metrics["confusion"])
    off = [(int(cm[i, j]), i, j) for i, j in zip(*np.nonzero(cm)) if i != j]
    off.sort(key=lambda t: (-t[0], t[1], t[2]))
    names = metrics["labels"]
    return [{"true": names[i], "predicted": names[j], "count": c, "of_true": int(cm[i].sum())} for c, i, j in off[:k]]
