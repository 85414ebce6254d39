"""Pure-Python reference tokenizers (no TensorFlow, no numpy needed), and the standard files that reproduce them.

They are part of the deliverable. A build directory carries ``edgeopt_tokenizer.json`` (edgeopt's config and
vocabulary; :func:`load_tokenizer` on the directory reproduces exactly the ids the model was trained on),
``vocab.txt`` (one token a line, id = line number) and ``tokenizer.json``, a real Hugging Face ``tokenizers``
file built from the same rules (``tokenizers.Tokenizer.from_file`` gives the same ids; tested on the real data).

Two rule sets, written by hand because no library tokenizes exactly as the MediaPipe client does:

- ``word`` (:class:`WordTokenizer`): Unicode NFKC, optional lower-casing, runs of word characters and single
  punctuation marks (``\\w+|[^\\w\\s]``, Unicode-aware), unknown -> ``<unk>``, keep the first ``seq_len``, pad
  with ``<pad>`` at the end.
- ``regex`` (:class:`RegexTokenizer`): what MediaPipe Tasks' regex tokenizer feeds the model, learned by running
  the real client on a probe model whose output is its input ids (``tests/e2e/test_clients.py``): no normalization
  and no case folding; the text ends at its first NUL; tokens are what lies between matches of the RE2 delimiter
  ``[^\\w']+`` (ASCII ``\\w``: every non-ASCII character is a delimiter); ``<PAD>`` 0, ``<UNKNOWN>`` 1; the first
  ``seq_len`` tokens are kept. The client never folds case, so with ``lowercase`` (the default) the vocabulary
  does it: its words are counted and kept in lower case, and the vocabulary file the client reads lists each word
  also in UPPER CASE, Capitalized and Title Case, the other spellings of it the training texts used (``ATMs`` for
  ``atms``), and, for a word with an apostrophe, its four spellings without it (``dont`` for ``don't``), each on the
  id of its word unless that spelling is a word of its own. edgeopt looks tokens up in the same table, so its ids
  and the client's are one. Without ``lowercase`` the vocabulary is case-sensitive (``Hello`` and ``hello`` are two
  words, and ``HELLO`` is unknown).

  ``tokenizer.json`` (a Hugging Face WordLevel file) cannot list several spellings for one id (it keeps one token
  per id), so it lower-cases the text instead. It therefore gives other ids than edgeopt and the client for a
  token in a case none of its spellings has (``hElLo``: <UNKNOWN> for the client, the word for tokenizer.json),
  for an apostrophe word typed without it (``dont``: the word for the client, <UNKNOWN> for tokenizer.json), and
  for the two non-ASCII letters whose lower case is ASCII (U+0130 and the Kelvin sign U+212A).
"""
from __future__ import annotations

import functools
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
CONFIG = "edgeopt_tokenizer.json"  # edgeopt's own config; tokenizer.json is the Hugging Face file
HF_FILE = "tokenizer.json"
GOLDEN = "tokenizer_golden.json"


