"""MediaPipe Tasks as edgeopt's last check: the metadata an app's TextClassifier reads, written into the
``.tflite`` by MediaPipe's own writer, and the real client run over the test split.

Both run in environments of their own (``env.py`` says why), as subprocesses fed JSON: ``_writer.py`` and
``_client.py`` beside this module. The route: mediapipe 0.10.21's writer is the only maintained writer that works
(1.2.2's lacks its compiled half; tflite-support's is archived and pins protobuf < 4); 1.2.2's TextClassifier is
the check because it is what apps install now.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ..console import working
from ..errors import ClientError
from .env import ensure, status

AGREEMENT_MIN = 0.999
SCORE_TOL = 1e-6  # the client must return the very scores edgeopt's run of the same file gives
SHOWN_DISAGREEMENTS = 20


def _call(env_name: str, script: str, request: dict, what: str, quiet: bool, timeout: float = 3600) -> object:
    py = ensure(env_name, quiet)
    try:
        p = subprocess.run([str(py), "-I", str(Path(__file__).with_name(script))], input=json.dumps(request),
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClientError(f"{what}: the {env_name} process ran past {timeout:.0f} s.") from None
    if p.returncode != 0:
        err = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith(("W0000", "I0000", "INFO:"))]
        raise ClientError(f"{what}: {env_name} failed (exit {p.returncode}): {' '.join(err[-3:])[-400:]}")
    return json.loads(p.stdout)


def client_compatible(tok) -> bool:
    """True when MediaPipe's regex tokenizer feeds the model exactly the ids it was trained on."""
    return getattr(tok, "TYPE", None) == "regex"


def client_gap(tok) -> str | None:
    """Why MediaPipe's TextClassifier cannot give the model its ids (None when it can): what the app does instead
    follows from it (report.py)."""
    kind = getattr(tok, "TYPE", None)
    if kind == "regex":
        return None
    if kind == "huggingface" and getattr(tok, "origin", "file") == "textvectorization":
        return ("its ids come from the model's own TextVectorization rules (ASCII lower-casing, punctuation "
                "stripped, split on whitespace, its vocabulary), which MediaPipe's tokenizers (a regex split, "
                "WordPiece or SentencePiece for BERT-style three-input models) do not reproduce")
    if kind == "huggingface":
        return (f"its ids come from its Hugging Face tokenizer ({tok.config().get('model')}); MediaPipe's "
                f"TextClassifier runs such tokenizers only for BERT-style models with three inputs (ids, mask, "
                f"segment), and this file takes one")
    if getattr(tok, "origin", "fitted") == "vocab_file":
        return ("its ids come from its own vocabulary file split by edgeopt's word rules (NFKC, lower-case, "
                "punctuation kept as tokens), which MediaPipe's regex tokenizer does not reproduce")
    return ("its ids come from edgeopt's word tokenizer (NFKC, lower-case, punctuation kept as tokens), which "
            "MediaPipe's regex tokenizer does not reproduce; rebuild with `tokenizer: {kind: regex}` (what "
            "`--csv` uses) to make the file MediaPipe-ready")


def wordpiece_vocab(tok) -> list[str] | None:
    """The vocabulary of a Hugging Face WordPiece tokenizer, by id (None for any other tokenizer)."""
    if getattr(tok, "TYPE", None) != "huggingface" or tok.config().get("model") != "WordPiece":
        return None
    by_id = {i: t for t, i in tok.tok.get_vocab(with_added_tokens=True).items()}
    if sorted(by_id) != list(range(len(by_id))):
        return None
    return [by_id[i] for i in range(len(by_id))]


def metadata_vocab(tok) -> str | None:
    """The vocabulary file the model metadata carries: MediaPipe's regex tokenizer's, or a WordPiece vocabulary;
    None for a tokenizer whose ids the metadata only describes."""
    if client_compatible(tok):
        return tok.client_vocab()
    wordpiece = wordpiece_vocab(tok)
    return None if wordpiece is None else "".join(t + "\n" for t in wordpiece)


def write_metadata(paths: list[Path], tok, labels: list[str], *, name: str, version: str, description: str,
                   quiet: bool = False) -> dict:
    """Populate each ``.tflite`` in ``paths`` (in place) with model metadata: name, version, description, the
    input (MediaPipe's regex tokenizer with its vocabulary file, or token ids from edgeopt's tokenizer files), the
    output's labels. Returns the metadata JSON (the same for every path)."""
    with tempfile.TemporaryDirectory(prefix="edgeopt-md-") as td:
        vocab = Path(td) / "vocab.txt"  # the associated file's name inside the model
        text = metadata_vocab(tok)
        if text is not None:
            vocab.write_text(text, encoding="utf-8")
        if client_compatible(tok):
            inp = {"kind": "regex", "pattern": tok.DELIM, "vocab": str(vocab)}
        elif text is not None:
            inp = {"kind": "wordpiece", "vocab": str(vocab),
                   "description": f"int32 WordPiece ids [1, {tok.seq_len}] (BERT tokenizer, vocab.txt); "
                                  f"tokenizer.json beside the model has the normalizer and truncation. MediaPipe's "
                                  f"BERT classifier wants ids, mask and segment ids: this model takes ids only"}
        else:
            inp = {"kind": "ids", "description": f"int32 token ids [1, {tok.seq_len}] from edgeopt's {tok.TYPE} "
                                                 f"tokenizer: tokenizer.json (Hugging Face tokenizers) beside the "
                                                 f"model reproduces them"}
        jobs = [{"src": str(p), "dst": str(p), "name": name, "version": version, "description": description,
                 "author": "edgeopt", "input": inp, "labels": list(labels)} for p in paths]
        out = _call("mediapipe-writer", "_writer.py", {"write": jobs}, "writing model metadata", quiet)
    return out[0]


