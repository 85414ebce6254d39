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
    def __init__(self, vocab: Sequence[str], seq_len: int, lowercase: bool = True, pad_id: int = 0, unk_id: int = 1,
                 origin: str = "fitted"):
        if origin == "fitted" and list(vocab[:2]) != [PAD, UNK]:
            raise ValueError("vocab must start with <pad>, <unk>")
        if not (0 <= pad_id < len(vocab) and 0 <= unk_id < len(vocab)) or pad_id == unk_id:
            raise ValueError(f"pad id {pad_id} and unk id {unk_id} must be two distinct ids of the vocabulary")
        self.vocab = list(vocab)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ValueError("the vocabulary lists a token twice")
        self.seq_len = int(seq_len)
        self.lowercase = bool(lowercase)
        self.pad_id, self.unk_id, self.origin = int(pad_id), int(unk_id), origin
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

    @classmethod
    def from_vocab_file(cls, path, seq_len: int, lowercase: bool = True, pad_token: str | None = None,
                        unk_token: str | None = None) -> "WordTokenizer":
        """The vocabulary a model was trained with: one token a line, id = line number (0-based)."""
        from ..errors import InputError
        from ..files import read_text_capped

        path = Path(path)
        text = read_text_capped(path, 64 << 20, "vocabulary file", InputError)
        vocab = text.split("\n")
        if vocab and vocab[-1] == "":
            vocab.pop()
        vocab = [t.rstrip("\r") for t in vocab]
        fix = "Fix: give one token a line, each once, id = line number."
        seen: dict[str, int] = {}
        for i, t in enumerate(vocab):
            if not t:
                raise InputError(f"{path}: line {i + 1} is empty (a vocabulary line is one token). {fix}")
            if t in seen:
                raise InputError(f"{path}: token {t!r} is on lines {seen[t] + 1} and {i + 1}. {fix}")
            seen[t] = i
        pad, unk = pad_token or PAD, unk_token or UNK
        for field, tok in (("pad_token", pad), ("unk_token", unk)):
            if tok not in seen:
                raise InputError(f"{path}: the {field} {tok!r} is not in the vocabulary. Fix: set tokenizer.{field} "
                                 f"to the token your model was trained with for it.")
        if seen[pad] == seen[unk]:
            raise InputError(f"{path}: pad_token and unk_token are the same token. Fix: name two tokens.")
        return cls(vocab, seq_len, lowercase, seen[pad], seen[unk], origin="vocab_file")

    # ---------------------------------------------------------------------------------------- encode
    def split(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text if isinstance(text, str) else str(text))
        if self.lowercase:
            text = text.lower()
        return self._re.findall(text)

    def encode(self, text: str) -> list[int]:
        ids = [self.index.get(t, self.unk_id) for t in self.split(text)[: self.seq_len]]
        return ids + [self.pad_id] * (self.seq_len - len(ids))

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
                "pad_id": self.pad_id, "unk_id": self.unk_id, "truncation": "keep_start", "padding": "end",
                "vocab_size": self.vocab_size, "vocabulary": self.origin}

    def fingerprint(self) -> str:
        """What the ids depend on (rules and vocabulary): equal fingerprints give equal ids."""
        import hashlib

        return hashlib.sha256(json.dumps([self.config(), self.vocab], ensure_ascii=False).encode()).hexdigest()

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
            pad_id, unk_id, origin = cfg.get("pad_id", 0), cfg.get("unk_id", 1), cfg.get("vocabulary", "fitted")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (pad_id, unk_id)) or origin not in (
                    "fitted", "vocab_file"):
                raise ValueError("'pad_id'/'unk_id' must be integers and 'vocabulary' fitted or vocab_file")
            if (not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab)
                    or not isinstance(seq_len, int) or isinstance(seq_len, bool) or not 1 <= seq_len <= 4096
                    or not isinstance(lower, bool)):
                raise ValueError("'vocab' must be a list of strings, 'seq_len' an integer 1..4096, 'lowercase' a "
                                 "boolean")
            return cls(vocab, seq_len, lower, pad_id, unk_id, origin)
        except (ValueError, KeyError, RecursionError) as e:
            raise ArtifactError(f"{path}: cannot load the tokenizer ({e}). Fix: point at a build directory.") from None


HF_CONFIG = "edgeopt_tokenizer.json"