class WordTokenizer:
    TYPE = "word"
    SPECIALS = (PAD, UNK)

    def __init__(self, vocab: Sequence[str], seq_len: int, lowercase: bool = True, pad_id: int = 0, unk_id: int = 1,
                 origin: str = "fitted"):
        if origin == "fitted" and tuple(vocab[:2]) != self.SPECIALS:
            raise ValueError(f"vocab must start with {', '.join(self.SPECIALS)}")
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
        self.table = self.index  # token -> id, as looked up

    # ---------------------------------------------------------------------------------- construction
    @classmethod
    def fit(cls, texts: Iterable[str], seq_len: int, max_vocab: int = 20000, min_freq: int = 1,
            lowercase: bool = True) -> "WordTokenizer":
        tmp = cls(list(cls.SPECIALS), seq_len, lowercase)
        counts = Counter(tok for t in texts for tok in tmp.split(t))
        words = by_frequency(counts, min_freq, cls.SPECIALS)[: max(0, max_vocab - 2)]
        return cls(list(cls.SPECIALS) + words, seq_len, lowercase)

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
                                 f"(on the command line --{field.replace('_', '-')}) to the token your model was "
                                 f"trained with for it.")
        if seen[pad] == seen[unk]:
            raise InputError(f"{path}: pad_token and unk_token are the same token. Fix: name two tokens.")
        return cls(vocab, seq_len, lowercase, seen[pad], seen[unk], origin="vocab_file")

    # ---------------------------------------------------------------------------------------- encode
    def split(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKC", text if isinstance(text, str) else str(text))
        if self.lowercase:  # capital sigma first: str.lower's final-sigma rule depends on context, Lowercase does not
            text = text.translate(_SIGMA).lower()
        return self._re.findall(text)

    def encode(self, text: str) -> list[int]:
        ids = [self.table.get(t, self.unk_id) for t in self.split(text)[: self.seq_len]]
        return ids + [self.pad_id] * (self.seq_len - len(ids))

    def encode_batch(self, texts: Iterable[str]):
        import numpy as np

        return np.asarray([self.encode(t) for t in texts], dtype=np.int32).reshape(-1, self.seq_len)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    # ------------------------------------------------------------------------------------ save / load
    def config(self) -> dict:
        return {"type": self.TYPE, "format_version": FORMAT_VERSION, "normalization": "NFKC",
                "lowercase": self.lowercase, "pattern": PATTERN, "seq_len": self.seq_len,
                "pad_id": self.pad_id, "unk_id": self.unk_id, "truncation": "keep_start", "padding": "end",
                "vocab_size": self.vocab_size, "vocabulary": self.origin}

    def fingerprint(self) -> str:
        """What the ids depend on (rules and vocabulary): equal fingerprints give equal ids."""
        import hashlib

        return hashlib.sha256(json.dumps([self.config(), self.vocab], ensure_ascii=False).encode()).hexdigest()

    def to_hf(self):
        """The same rules as a Hugging Face ``tokenizers.Tokenizer`` (truncation and padding set)."""
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

        tok = Tokenizer(models.WordLevel(vocab=dict(self.table), unk_token=self.vocab[self.unk_id]))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()] if self.lowercase
                                              else [normalizers.NFKC()])
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(_onig_pattern()), behavior="removed", invert=True)
        tok.enable_truncation(self.seq_len)
        tok.enable_padding(length=self.seq_len, pad_id=self.pad_id, pad_token=self.vocab[self.pad_id])
        return tok

    WRITES_HF = True  # whether a Hugging Face file can reproduce the ids (tokenizer.json)

    def save(self, directory) -> list[Path]:
        d = Path(directory)
        (d / "vocab.txt").write_text("\n".join(self.vocab) + "\n", encoding="utf-8")
        (d / CONFIG).write_text(json.dumps({**self.config(), "vocab": self.vocab}, ensure_ascii=False, indent=1),
                                encoding="utf-8")
        if not self.WRITES_HF:
            return [d / CONFIG, d / "vocab.txt"]
        (d / HF_FILE).write_text(self.to_hf().to_str(pretty=True), encoding="utf-8")
        return [d / CONFIG, d / HF_FILE, d / "vocab.txt"]

    @classmethod
    def load(cls, directory, cfg=None) -> "WordTokenizer":
        """The tokenizer in ``directory`` (``cfg``: its config, when the caller has already parsed it)."""
        path = Path(directory) / CONFIG
        from ..files import read_text_capped

        try:
            if cfg is None:
                cfg = json.loads(read_text_capped(path, 256 << 20, CONFIG, ArtifactError))
            if not isinstance(cfg, dict):
                raise ValueError(f"expected a JSON object, got {type(cfg).__name__}")
            if cfg.get("type") != cls.TYPE or cfg.get("pattern") != cls.config_pattern():
                raise ValueError(f"not an edgeopt {cls.TYPE} tokenizer")
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
            return cls._from_config(cfg, vocab, seq_len, lower, pad_id, unk_id, origin)
        except (ValueError, KeyError, RecursionError) as e:
            raise ArtifactError(f"{path}: cannot load the tokenizer ({e}). Fix: point at a build directory.") from None

    @classmethod
    def _from_config(cls, cfg: dict, *args) -> "WordTokenizer":
        return cls(*args)

    @staticmethod
    def config_pattern() -> str:
        return PATTERN


