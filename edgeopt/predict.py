"""``edgeopt predict``: texts through an artifact, top-k labels with scores, without TensorFlow.

The tokenizer and labels come from beside the artifact (a build directory: ``edgeopt_tokenizer.json``,
``labels.txt``, and ``manifest.json``, whose SHA-256 records must name the very files found there) or, for a
``.tflite`` on its own, from inside it: the TFLite metadata MediaPipe reads (its regex tokenizer and vocabulary,
its labels), read by MediaPipe's own metadata displayer in the writer environment. Whatever the source, the
tokenizer's sequence length must be the model's input length and the labels as many as its outputs, and when both
sources exist they must agree: an artifact is never fed another model's ids or named with another model's labels.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ArtifactError, InputError


@dataclass
class Predictor:
    artifact: Path
    session: object
    tok: object
    labels: list[str]
    source: str  # where the tokenizer and labels came from
    tagger: bool = False  # token classification: a row of tag scores per token, labels are BIO tags

    def scores(self, texts: list[str]) -> np.ndarray:
        out = np.asarray(self.session.run(self.tok.encode_batch(texts)), np.float64)
        rows_are_probs = (out >= 0).all() and (out <= 1).all() and np.allclose(out.sum(-1), 1, atol=1e-3)
        if rows_are_probs:
            return out
        from .validate.accuracy import softmax

        return softmax(out)  # logits -> probabilities

    def tag(self, texts: list[str]) -> list[dict]:
        """A tagger's tags per token (the text split at whitespace, as its tokenizer splits it) and the entities
        they form (strict BIO), each with its tokens' mean probability. Tokens past the model's length are tagged
        O and the row says it was truncated."""
        from .data.conll import entities

        probs = self.scores(texts)
        res = []
        for text, row in zip(texts, probs):
            words = str(text).split()
            n = min(len(words), row.shape[0])
            best = row[:n].argmax(-1)
            tags = [self.labels[i] for i in best] + ["O"] * (len(words) - n)
            ents = []
            for kind, s, e in sorted(entities(tags), key=lambda x: x[1]):
                ents.append({"type": kind, "text": " ".join(words[s:e]), "start": s, "end": e,
                             "score": round(float(row[np.arange(s, e), best[s:e]].mean()), 6)})
            res.append({"text": text, "tokens": words, "tags": tags, "entities": ents,
                        "truncated": len(words) > n})
        return res

    def predict(self, texts: list[str], top_k: int = 3) -> list[dict]:
        if self.tagger:
            return self.tag(texts)
        probs = self.scores(texts)
        k = min(top_k, probs.shape[1])
        res = []
        for text, row in zip(texts, probs):
            order = np.argsort(-row, kind="stable")[:k]
            res.append({"text": text, "top": [{"label": self.labels[i], "index": int(i),
                                                "score": round(float(row[i]), 6)} for i in order]})
        return res


def _resolve(path: Path) -> tuple[Path, bool]:
    """(the artifact, whether a build directory's manifest vouches for the files beside it), every file of that
    build directory checked against its manifest first (builddir.check_build_dir)."""
    from .builddir import build_of, check_build_dir

    if path.is_dir():
        return path / check_build_dir(path).metrics.artifact, True
    if not path.is_file():
        raise InputError(f"{path}: no such file or directory. Fix: give a build directory or a .tflite/.onnx file.")
    return path, build_of(path) is not None


def _embedded(artifact: Path, quiet: bool) -> tuple[object, list[str]] | None:
    """(tokenizer, labels) from the .tflite's metadata, or None when it carries no MediaPipe text metadata."""
    import zipfile

    from .data.tokenizer import RegexTokenizer
    from .files import check_archive

    try:
        with zipfile.ZipFile(artifact) as z:  # associated files are a zip appended to the flatbuffer
            check_archive(z, str(artifact), InputError, max_total=256 << 20)  # a vocabulary and labels
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError):
        return None
    if not {"labels.txt", "vocab.txt"} <= names:
        return None
    from .clients.mediapipe import read_metadata

    md = read_metadata(artifact, quiet=True)
    inp = md["metadata"]["subgraph_metadata"][0]["input_tensor_metadata"][0]
    unit = (inp.get("process_units") or [{}])[0]
    if unit.get("options_type") != "RegexTokenizerOptions":
        return None
    pattern = unit["options"]["delim_regex_pattern"]
    if pattern != RegexTokenizer.DELIM:
        raise InputError(f"{artifact}: its regex tokenizer splits on {pattern!r}, not {RegexTokenizer.DELIM!r}; "
                         f"edgeopt reproduces only its own. Fix: run it with MediaPipe's TextClassifier.")
    return md["contents"]["vocab.txt"], md["contents"]["labels.txt"].splitlines()