class HFTokenizer:
    """A Hugging Face ``tokenizers`` JSON file, used as it is, truncated and padded to ``seq_len``. A build
    directory carries it as ``tokenizer.json`` (the standard file, with truncation and padding set, so
    ``tokenizers.Tokenizer.from_file`` reproduces the ids) plus ``edgeopt_tokenizer.json`` (seq_len, pad id)."""

    def __init__(self, tok, seq_len: int, pad_id: int, digest: str):
        self.tok, self.seq_len, self.pad_id, self.digest = tok, int(seq_len), int(pad_id), digest
        pad_token = tok.id_to_token(self.pad_id) or ""
        tok.enable_truncation(self.seq_len)
        tok.enable_padding(length=self.seq_len, pad_id=self.pad_id, pad_token=pad_token)

    @staticmethod
    def _read(path: Path, error):
        """(the tokenizers.Tokenizer in ``path``, the SHA-256 of its text)."""
        import hashlib

        from tokenizers import Tokenizer

        from ..files import read_text_capped

        text = read_text_capped(path, 256 << 20, "tokenizers JSON file", error)
        try:
            tok = Tokenizer.from_str(text)
        except Exception as e:  # tokenizers raises a bare Exception with serde's message
            raise error(f"{path}: not a Hugging Face tokenizers file ({str(e).splitlines()[0][:200]}). Fix: give "
                        f"the tokenizer.json your model was trained with.") from None
        return tok, hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_file(cls, path, seq_len: int, pad_token: str | None = None) -> "HFTokenizer":
        from ..errors import InputError as error

        path = Path(path)
        tok, digest = cls._read(path, error)
        if pad_token is not None:
            pad_id = tok.token_to_id(pad_token)
            if pad_id is None:
                raise error(f"{path}: the pad_token {pad_token!r} is not in its vocabulary. Fix: set "
                            f"tokenizer.pad_token to the padding token your model was trained with.")
        elif tok.padding is not None:
            pad_id = tok.padding["pad_id"]
        else:
            pad_id = next((tok.token_to_id(t) for t in ("[PAD]", "<pad>", "<PAD>") if tok.token_to_id(t) is not None),
                          None)
            if pad_id is None:
                raise error(f"{path}: names no padding token. Fix: set tokenizer.pad_token.")
        return cls(tok, seq_len, pad_id, digest)

    def encode_batch(self, texts):
        import numpy as np

        texts = [t if isinstance(t, str) else str(t) for t in texts]
        enc = self.tok.encode_batch(texts)
        return np.asarray([e.ids for e in enc], dtype=np.int32).reshape(-1, self.seq_len)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def config(self) -> dict:
        return {"type": "huggingface", "format_version": FORMAT_VERSION, "model": type(self.tok.model).__name__,
                "seq_len": self.seq_len, "pad_id": self.pad_id, "truncation": "keep_start", "padding": "end",
                "vocab_size": self.vocab_size, "source_sha256": self.digest}

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(json.dumps([self.config()]).encode()).hexdigest()

    def save(self, directory) -> list[Path]:
        d = Path(directory)
        (d / "tokenizer.json").write_text(self.tok.to_str(pretty=True), encoding="utf-8")
        (d / HF_CONFIG).write_text(json.dumps(self.config(), indent=1), encoding="utf-8")
        return [d / "tokenizer.json", d / HF_CONFIG]

    @classmethod
    def load(cls, directory) -> "HFTokenizer":
        from ..files import read_text_capped

        d = Path(directory)
        try:
            cfg = json.loads(read_text_capped(d / HF_CONFIG, 1 << 20, HF_CONFIG, ArtifactError))
            seq_len, pad_id = cfg["seq_len"], cfg["pad_id"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seq_len, pad_id)):
                raise ValueError("'seq_len' and 'pad_id' must be integers")
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise ArtifactError(f"{d / HF_CONFIG}: cannot load it ({e}). Fix: point at a build directory.") from None
        tok, digest = cls._read(d / "tokenizer.json", ArtifactError)
        return cls(tok, seq_len, pad_id, cfg.get("source_sha256", digest))  # the file it was made from


def load_tokenizer(directory):
    """The tokenizer a build directory carries (edgeopt's word tokenizer, or a Hugging Face one)."""
    d = Path(directory)
    return HFTokenizer.load(d) if (d / HF_CONFIG).is_file() else WordTokenizer.load(d)
