"""The ``robustness`` validator: the artifact on the test split as people type it. Each transform of the split's
texts (lower case, UPPER CASE, Title Case, Capitalized, punctuation removed) goes through the build's own tokenizer
and the same runtime as the quality run, and, where the target has a client that can run the file, through the
client too (MediaPipe's TextClassifier reads the raw texts with its own tokenizer): the task's headline figure
on each, and the drop from the texts as written. ``budgets.max_robustness_drop`` judges the worst drop, in
edgeopt's runtime or in the client.

A tagger's gold tags are per given token, so it is measured on the case transforms only (removing punctuation
would remove tokens and their tags).
"""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np

from ..console import log, working
from .base import MeasureRequest

_PUNCT = re.compile(r"[^\w\s]")
_JOINER = re.compile(r"(?<=\w)[-/](?=\w)")  # "top-up", "and/or": typed without it as two words


def no_punctuation(text: str) -> str:
    """The text as typed without punctuation: marks deleted (``don't`` -> ``dont``, ``card?`` -> ``card``), a hyphen
    or slash between two words a space (``top-up`` -> ``top up``: deleting it joins them into a word the model has
    never seen, which measured the vocabulary rather than the typing: 0.97 instead of 0.58 points on the reference
    Banking77 int8 file)."""
    return _PUNCT.sub("", _JOINER.sub(" ", text))


TRANSFORMS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("lower case", str.lower),
    ("UPPER CASE", str.upper),
    ("Title Case", str.title),
    ("Capitalized", lambda t: t[:1].upper() + t[1:]),
    ("no punctuation", no_punctuation),
)
CASE_ONLY = ("lower case", "UPPER CASE", "Title Case", "Capitalized")  # what keeps every token (and its tag)


def transforms_for(task) -> tuple:
    return TRANSFORMS if not task.per_token else tuple((n, f) for n, f in TRANSFORMS if n in CASE_ONLY)


class RobustnessValidator:
    name = "robustness"
    section = "robustness"  # a build manifest's key for its record: the figure under each transform

    def applies(self, req: MeasureRequest) -> bool:
        return req.robustness and req.tokenizer is not None and len(req.split.texts) == len(req.split.x) > 0

    def measure(self, req: MeasureRequest, so_far) -> dict:
        from .. import runtimes
        from .accuracy import accuracy

        task, q = req.task, so_far["quality"]
        figure = task.headline
        as_typed = task.headline_value(q)
        sess = runtimes.load(req.path, req.run)
        texts = [t if isinstance(t, str) else str(t) for t in req.split.texts]
        rows, variants = [], []
        for name, fn in transforms_for(task):
            changed = [fn(t) for t in texts]
            x = np.asarray(req.tokenizer.encode_batch(changed), np.int32)
            logits = sess.run(x)
            # the task's own headline (accuracy, or a tagger's entity F1), as the quality record has it
            value = task.headline_value(SimpleNamespace(accuracy=accuracy(*task.rows(logits, req.split.y)),
                                                        entities=task.entities(logits, req.split.gold,
                                                                               req.label_names)))
            rows.append({"transform": name, figure: round(value, 6), "drop": round(as_typed - value, 6),
                         "texts_changed": int(sum(a != b for a, b in zip(changed, texts))),
                         "ids_changed": int((x != req.split.x).any(axis=1).sum())})
            variants.append(changed)
        out = {"figure": figure, "judged": bool(task.robustness_judged), "examples": len(texts),
               "as_typed": {figure: as_typed}, "transforms": rows,
               "tokenizer": getattr(req.tokenizer, "TYPE", type(req.tokenizer).__name__),
               "lowercase": bool(getattr(req.tokenizer, "lowercase", False))}
        client = self._client(req, so_far, variants, rows)
        if client is not None:
            out["as_typed"]["client_accuracy"] = client
        worst = max([(r["drop"], "edgeopt", r["transform"]) for r in rows]
                    + [(r["client_drop"], "client", r["transform"]) for r in rows if "client_drop" in r])
        out["worst"] = {"transform": worst[2], "drop": round(worst[0], 6), "measured_in": worst[1]}
        from ..writer import drop, pct

        log(req.quiet, f"[edgeopt] {req.target.name}: robustness of {Path(req.path).name}: worst {worst[2]}, "
                       f"{drop(worst[0])} ({worst[1]}) than {pct(as_typed)} as typed")
        return out

    @staticmethod
    def _client(req: MeasureRequest, so_far, variants: list, rows: list):
        """The client's accuracy on every transform (one run over all of them), written into ``rows``; its
        accuracy on the texts as written (from the clients validator's run). None where no client runs."""
        ran = [c for c in so_far.get("clients") or () if c.get("ran")]
        if not ran or Path(req.path).suffix.lower() != ".tflite":
            return None
        from ..clients import mediapipe as mp

        with working(f"{req.target.name}: MediaPipe TextClassifier on {len(variants)} transforms of the test split "
                     f"({sum(len(v) for v in variants):,} texts)", req.quiet):
            res = mp.classify(Path(req.path), [t for v in variants for t in v], req.quiet)
        y, n = np.asarray(req.split.y), len(req.split.y)
        base = ran[0]["accuracy"]
        for k, r in enumerate(rows):
            acc = float((np.asarray(res["top"][k * n:(k + 1) * n]) == y).mean())
            r["client_accuracy"], r["client_drop"] = round(acc, 6), round(base - acc, 6)
        return base