class RegexTokenizer(WordTokenizer):
    """MediaPipe Tasks' regex tokenizer, reproduced (the module docstring has the rules)."""

    TYPE = "regex"
    SPECIALS = ("<PAD>", "<UNKNOWN>")
    DELIM = r"[^\w']+"  # the RE2 pattern written into the model's metadata; RE2's \w is ASCII

    def __init__(self, vocab, seq_len, lowercase=False, pad_id=0, unk_id=1, origin="fitted", seen=None):
        """``seen``: with ``lowercase``, spellings the training texts used that are none of a word's four (``ATMs``
        for ``atms``), each mapped to its lower-case word."""
        if origin != "fitted" or tuple(vocab[:2]) != self.SPECIALS:
            raise ValueError("the regex tokenizer's vocabulary starts with <PAD>, <UNKNOWN> (the client's names)")
        if "<START>" in vocab:
            raise ValueError("'<START>' would make the client prepend it to every text")
        bad = next((t for t in vocab[2:] if not _ASCII_TOKEN.fullmatch(t)), None)
        if bad is not None:
            raise ValueError(f"token {bad!r} cannot come out of the regex tokenizer")
        if lowercase and any(t != t.lower() for t in vocab[2:]):
            raise ValueError("a case-folding regex vocabulary holds lower-case words (their spellings are derived)")
        super().__init__(vocab, seq_len, False, pad_id, unk_id, origin)
        self.lowercase = bool(lowercase)  # folded by the vocabulary table, never by lower-casing the text
        self._re = re.compile(self.DELIM, re.ASCII)
        self.seen = dict(sorted((seen or {}).items())) if self.lowercase else {}
        bad = next((f for f, w in self.seen.items() if f.lower() != w or w not in self.index
                    or not _ASCII_TOKEN.fullmatch(f)), None)
        if bad is not None:
            raise ValueError(f"spelling {bad!r} is not a spelling of a word of the vocabulary")
        if self.lowercase:
            # every word keeps its own id; then every word its case spellings; then the spellings the training texts
            # used; then the spellings without an apostrophe ("Whats" stays the word "whats" when there is one)
            self.table = dict(self.index)
            for i, w in enumerate(self.vocab[2:], start=2):
                for form in spellings(w):
                    self.table.setdefault(form, i)
            for form, w in self.seen.items():
                self.table.setdefault(form, self.index[w])
            for i, w in enumerate(self.vocab[2:], start=2):
                for form in spellings(w, True):
                    self.table.setdefault(form, i)

    def split(self, text: str) -> list[str]:
        text = (text if isinstance(text, str) else str(text)).split("\0", 1)[0]  # the client reads a C string
        return [t for t in self._re.split(text) if t]

    def config(self) -> dict:
        return {"type": self.TYPE, "format_version": FORMAT_VERSION, "normalization": "none",
                "lowercase": self.lowercase,
                **({"case_folding": "by the vocabulary: each word's lower, UPPER, Capitalized and Title spellings, "
                                    "the other spellings of it the training texts used ('seen_spellings'), and the "
                                    "four spellings without its apostrophes share its id unless a spelling is a word "
                                    "itself (the client's vocabulary file lists them all); the text is not changed",
                    "seen_spellings": self.seen} if self.lowercase else {}),
                "delim_regex_pattern": self.DELIM, "pattern": self.DELIM,
                "regex_flavor": "RE2 (ASCII \\w)", "stop_at_nul": True, "seq_len": self.seq_len,
                "pad_id": self.pad_id, "unk_id": self.unk_id, "truncation": "keep_start", "padding": "end",
                "vocab_size": self.vocab_size, "vocabulary": self.origin}

    @staticmethod
    def config_pattern() -> str:
        return RegexTokenizer.DELIM

    @classmethod
    def _from_config(cls, cfg, *args) -> "RegexTokenizer":
        seen = cfg.get("seen_spellings", {})
        if not isinstance(seen, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in seen.items()):
            raise ValueError("'seen_spellings' must map spellings to words")
        return cls(*args, seen=seen)

    @classmethod
    def fit(cls, texts, seq_len: int, max_vocab: int = 20000, min_freq: int = 1,
            lowercase: bool = False) -> "RegexTokenizer":
        """The most frequent tokens of ``texts`` (ties alphabetical); with ``lowercase`` counted and kept in lower
        case, each standing for its spellings."""
        tmp = cls(list(cls.SPECIALS), seq_len)
        raw = Counter(t for text in texts for t in tmp.split(text))
        counts = Counter()
        for t, n in raw.items():
            counts[t.lower() if lowercase else t] += n
        words = by_frequency(counts, min_freq, cls.SPECIALS)[: max(0, max_vocab - 2)]
        kept = set(words)
        seen = {t: t.lower() for t in raw if lowercase and t.lower() in kept and t not in spellings(t.lower())}
        return cls(list(cls.SPECIALS) + words, seq_len, lowercase, seen=seen)

    @classmethod
    def from_client_vocab(cls, text: str, seq_len: int) -> "RegexTokenizer":
        """The tokenizer a model's MediaPipe vocabulary file (``token id`` lines) describes, when edgeopt wrote it:
        ids numbered 0..n-1 from <PAD>, <UNKNOWN>, each id's first line its word, and either one token per id or
        every word's spellings (a case-folding vocabulary)."""
        table, first = {}, {}
        try:
            for ln in text.splitlines():
                tok, i = ln.rsplit(" ", 1)
                table[tok] = int(i)
                first.setdefault(int(i), tok)
        except ValueError:
            raise ArtifactError("the model's vocab.txt is not 'token id' lines. Fix: predict with the build "
                                "directory.") from None
        if sorted(first) != list(range(len(first))):
            raise ArtifactError("the model's vocab.txt does not number its tokens 0..n-1. Fix: predict with the "
                                "build directory.")
        vocab = [first[i] for i in range(len(first))]
        fold = len(table) > len(first)
        derived = set(vocab) | {s for w in vocab[2:] for d in (False, True) for s in spellings(w, d)} if fold else ()
        seen = {t: vocab[i] for t, i in table.items() if t not in derived and t.lower() == vocab[i]}
        try:
            tok = cls(vocab, seq_len, lowercase=fold, seen=seen)
        except ValueError as e:
            raise ArtifactError(f"the model's vocab.txt is not one edgeopt writes ({e}). Fix: predict with the build "
                                f"directory.") from None
        if tok.table != table:
            raise ArtifactError("the model's vocab.txt gives one id to tokens that are not one word's spellings, which "
                                "edgeopt never writes. Fix: predict with the build directory.")
        return tok

    def client_vocab(self) -> str:
        """The vocabulary file MediaPipe reads (``token id`` lines)."""
        return "".join(f"{t} {i}\n" for t, i in self.table.items())

    def to_hf(self):
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

        tok = Tokenizer(models.WordLevel(vocab=dict(self.index), unk_token=self.vocab[self.unk_id]))
        nul = normalizers.Replace(Regex("\u0000[\\s\\S]*"), "")
        # one token per id: a case-folding vocabulary lower-cases the text instead (the module docstring says where
        # that gives other ids than the vocabulary's spellings)
        tok.normalizer = normalizers.Sequence([nul, normalizers.Lowercase()]) if self.lowercase else nul
        tok.pre_tokenizer = pre_tokenizers.Split(Regex("[^A-Za-z0-9_']+"), behavior="removed")
        tok.enable_truncation(self.seq_len)
        tok.enable_padding(length=self.seq_len, pad_id=self.pad_id, pad_token=self.vocab[self.pad_id])
        return tok