def load(path, quiet: bool = True) -> Predictor:
    from . import runtimes
    from .data.tokenizer import CONFIG, RegexTokenizer, load_tokenizer
    from .files import read_text_capped

    artifact, manifest = _resolve(Path(path))
    if artifact.suffix.lower() not in (".tflite", ".onnx"):
        raise InputError(f"{artifact}: not a .tflite or .onnx file. Fix: give a model file or a build directory.")
    if not artifact.is_file():
        raise ArtifactError(f"{artifact}: the build's deployed artifact is missing. Fix: rebuild.")
    sess = runtimes.load(artifact, runtimes.RuntimeOptions(threads=1))
    seq_len = int(sess.input_shape[1])
    d = artifact.parent
    beside = (d / CONFIG).is_file()
    # the metadata is read when it is the source, or when no manifest vouches for the files beside the artifact
    embedded = (_embedded(artifact, quiet) if artifact.suffix.lower() == ".tflite" and (not beside or not manifest)
                else None)
    if beside:
        tok = load_tokenizer(d)
        if not (d / "labels.txt").is_file():
            raise ArtifactError(f"{d / 'labels.txt'}: missing beside {CONFIG}. Fix: rebuild.")
        labels = read_text_capped(d / "labels.txt", 16 << 20, "labels file", InputError).splitlines()
        source = f"{CONFIG} and labels.txt beside the artifact"
        if embedded is not None:
            vocab, emb_labels = embedded
            if emb_labels != labels or not isinstance(tok, RegexTokenizer) or vocab != tok.client_vocab():
                raise InputError(f"{artifact}: the labels or vocabulary inside it differ from {d / CONFIG} and "
                                 f"labels.txt beside it; they do not belong together. Fix: use the files of one "
                                 f"build.")
    elif embedded is not None:
        vocab, labels = embedded
        tok = RegexTokenizer.from_client_vocab(vocab, seq_len)
        source = "the model's metadata (MediaPipe regex tokenizer, vocab.txt, labels.txt)"
    else:
        raise InputError(f"{artifact}: no tokenizer beside it ({CONFIG}) and no tokenizer metadata inside it. Fix: "
                         f"predict with the build directory edgeopt wrote.")
    if tok.seq_len != seq_len:
        raise InputError(f"{artifact}: takes {seq_len} token ids, but its tokenizer makes {tok.seq_len}; they do "
                         f"not belong together. Fix: use the tokenizer of the build that made it.")
    shape = np.asarray(sess.run(tok.encode_batch([""]))).shape
    n_out = int(shape[-1])
    if len(labels) != n_out:
        raise InputError(f"{artifact}: outputs {n_out} scores, but its labels list {len(labels)}; they do not "
                         f"belong together. Fix: use the labels.txt of the build that made it.")
    return Predictor(artifact, sess, tok, labels, source, tagger=len(shape) == 3)


def format_predictions(rows: list[dict]) -> str:
    out = []
    for r in rows:
        out.append(json.dumps(r["text"], ensure_ascii=False)[:120])
        if "entities" in r:  # a tagger
            out += [f"  {e['score']:.4f}  {e['type']}: {e['text']} (tokens {e['start']}-{e['end'] - 1})"
                    for e in r["entities"]] or ["  no entities"]
            if r["truncated"]:
                out.append("  (tokens past the model's length were not tagged)")
            continue
        out += [f"  {t['score']:.4f}  {t['label']}" for t in r["top"]]
    return "\n".join(out)
