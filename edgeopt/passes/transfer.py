"""The distillation transfer set: what the student learns from the teacher's outputs alone, besides the training
texts (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks", section 3).

- **Augmented copies** of each training text (``copies`` of them). Each copy walks the text's words once: a word
  is masked with probability ``mask`` (the teacher reads its own mask token, ``[MASK]`` for a BERT, and the student
  its unknown id), else replaced with probability ``replace`` by one of its ``neighbours`` nearest words of the
  training vocabulary (cosine over all-MiniLM-L6-v2's input word vectors, a word's vector being the mean of its
  word pieces' rows: the stand-in for the paper's same-part-of-speech replacement, whose tagger and data this
  machine cannot fetch); then, with probability ``ngram``, the copy is cut to a random window of 1 to ``ngram_max``
  words. A copy equal to a training text or to an earlier copy is dropped. Seeded: the same settings and texts
  give the same transfer set.
- **Unlabeled in-domain texts** (``unlabeled: FILE``, UTF-8, one text a line; blank lines skipped).

A word is a run of non-space characters; its punctuation at either end stays where it was when the word core
is masked or replaced, and the case of a replaced word follows the original's (``Card`` -> ``Wallet``). Written
by hand: the augmenters of nlpaug and TextAttack pull torch and fetch their models at run time.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError

MASK = None  # a masked word in a copy's word list
_WORD = re.compile(r"^(\W*)(\w(?:[\w'’-]*\w)?)(\W*)$", re.UNICODE)
# strings no vocabulary is expected to hold, tried in turn as the student's mask: the first that the student's
# tokenizer reads as exactly its unknown token is used (a private-use character; two letter runs for tokenizers
# that drop non-ASCII characters)
UNKNOWN_CANDIDATES = ("\ue000", "xqzvkxqz", "qqxzvjqk")


@dataclass(frozen=True)
class TransferSet:
    """Copies as word lists (``MASK`` for a masked word's core, with its punctuation as ``(prefix, suffix)``) and
    the unlabeled texts; :meth:`texts` renders them for one tokenizer's mask string."""

    copies: tuple  # tuple of tuples of (prefix, core or MASK, suffix)
    unlabeled: tuple[str, ...]
    record: dict

    def __len__(self) -> int:
        return len(self.copies) + len(self.unlabeled)

    def texts(self, mask: Optional[str]) -> list[str]:
        """The transfer texts with each masked word as ``mask`` (``None``: the masked word is left out)."""
        out = []
        for words in self.copies:
            parts = []
            for pre, core, suf in words:
                if core is MASK and mask is None:
                    w = pre + suf
                else:
                    w = pre + (mask if core is MASK else core) + suf
                if w:
                    parts.append(w)
            out.append(" ".join(parts))
        return out + list(self.unlabeled)

    def digest(self) -> str:
        """What the teacher's outputs on this set depend on (with the teacher's mask string)."""
        blob = json.dumps([[list(w) for w in c] for c in self.copies] + [list(self.unlabeled)])
        return hashlib.sha256(blob.encode()).hexdigest()[:24]


def split_word(word: str) -> tuple[str, Optional[str], str]:
    """(leading punctuation, core, trailing punctuation); a word without a word character has no core."""
    m = _WORD.match(word)
    return (m.group(1), m.group(2), m.group(3)) if m else (word, None, "")


def _cased_like(new: str, old: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def vocabulary(texts: Sequence[str], limit: int = 20_000) -> list[str]:
    """The training texts' alphabetic word cores (lower case, two letters or more), most frequent first."""
    counts = Counter()
    for t in texts:
        for w in t.split():
            core = split_word(w)[1]
            if core and core.isalpha() and len(core) > 1:
                counts[core.lower()] += 1
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def nearest_neighbours(words: Sequence[str], vectors: np.ndarray, k: int) -> dict[str, tuple[str, ...]]:
    """Each word's ``k`` nearest other words by cosine (chunked: memory stays O(chunk x words))."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    out = {}
    k = min(k, len(words) - 1)
    if k <= 0:
        return {}
    for s in range(0, len(words), 1024):
        sim = v[s:s + 1024] @ v.T
        for r in range(sim.shape[0]):
            sim[r, s + r] = -np.inf  # not itself
        top = np.argpartition(-sim, k, axis=1)[:, :k]
        for r, row in enumerate(top):
            best = row[np.argsort(-sim[r, row], kind="stable")]
            out[words[s + r]] = tuple(words[j] for j in best)
    return out


def read_unlabeled(path: str, limit: int) -> list[str]:
    """The texts of ``path``, one a line, blank lines skipped; one-line errors naming the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"distill.transfer.unlabeled: {p} does not exist. Fix: give a UTF-8 text file with one "
                         f"in-domain text a line.")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise InputError(f"distill.transfer.unlabeled: {p} is not UTF-8 (byte {e.start}). Fix: save it as UTF-8, "
                         f"one text a line.") from None
    texts = [t.strip() for t in lines if t.strip()]
    if not texts:
        raise InputError(f"distill.transfer.unlabeled: {p} holds no text. Fix: one in-domain text a line.")
    return texts[:limit]


def build(train_texts: Sequence[str], cfg, neighbours: dict[str, tuple[str, ...]]) -> TransferSet:
    """The transfer set of ``cfg`` (a recipe.TransferConfig) over ``train_texts``."""
    rng = np.random.default_rng(cfg.seed)
    seen = {" ".join(t.split()) for t in train_texts}
    copies, counts = [], Counter()
    for _ in range(cfg.copies):
        for text in train_texts:
            words = [split_word(w) for w in text.split()]
            if not words:
                continue
            out = []
            for pre, core, suf in words:
                if core is not None:
                    u = rng.random()
                    if u < cfg.mask:
                        core = MASK
                        counts["masked"] += 1
                    elif u < cfg.mask + cfg.replace and core.lower() in neighbours:
                        core = _cased_like(str(rng.choice(neighbours[core.lower()])), core)
                        counts["replaced"] += 1
                out.append((pre, core, suf))
            if rng.random() < cfg.ngram and len(out) > 1:
                n = int(rng.integers(1, min(cfg.ngram_max, len(out)) + 1))
                s = int(rng.integers(0, len(out) - n + 1))
                out = out[s:s + n]
                counts["ngram_cut"] += 1
            key = " ".join(pre + ("\0" if c is MASK else c or "") + suf for pre, c, suf in out)
            if key in seen:
                counts["duplicates_dropped"] += 1
                continue
            seen.add(key)
            copies.append(tuple(out))
    unlabeled = tuple(read_unlabeled(cfg.unlabeled, cfg.max_unlabeled)) if cfg.unlabeled else ()
    record = {"training_texts": len(train_texts), "copies_per_text": cfg.copies, "augmented": len(copies),
              "unlabeled": len(unlabeled), "words_masked": counts["masked"], "words_replaced": counts["replaced"],
              "ngram_cuts": counts["ngram_cut"], "duplicates_dropped": counts["duplicates_dropped"],
              "replacement_vocabulary": len(neighbours),
              "settings": {k: v for k, v in cfg.model_dump(mode="json").items() if k != "unlabeled"}}
    if cfg.unlabeled:
        record["unlabeled_file"] = Path(cfg.unlabeled).name
    return TransferSet(tuple(copies), unlabeled, record)


def unknown_text(tok) -> Optional[str]:
    """A string ``tok`` reads as exactly one unknown token (the student's mask), or None when none of
    :data:`UNKNOWN_CANDIDATES` is (the masked word is then left out of the student's text)."""
    unk = getattr(tok, "unk_id", None)
    hf = getattr(tok, "tok", None)
    if unk is None and hf is not None:
        name = getattr(hf.model, "unk_token", None)
        unk = hf.token_to_id(name) if name else None
    if unk is None:
        return None
    pad = getattr(tok, "pad_id", 0)
    base = [int(i) for i in tok.encode_batch(["a"])[0] if i != pad]
    for cand in UNKNOWN_CANDIDATES:
        ids = [int(i) for i in tok.encode_batch([f"a {cand}"])[0] if i != pad]
        if len(ids) == len(base) + 1 and ids.count(unk) == base.count(unk) + 1:
            return cand
    return None