def by_frequency(counts: Counter, min_freq: int, exclude) -> list[str]:
    """The words counted at least ``min_freq`` times, ``exclude`` left out, most frequent first, ties alphabetical
    (deterministic: the same vocabulary every build)."""
    return sorted((t for t, c in counts.items() if c >= min_freq and t not in exclude), key=lambda t: (-counts[t], t))


def spellings(word: str, apostrophes_dropped: bool = False) -> list[str]:
    """How people type a lower-case ``word``: lower, UPPER, Capitalized and Title (``don'T``); or, with
    ``apostrophes_dropped``, the same four spellings without its apostrophes (none for a word without one)."""
    if apostrophes_dropped:
        word = word.replace("'", "") if "'" in word else ""
    return [s for s in (word, word.upper(), word.capitalize(), word.title())] if word else []


def _token_key(word: str, lowercase: bool) -> str:
    """A given token as looked up: NFKC-normalized, lower-cased when asked (capital sigma first, as ``split``)."""
    w = unicodedata.normalize("NFKC", word)
    return w.translate(_SIGMA).lower() if lowercase else w


CASES = ("lower", "Capitalized", "ALL CAPS", "no letter")  # case_class's values, in id order


def case_class(word: str) -> int:
    """A token's case (NFKC-normalized, before lower-casing), an index of :data:`CASES`: what a tagger with
    ``case_ids`` gets next to a lower-cased word (pretrained vectors are uncased; capitals mark names)."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 3
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return 2
    return 1 if letters[0].isupper() else 0


def word_shape(word: str) -> str:
    """The shape class of a token (NFKC-normalized, case kept): the id an unknown token of a tagger gets."""
    low = word.lower()
    if low.startswith(("http://", "https://", "www.")):
        return "<unk:url>"
    if len(word) > 1 and word[0] in "@#":
        return f"<unk:{word[0]}>"
    if any(c.isdigit() for c in word):
        return "<unk:0>"
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return "<unk:.>"
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return "<unk:XX>"
    return "<unk:Xx>" if letters[0].isupper() else "<unk:x>"


class TokenTokenizer(WordTokenizer):
    """Token classification's tokenizer: the words are the dataset's own tokens (CoNLL), split at whitespace and
    never split further (a tag belongs to each), each NFKC-normalized and optionally lower-cased, then looked up as
    the word tokenizer does. A sentence's text is its tokens joined by spaces, so ``encode`` gives one id per given
    token.

    An unknown token gets the id of its shape (:func:`word_shape`: URL, @mention, #hashtag, has a digit, no letter,
    ALL CAPS, Capitalized, lower), judged on the token before lower-casing: the entities of WNUT-17's test split are
    mostly words never seen in training, and their shape is what a tagger can still see (on WNUT-17 it doubled a
    dilated-CNN tagger's test entity F1, 0.078 to 0.163, in one seeded run each). A Hugging Face WordLevel file has
    one unknown token and cannot express this, so a tagger's build carries ``edgeopt_tokenizer.json``, ``vocab.txt``
    and ``tokenizer_golden.json`` (text -> ids vectors), not ``tokenizer.json``."""

    TYPE = "tokens"
    WRITES_HF = False  # a WordLevel file has one unknown token: no tokenizer.json
    SHAPES = ("<unk:url>", "<unk:@>", "<unk:#>", "<unk:0>", "<unk:.>", "<unk:XX>", "<unk:Xx>", "<unk:x>")

    def __init__(self, vocab, seq_len, lowercase=True, pad_id=0, unk_id=1, origin="fitted", case_ids=False):
        super().__init__(vocab, seq_len, lowercase, pad_id, unk_id, origin)
        if tuple(self.vocab[2:2 + len(self.SHAPES)]) != self.SHAPES:
            raise ValueError(f"the vocabulary must list the shape tokens {', '.join(self.SHAPES)} after "
                             f"{', '.join(self.SPECIALS)}")
        self.case_ids = bool(case_ids)

    @classmethod
    def _from_config(cls, cfg, *args) -> "TokenTokenizer":
        case = cfg.get("case_ids", False)
        if not isinstance(case, bool):
            raise ValueError("'case_ids' must be a boolean")
        return cls(*args, case_ids=case)

    @classmethod
    def fit(cls, texts, seq_len: int, max_vocab: int = 20000, min_freq: int = 1,
            lowercase: bool = True, extra_words=(), case_ids: bool = False) -> "TokenTokenizer":
        """The training tokens seen ``min_freq`` times, by frequency, then ``extra_words`` (a pretrained
        embedding's words, in their order) not already there, up to ``max_vocab`` in all."""
        counts = Counter(_token_key(w, lowercase) for text in texts for w in str(text).split())
        fixed = list(cls.SPECIALS) + list(cls.SHAPES)
        vocab = fixed + by_frequency(counts, min_freq, fixed)
        seen = set(vocab)
        for w in extra_words:
            key = _token_key(w, lowercase)
            if key not in seen and key.strip() and not key.split()[1:]:
                seen.add(key)
                vocab.append(key)
        return cls(vocab[:max(len(fixed), max_vocab)], seq_len, lowercase, case_ids=case_ids)

    def split(self, text: str) -> list[str]:
        return [_token_key(w, self.lowercase) for w in str(text).split()]

    def encode(self, text: str) -> list[int]:
        ids = []
        for w in str(text).split()[: self.seq_len]:
            key = _token_key(w, self.lowercase)
            raw = unicodedata.normalize("NFKC", w)
            i = self.table[key] if key in self.table else self.table[word_shape(raw)]
            ids.append(i * len(CASES) + case_class(raw) if self.case_ids else i)
        return ids + [self.pad_id] * (self.seq_len - len(ids))

    @property
    def known_words(self) -> int:
        return self.vocab_size - len(self.SPECIALS) - len(self.SHAPES)

    def config(self) -> dict:
        return {**super().config(), "type": self.TYPE, "pattern": self.config_pattern(),
                "split": "whitespace; each token normalized (NFKC, lowercase if set) and never split further",
                "unknown": "the id of the token's shape (before lower-casing), first rule that holds: " + "; ".join((
                    "<unk:url> starts with http://, https:// or www.", "<unk:@> / <unk:#> @ or # and more",
                    "<unk:0> has a digit", "<unk:.> has no letter", "<unk:XX> two or more letters, all upper case",
                    "<unk:Xx> first letter upper case", "<unk:x> otherwise")),
                "case_ids": self.case_ids,
                **({"ids": f"{len(CASES)} x the word's id (its line in vocab.txt) + the token's case class (before "
                           f"lower-casing): " + ", ".join(f"{i} {c}" for i, c in enumerate(CASES))}
                   if self.case_ids else {})}

    @staticmethod
    def config_pattern() -> str:
        return "whitespace"


_ASCII_TOKEN = re.compile(r"[A-Za-z0-9_']+")
_SIGMA = {0x3A3: 0x3C3}


def _ranges(pred) -> str:
    """An Oniguruma character class body listing the code points for which ``pred`` holds."""
    out, start = [], None
    for cp in range(0x110001):
        inside = cp <= 0x10FFFF and pred(chr(cp))
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            out.append(f"\\x{{{start:X}}}" + (f"-\\x{{{cp - 1:X}}}" if cp - 1 > start else ""))
            start = None
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _onig_pattern() -> str:
    """PATTERN with Python's own \\w and \\s spelled out as code point ranges: Oniguruma's classes differ (it
    counts combining marks as word characters, Python does not), so the tokenizers file would split otherwise."""
    word = re.compile(r"\w")
    space = re.compile(r"\s")
    w = _ranges(lambda c: word.match(c) is not None)
    ws = _ranges(lambda c: word.match(c) is not None or space.match(c) is not None)
    return f"[{w}]+|[^{ws}]"


def named_pad_id(tok) -> int | None:
    """A ``tokenizers.Tokenizer``'s padding id: its padding settings', else the id of ``[PAD]``, ``<pad>`` or
    ``<PAD>`` in its vocabulary, else None."""
    if tok.padding is not None:
        return int(tok.padding["pad_id"])
    return next((tok.token_to_id(t) for t in ("[PAD]", "<pad>", "<PAD>") if tok.token_to_id(t) is not None), None)


class HFTokenizer:
    """A Hugging Face ``tokenizers`` JSON file, used as it is, truncated and padded to ``seq_len``. A build
    directory carries it as ``tokenizer.json`` (the standard file, with truncation and padding set, so
    ``tokenizers.Tokenizer.from_file`` reproduces the ids) plus ``edgeopt_tokenizer.json`` (seq_len, pad id)."""

    TYPE = "huggingface"

    def __init__(self, tok, seq_len: int, pad_id: int, digest: str, origin: str = "file"):
        # origin: "file" (the user's tokenizer.json) or "textvectorization" (a model's own layer, sources/textvec.py)
        self.tok, self.seq_len, self.pad_id, self.digest, self.origin = tok, int(seq_len), int(pad_id), digest, origin
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
        else:
            pad_id = named_pad_id(tok)
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
                "vocab_size": self.vocab_size, "source_sha256": self.digest,
                **({"origin": self.origin} if self.origin != "file" else {})}

    def fingerprint(self) -> str:
        import hashlib

        return hashlib.sha256(json.dumps([self.config()]).encode()).hexdigest()

    def save(self, directory) -> list[Path]:
        d = Path(directory)
        (d / "tokenizer.json").write_text(self.tok.to_str(pretty=True), encoding="utf-8")
        (d / CONFIG).write_text(json.dumps(self.config(), indent=1), encoding="utf-8")
        return [d / "tokenizer.json", d / CONFIG]

    @classmethod
    def load(cls, directory) -> "HFTokenizer":
        from ..files import read_text_capped

        d = Path(directory)
        try:
            cfg = json.loads(read_text_capped(d / CONFIG, 1 << 20, CONFIG, ArtifactError))
            seq_len, pad_id = cfg["seq_len"], cfg["pad_id"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seq_len, pad_id)):
                raise ValueError("'seq_len' and 'pad_id' must be integers")
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            raise ArtifactError(f"{d / CONFIG}: cannot load it ({e}). Fix: point at a build directory.") from None
        tok, digest = cls._read(d / "tokenizer.json", ArtifactError)
        origin = cfg.get("origin") if cfg.get("origin") in ("file", "textvectorization") else "file"
        return cls(tok, seq_len, pad_id, cfg.get("source_sha256", digest), origin)  # the file it was made from


