"""Pure-Python reference word tokenizer (no TensorFlow, no numpy needed).

It is part of the deliverable: a build directory carries ``tokenizer.json`` (config + vocabulary) and
``vocab.txt``, and :meth:`WordTokenizer.load` on that directory reproduces exactly the ids the model was
trained on. Rules, in order: Unicode NFKC normalization, optional lower-casing, split into runs of word
characters and single punctuation marks (``\\w+|[^\\w\\s]``, Unicode-aware), map to ids (unknown -> 1), truncate
at ``seq_len`` keeping the beginning, pad with 0 at the end.
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import ArtifactError

PAD, UNK = "<pad>", "<unk>"
PATTERN = r"\w+|[^\w\s]"
FORMAT_VERSION = 1


class WordTokenizer:
    def __init__(self, vocab: Sequence[str], seq_len: int, lowercase: bool = True):
        if list(vocab[:2]) != [PAD, UNK]:
            raise ValueError("vocab must start with <pad>, <unk>")
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.seq_len = int(seq_len)
        self.lowercase = bool(lowercase)
        self._re = re.compile(PATTERN)

    # ---------------------------------------------------------------------------------- construction
    @classmethod
    def fit(cls, texts: Iterable[str], seq_len: int, max_vocab: int = 20000, min_freq: int = 1,
            lowercase: bool = True) -> "WordTokenizer":
        tmp = cls([PAD, UNK], seq_len, lowercase)
        counts = Counter(tok for t in texts for tok in tmp.split(t))
        ranked = sorted((c, t) for t, c in counts.items() if c >= min_freq)
        ranked.sort(key=lambda ct: (-ct[0], ct[1]))  # by frequency, ties alphabetical: deterministic
        words = [t for _, t in ranked[: max(0, max_vocab - 2)]]
        return cls([PAD, UNK] + words, seq_len, lowercase)

    # ---------------------------------------------------------------------------------------- encode
    def split(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text if isinstance(text, str) else str(text))
        if self.lowercase:
            text = text.lower()
        return self._re.findall(text)

    def encode(self, text: str) -> list[int]:
        ids = [self.index.get(t, 1) for t in self.split(text)[: self.seq_len]]
        return ids + [0] * (self.seq_len - len(ids))

    def encode_batch(self, texts: Iterable[str]):
        import numpy as np

        return np.asarray([self.encode(t) for t in texts], dtype=np.int32).reshape(-1, self.seq_len)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------------------------ save / load
    def config(self) -> dict:
        return {"type": "word", "format_version": FORMAT_VERSION, "normalization": "NFKC",
                "lowercase": self.lowercase, "pattern": PATTERN, "seq_len": self.seq_len,
                "pad_id": 0, "unk_id": 1, "truncation": "keep_start", "padding": "end",
                "vocab_size": self.vocab_size}

    def save(self, directory) -> list[Path]:
        d = Path(directory)
        (d / "vocab.txt").write_text("\n".join(self.vocab) + "\n", encoding="utf-8")
        (d / "tokenizer.json").write_text(json.dumps({**self.config(), "vocab": self.vocab}, ensure_ascii=False,
                                                     indent=1), encoding="utf-8")
        return [d / "tokenizer.json", d / "vocab.txt"]

    @classmethod
    def load(cls, directory) -> "WordTokenizer":
        path = Path(directory) / "tokenizer.json"
        from ..files import read_text_capped

        try:
            cfg = json.loads(read_text_capped(path, 256 << 20, "tokenizer.json", ArtifactError))
            if not isinstance(cfg, dict):
                raise ValueError(f"expected a JSON object, got {type(cfg).__name__}")
            if cfg.get("type") != "word" or cfg.get("pattern") != PATTERN:
                raise ValueError("not an edgeopt word tokenizer")
            vocab, seq_len, lower = cfg["vocab"], cfg["seq_len"], cfg["lowercase"]
            if (not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab)
                    or not isinstance(seq_len, int) or isinstance(seq_len, bool) or not 1 <= seq_len <= 4096
                    or not isinstance(lower, bool)):
                raise ValueError("'vocab' must be a list of strings, 'seq_len' an integer 1..4096, 'lowercase' a "
                                 "boolean")
            return cls(vocab, seq_len, lower)
        except (ValueError, KeyError, RecursionError) as e:
            raise ArtifactError(f"{path}: cannot load the tokenizer ({e}). Fix: point at a build directory.") from None
