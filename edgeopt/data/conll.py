"""Token-classification data in CoNLL form, and entity-level scores over BIO tags.

A CoNLL file has one token a line with its tag in the last whitespace-separated column, a blank (or
whitespace-only) line between sentences and, in some corpora, ``-DOCSTART-`` lines between documents (read as
sentence boundaries). Tags are BIO (IOB2): ``O``, ``B-TYPE``, ``I-TYPE``.

Entity scores use the strict matching of IOB2 (what seqeval's ``mode="strict"`` does): an entity is a ``B-TYPE``
followed by ``I-TYPE`` tags of the same type; an ``I-`` tag that does not continue an entity of its type starts
nothing. A predicted entity counts only when its type, start and end all equal a gold entity's. Micro precision,
recall and F1 over all entities, and the same per type.

Written here rather than taken from seqeval: seqeval (1.2.2, 2020) ships only a source distribution, whose build
at install time fetches an unpinned setuptools, which the exact, hashed lock file of this project cannot pin;
strict IOB2 span matching is the few lines below, checked against a hand-worked example in the tests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

TAG = re.compile(r"^(O|[BI]-[^\s]+)$")
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]


def read_conll(path, max_bytes: int = 200_000_000) -> list[Sentence]:
    """The sentences of a CoNLL file. A malformed line is a one-line error naming the file, the line and the fix."""
    from ..files import read_capped

    path = Path(path)
    raw = read_capped(path, max_bytes, "CoNLL file", InputError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start}). Fix: save the CoNLL file as UTF-8.") from None
    out: list[Sentence] = []
    toks: list[str] = []
    tags: list[str] = []

    def flush():
        if toks:
            out.append(Sentence(tuple(toks), tuple(tags)))
            toks.clear()
            tags.clear()

    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            flush()
            continue
        cols = line.split()
        if cols[0] == DOCSTART:
            flush()
            continue
        if len(cols) < 2:
            raise InputError(f"{path}:{n}: line {line.strip()[:40]!r} has one column; a CoNLL line is a token and "
                             f"its tag. Fix: add the tag (O, B-TYPE or I-TYPE) after a tab, or leave the line blank "
                             f"between sentences.")
        tag = cols[-1]
        if not TAG.match(tag):
            raise InputError(f"{path}:{n}: tag {tag!r} is not BIO. Fix: use O, B-TYPE or I-TYPE (IOB2) in the last "
                             f"column.")
        toks.append(cols[0])
        tags.append(tag)
    flush()
    if not out:
        raise InputError(f"{path}: no sentences. Fix: one token and its tag a line, a blank line between sentences.")
    return out


def entities(tags) -> set[tuple[str, int, int]]:
    """The entities of one tag sequence, strict IOB2: (type, first token, last token + 1)."""
    spans, start, kind = set(), None, None
    for i, t in enumerate(list(tags) + ["O"]):
        if start is not None and not (t.startswith("I-") and t[2:] == kind):
            spans.add((kind, start, i))
            start, kind = None, None
        if t.startswith("B-"):
            start, kind = i, t[2:]
    return spans


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 6), "recall": round(r, 6), "f1": round(f, 6), "support": n_gold,
            "predicted": n_pred, "correct": tp}


def entity_scores(gold: list, pred: list) -> dict:
    """Micro and per-type precision, recall and F1 over exact entity spans, and token accuracy as a secondary
    figure. ``gold`` and ``pred`` are lists of tag sequences, one per sentence, without padding (a prediction
    longer than its sentence is cut to it)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    g_all, p_all = set(), set()
    tokens = right = 0
    for s, (g, p) in enumerate(zip(gold, pred)):
        p = list(p)[:len(g)]
        if len(p) < len(g):
            raise ValueError(f"sentence {s}: {len(g)} gold tags but {len(p)} predicted")
        g_all |= {(s, *e) for e in entities(g)}
        p_all |= {(s, *e) for e in entities(p)}
        tokens += len(g)
        right += sum(a == b for a, b in zip(g, p))
    types = sorted({e[1] for e in g_all | p_all})
    per = {t: _prf(len({e for e in g_all & p_all if e[1] == t}), len({e for e in p_all if e[1] == t}),
                   len({e for e in g_all if e[1] == t})) for t in types}
    return {"micro": _prf(len(g_all & p_all), len(p_all), len(g_all)), "per_type": per,
            "token_accuracy": round(right / tokens, 6) if tokens else 0.0, "sentences": len(gold), "tokens": tokens}


def split_scores(pred_ids, gold_ids, names) -> dict:
    """Entity scores of a tagger's predicted tag ids (one padded row per sentence) against every sentence's full
    gold tag ids: tokens past the row's length are predicted ``O``, so their gold entities count as missed."""
    gold, pred = [], []
    for row, tags in zip(pred_ids, gold_ids):
        n = len(tags)
        gold.append([names[t] for t in tags])
        pred.append([names[int(t)] for t in list(row)[:n]] + ["O"] * max(0, n - len(row)))
    return entity_scores(gold, pred)


def padded_tags(gold_ids, seq_len: int, pad: int = -1):
    """(sentences, seq_len) tag ids, ``pad`` past each sentence's end; tags past seq_len are cut."""
    import numpy as np

    y = np.full((len(gold_ids), seq_len), pad, np.int32)
    for i, tags in enumerate(gold_ids):
        tags = list(tags)[:seq_len]
        y[i, :len(tags)] = tags
    return y
