"""Distillation teachers: a ModelSpec trained on the same data (pipeline/builder.py), all-MiniLM-L6-v2 with a linear
head on its frozen encoder or fine-tuned end to end (minilm.py), or any ONNX text classifier (onnx.py).

Each is handed to the ``distill`` pass as a :class:`Teacher`: its logits over the training split, a record, and a
function giving its logits over any texts, through which the transfer set (passes/transfer.py) is labelled,
cached by (the teacher's key, the texts).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..console import log


@dataclass
class Teacher:
    train_logits: np.ndarray  # (training texts, classes), row-aligned with the training split
    record: dict  # what the manifest shows (name, architecture, accuracy...)
    key: str  # what its outputs depend on (weights, tokenizer, head settings): part of every cache key of its outputs
    logits: Callable[[list], np.ndarray]  # texts -> (texts, classes) logits
    mask: Optional[str] = None  # the string its tokenizer reads as a masked (or unknown) word
    cache_root: Optional[Path] = None
    use_cache: bool = True
    quiet: bool = True
    _memo: dict = field(default_factory=dict)

    def transfer_logits(self, tset) -> tuple[np.ndarray, dict]:
        """Its logits over ``tset`` (rendered with its own mask), computed once, then read from the cache."""
        from ..cache import read_entry, write_entry

        k = "transfer-" + hashlib.sha256(f"{self.key}|{tset.digest()}|{self.mask!r}".encode()).hexdigest()[:24]
        if k in self._memo:
            return self._memo[k]
        root = Path(self.cache_root) / "teachers" if self.cache_root is not None else None
        if root is not None and self.use_cache:
            got = read_entry(root, k, ("arrays.npz",))
            if got is not None:
                log(self.quiet, f"[edgeopt] distill: the teacher's outputs on the transfer set: cache hit ({k[9:]})")
                out = (got[0]["arrays.npz"]["logits"], {**{a: b for a, b in got[1].items() if not a.startswith("_")},
                                                        "cached": "disk"})
                self._memo[k] = out
                return out
        texts = tset.texts(self.mask)
        log(self.quiet, f"[edgeopt] distill: the teacher labels the transfer set ({len(texts)} texts)")
        t0 = time.perf_counter()
        logits = np.asarray(self.logits(texts), np.float32)
        meta = {"texts": len(texts), "teacher_seconds": round(time.perf_counter() - t0, 1),
                "bytes": int(logits.nbytes)}
        if root is not None and self.use_cache:
            write_entry(root, k, {"arrays.npz": {"logits": logits}}, meta)
        out = (logits, {**meta, "cached": False})
        self._memo[k] = out
        return out