def load_tokenizer(directory):
    """The tokenizer a build directory carries (edgeopt's word tokenizer, or a Hugging Face one)."""
    from ..files import read_text_capped

    d = Path(directory)
    try:
        cfg = json.loads(read_text_capped(d / CONFIG, 256 << 20, CONFIG, ArtifactError))
    except (ValueError, RecursionError) as e:
        raise ArtifactError(f"{d / CONFIG}: not JSON ({e}). Fix: point at a build directory.") from None
    if not isinstance(cfg, dict):
        raise ArtifactError(f"{d / CONFIG}: expected a JSON object, got {type(cfg).__name__}. Fix: point at a build "
                            f"directory.")
    kind = cfg.get("type")
    cls = {"word": WordTokenizer, "regex": RegexTokenizer, "tokens": TokenTokenizer,
           "huggingface": HFTokenizer}.get(kind)
    if cls is None:
        raise ArtifactError(f"{d / CONFIG}: not an edgeopt tokenizer config (type {kind!r}). Fix: point at a build "
                            f"directory.")
    # the word and regex configs hold the vocabulary: parsed once, here; the Hugging Face one is read by its loader
    return HFTokenizer.load(d) if cls is HFTokenizer else cls.load(d, cfg)


GOLDEN_EDGE_CASES = (
    "Hello, World!", "HELLO world", "hElLo wOrLd", "don't 'quote' me", "it's 10:30 -- or 10.30?", "café CAFÉ Ünïcödé",
    "İstanbul ΣΟΦΙΑ ǅ ﬁne ½", "tabs\tand\nnewlines", "a_b snake_case", "", "   ", "stops here\u0000after the NUL",
    "emoji 🙂 and 中文", "word " * 300,
)


def golden(tok, texts: Iterable[str]) -> list[dict]:
    """Text-to-ids vectors for anyone porting the tokenizer: the given texts plus fixed edge cases."""
    texts = list(texts) + list(GOLDEN_EDGE_CASES)
    ids = tok.encode_batch(texts)
    return [{"text": t, "ids": [int(i) for i in row]} for t, row in zip(texts, ids)]


def write_golden(path, tok, ds, n: int = 50) -> None:
    """``tokenizer_golden.json``: the tokenizer's config and ids of the first ``n`` test texts and the edge cases."""
    Path(path).write_text(json.dumps({"tokenizer": tok.config(), "note": "ids of each text as the model was trained "
                                      "and evaluated on; a port of the tokenizer must reproduce every row",
                                      "vectors": golden(tok, list(ds.test.texts)[:n])}, ensure_ascii=False,
                                     indent=1), encoding="utf-8")
