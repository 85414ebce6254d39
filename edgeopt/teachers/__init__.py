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


def load_entry(root: Path, k: str):
    """(arrays, meta) of the cache entry ``root/k`` holding one ``arrays.npz``, verified (checksums, loads, finite;
    a damaged entry is reported, removed and recomputed by the caller), its bookkeeping keys left out; or None."""
    from ..cache import read_entry

    got = read_entry(root, k, ("arrays.npz",))
    if got is None:
        return None
    arrays, meta = got
    return arrays["arrays.npz"], {k2: v for k2, v in meta.items() if not k2.startswith("_")}


def save_entry(root: Path, k: str, arrays: dict, meta: dict) -> None:
    from ..cache import write_entry

    write_entry(root, k, {"arrays.npz": arrays}, meta)


def padded_batches(ids: list, order, batch_size: int, pad_id: int, length: Optional[int] = None):
    """(row indices, token ids, attention mask) per batch of ``order``: each row padded with ``pad_id`` to the
    batch's longest (or to ``length``), the mask 1 on its real tokens. Sorting ``order`` by length keeps the
    padding small."""
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        L = length or max(1, max(len(ids[i]) for i in idx))
        tok = np.full((len(idx), L), pad_id, np.int32)
        mask = np.zeros((len(idx), L), np.int32)
        for r, i in enumerate(idx):
            tok[r, :len(ids[i])], mask[r, :len(ids[i])] = ids[i], 1
        yield idx, tok, mask


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
        k = "transfer-" + hashlib.sha256(f"{self.key}|{tset.digest()}|{self.mask!r}".encode()).hexdigest()[:24]
        if k in self._memo:
            return self._memo[k]
        root = Path(self.cache_root) / "teachers" if self.cache_root is not None else None
        if root is not None and self.use_cache:
            got = load_entry(root, k)
            if got is not None:
                log(self.quiet, f"[edgeopt] distill: the teacher's outputs on the transfer set: cache hit ({k[9:]})")
                out = (got[0]["logits"], {**got[1], "cached": "disk"})
                self._memo[k] = out
                return out
        texts = tset.texts(self.mask)
        log(self.quiet, f"[edgeopt] distill: the teacher labels the transfer set ({len(texts)} texts)")
        t0 = time.perf_counter()
        logits = np.asarray(self.logits(texts), np.float32)
        meta = {"texts": len(texts), "teacher_seconds": round(time.perf_counter() - t0, 1),
                "bytes": int(logits.nbytes)}
        if root is not None and self.use_cache:
            save_entry(root, k, {"logits": logits}, meta)
        out = (logits, {**meta, "cached": False})
        self._memo[k] = out
        return out