def read_metadata(path: Path, quiet: bool = False) -> dict:
    """{"metadata": the metadata JSON, "files": associated file names, "contents": {name: text}}."""
    return _call("mediapipe-writer", "_writer.py", {"read": str(path)}, f"{path}: reading model metadata", quiet)


def classify(path: Path, texts: list[str], quiet: bool = False) -> dict:
    """The client's answers for ``texts``: top (its top-1 index), scores [N, C] by index, label, seconds."""
    with tempfile.TemporaryDirectory(prefix="edgeopt-mp-") as td:
        tf = Path(td) / "texts.json"
        tf.write_text(json.dumps([t if isinstance(t, str) else str(t) for t in texts], ensure_ascii=False),
                      encoding="utf-8")
        out = Path(td) / "out.npz"
        info = _call("mediapipe-client", "_client.py", {"model": str(path), "texts": str(tf), "out": str(out)},
                     f"{path}: MediaPipe TextClassifier", quiet)
        with np.load(out) as z:
            return {"top": z["top"], "scores": z["scores"], "label": z["label"], **info}


def check(path: Path, texts: list[str], labels: np.ndarray, edgeopt_logits: np.ndarray, label_names: list[str],
          tok, quiet: bool = False) -> dict:
    """Run the real client over the test split and compare with edgeopt's own run of the same file: top-1
    accuracy (must be equal) and per-example agreement (at least 99.9%), the disagreements listed."""
    st = status("mediapipe-client")
    base = {"client": "MediaPipe Tasks TextClassifier (Python)", "package": st["package"],
            "environment": st["path"], "artifact": Path(path).name}
    if not client_compatible(tok):
        return {**base, "ran": False, "passed": None, "reason": client_gap(tok) + " (the report's 'In an app' says "
                                                                              "what the app does instead)"}
    t0 = time.perf_counter()
    with working(f"MediaPipe TextClassifier on {Path(path).name} over {len(texts):,} test examples", quiet):
        res = classify(path, texts, quiet)
    labels, logits = np.asarray(labels), np.asarray(edgeopt_logits, np.float32)
    ours, theirs = logits.argmax(1), res["top"]
    rows_i = np.arange(len(theirs))
    # a tie: the client's top-1 has exactly edgeopt's top score (quantized outputs tie; the client's sort does
    # not break ties by index as argmax does, so such a row has two right answers for "top-1")
    tie = (ours != theirs) & (logits[rows_i, theirs] == logits[rows_i, ours])
    agree = (ours == theirs) | tie
    acc_client = float((theirs == labels).mean())
    acc_ours = float((ours == labels).mean())
    acc_client_on_untied = float((np.where(tie, ours, theirs) == labels).mean())  # ties resolved as edgeopt does
    names_ok = all(res["label"][i] == label_names[theirs[i]] for i in range(len(theirs)))
    shape_ok = res["scores"].shape == logits.shape
    max_diff = float(np.abs(res["scores"] - logits).max()) if shape_ok and len(logits) else None
    rows = []
    for i in np.flatnonzero(ours != theirs)[:SHOWN_DISAGREEMENTS]:
        s = np.sort(logits[i])
        rows.append({"index": int(i), "text": str(texts[i])[:200], "label": label_names[labels[i]],
                     "edgeopt": label_names[ours[i]], "client": label_names[theirs[i]],
                     "edgeopt_margin": round(float(s[-1] - s[-2]), 6) if s.size > 1 else None, "tie": bool(tie[i])})
    agreement = float(agree.mean()) if len(agree) else float("nan")
    passed = bool(agreement >= AGREEMENT_MIN and names_ok and max_diff is not None and max_diff <= SCORE_TOL
                  and acc_client_on_untied == acc_ours)
    return {**base, "ran": True, "examples": int(len(theirs)), "accuracy": round(acc_client, 6),
            "edgeopt_accuracy": round(acc_ours, 6), "agreement": round(agreement, 6), "agreement_min": AGREEMENT_MIN,
            "disagreements": int((~agree).sum()), "top1_differs": int((ours != theirs).sum()),
            "ties_broken_differently": int(tie.sum()), "shown": rows, "label_names_match": names_ok,
            "max_abs_score_diff": None if max_diff is None else round(max_diff, 6),
            "client_seconds": res["seconds"], "seconds": round(time.perf_counter() - t0, 1), "passed": passed,
            "note": "agreement counts a row whose top score is tied between labels as agreeing when the client "
                    "lists another of the tied labels first; 'accuracy' is the client's own top-1"}
