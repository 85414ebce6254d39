"""Any ONNX text classifier as a distillation teacher (a Hugging Face model exported to ONNX, say), run by ONNX
Runtime on the CPU, no torch.

- **Inputs** are built from its ``tokenizer.json`` (default: the file beside the ``.onnx``): ``input_ids``,
  ``attention_mask`` (1 on real tokens) and ``token_type_ids`` (zeros) as the graph names them, in the integer type
  it declares, padded per batch with the tokenizer's padding token (or to the graph's fixed length), truncated at
  the tokenizer's own ``truncation`` length, else at the graph's fixed length, else 512. Any other input is refused
  in one line.
- **Output**: the graph's ``logits`` output (else its only output), (batch, labels).
- **Labels**: its label names in output order, from ``teacher_labels`` (a list, or a file with one a line) or
  from ``id2label`` in the ``config.json`` beside the file (how Hugging Face exports record them). They are matched
  to the data's label names by name (exact, then ignoring case, spaces, ``-`` and ``_``); the teacher's logits are
  reordered into the student's label order, and a teacher label the data does not have is dropped. A data label
  the teacher lacks is an error naming it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..console import log
from ..data.tokenizer import named_pad_id
from ..errors import InputError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_MAX_LEN = 512


@dataclass(frozen=True)
class OnnxTeacherRef:
    """What ``plan`` records for ``teacher: FILE.onnx`` (in place of a ModelSpec)."""

    path: str
    tokenizer: str
    labels: tuple[str, ...]
    labels_from: str
    onnx: bool = True

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def architecture(self):
        from types import SimpleNamespace

        return SimpleNamespace(name=f"ONNX classifier ({len(self.labels)} labels)")


def _where(cfg) -> str:
    return f"distill.teacher {cfg.teacher}"


def resolve(cfg) -> OnnxTeacherRef:
    """The teacher's files and label names, checked in one line each (before any training)."""
    path = Path(cfg.teacher)
    if not path.is_file():
        raise InputError(f"{_where(cfg)}: no such file. Fix: give the path of an ONNX text classifier (.onnx).")
    tok = Path(cfg.teacher_tokenizer) if cfg.teacher_tokenizer else path.parent / "tokenizer.json"
    if not tok.is_file():
        raise InputError(f"{_where(cfg)}: its tokenizer {tok} does not exist. Fix: put the model's tokenizer.json "
                         f"beside it, or set distill.teacher_tokenizer.")
    labels, src = _labels(cfg, path)
    return OnnxTeacherRef(str(path.resolve()), str(tok.resolve()), labels, src)


def _labels(cfg, path: Path) -> tuple[tuple[str, ...], str]:
    lab = cfg.teacher_labels
    if isinstance(lab, (tuple, list)):
        names, src = tuple(str(x) for x in lab), "distill.teacher_labels"
    elif isinstance(lab, str):
        f = Path(lab)
        if not f.is_file():
            raise InputError(f"distill.teacher_labels: {f} does not exist. Fix: a file with the teacher's label "
                             f"names, one a line in output order, or a YAML list.")
        names, src = tuple(x.strip() for x in f.read_text(encoding="utf-8").splitlines() if x.strip()), str(f)
    else:
        conf = path.parent / "config.json"
        try:
            id2label = json.loads(conf.read_text(encoding="utf-8"))["id2label"]
            names = tuple(str(id2label[str(i)]) for i in range(len(id2label)))
        except FileNotFoundError:
            raise InputError(f"{_where(cfg)}: its label order is not declared (no config.json beside it). Fix: set "
                             f"distill.teacher_labels to its label names in output order.") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError(f"{conf}: no usable id2label (ids 0..n-1 to label names). Fix: set "
                             f"distill.teacher_labels to the teacher's label names in output order.") from None
        src = str(conf)
    if len(set(names)) != len(names) or not names:
        raise InputError(f"{src}: the teacher's label names must be distinct and at least one. Fix: list each "
                         f"output's label once, in output order.")
    return names, src


def _digest(ref: OnnxTeacherRef, *more) -> str:
    """The graph's, the tokenizer's and the label names' hash (and ``more``): what the teacher's outputs are."""
    from ..data.datasets import sha256_file

    return hashlib.sha256(json.dumps([sha256_file(Path(ref.path)), sha256_file(Path(ref.tokenizer)),
                                      list(ref.labels), *more]).encode()).hexdigest()[:24]


def teacher_fingerprint(cfg) -> str:
    return _digest(resolve(cfg))


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


def label_map(teacher_labels, data_labels, where: str) -> np.ndarray:
    """For each data label (student output order), the teacher output index with its name."""
    exact = {n: i for i, n in enumerate(teacher_labels)}
    loose: dict[str, int] = {}
    for i, n in enumerate(teacher_labels):
        loose.setdefault(_norm(n), i)
    idx, missing = [], []
    for n in data_labels:
        i = exact.get(n, loose.get(_norm(str(n))))
        if i is None:
            missing.append(n)
        idx.append(i)
    if missing:
        raise InputError(f"{where}: the teacher has no label {', '.join(map(repr, missing[:5]))}"
                         f"{' ...' if len(missing) > 5 else ''} of the data ({len(missing)} of "
                         f"{len(data_labels)} missing; its labels: {', '.join(teacher_labels[:5])}...). Fix: give a "
                         f"teacher trained on these labels, or its label names (distill.teacher_labels).")
    if len(set(idx)) != len(idx):
        raise InputError(f"{where}: two data labels match one teacher label. Fix: set distill.teacher_labels to "
                         f"names that match the data's exactly.")
    return np.asarray(idx)


class OnnxClassifier:
    """The ONNX graph and its tokenizer: texts -> logits (teacher output order)."""

    def __init__(self, ref: OnnxTeacherRef):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        where = f"distill.teacher {ref.path}"
        try:
            self.sess = ort.InferenceSession(ref.path, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types with the parser's message
            raise InputError(f"{where}: ONNX Runtime cannot load it ({' '.join(str(e).split())[:200]}). Fix: "
                             f"give an ONNX text classifier this ONNX Runtime runs.") from None
        self.inputs = {i.name: i for i in self.sess.get_inputs()}
        bad = [n for n in self.inputs if n not in INPUTS]
        if bad or "input_ids" not in self.inputs:
            raise InputError(f"{where}: inputs {sorted(self.inputs)}; a teacher takes input_ids and optionally "
                             f"attention_mask and token_type_ids. Fix: export the classifier with those inputs.")
        outs = self.sess.get_outputs()
        out = next((o for o in outs if o.name == "logits"), outs[0] if len(outs) == 1 else None)
        if out is None or len(out.shape) != 2:
            raise InputError(f"{where}: outputs {[o.name for o in outs]}; a teacher has one (batch, labels) output "
                             f"(or one named logits). Fix: export the classifier's logits.")
        self.output = out.name
        if isinstance(out.shape[1], int) and out.shape[1] != len(ref.labels):
            raise InputError(f"{where}: {out.shape[1]} outputs, but {len(ref.labels)} label names "
                             f"({ref.labels_from}). Fix: name each output's label once, in output order.")
        self.tk = Tokenizer.from_file(ref.tokenizer)
        fixed = self.inputs["input_ids"].shape[1] if len(self.inputs["input_ids"].shape) == 2 else None
        self.fixed = fixed if isinstance(fixed, int) else None
        trunc = self.tk.truncation["max_length"] if self.tk.truncation else None
        self.max_len = self.fixed or trunc or DEFAULT_MAX_LEN
        pad = named_pad_id(self.tk)  # before no_padding(): the file's own padding settings name it first
        self.pad_id = 0 if pad is None else pad
        self.tk.no_padding()
        self.tk.enable_truncation(self.max_len)
        self.types = {n: (np.int64 if "int64" in i.type else np.int32) for n, i in self.inputs.items()}

    def logits(self, texts, batch_size: int = 64) -> np.ndarray:
        from . import padded_batches

        ids = [e.ids for e in self.tk.encode_batch([str(t) for t in texts])]
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = None
        for idx, tok, mask in padded_batches(ids, order, batch_size, self.pad_id, self.fixed):
            feed = {"input_ids": tok, "attention_mask": mask, "token_type_ids": np.zeros_like(tok)}
            z = self.sess.run([self.output], {n: feed[n].astype(self.types[n]) for n in self.inputs})[0]
            if out is None:
                out = np.zeros((len(ids), z.shape[1]), np.float32)
            out[idx] = z
        return out if out is not None else np.zeros((0, 0), np.float32)


_LOADED: dict = {}


def classifier(ref: OnnxTeacherRef) -> OnnxClassifier:
    """The loaded classifier, once per process for the same files (the plan checks it before training; the build
    then runs it): keyed by the graph's and the tokenizer's path, size and modification time, so an edited file
    loads again. Only the last one loaded is kept (a teacher's session holds the whole graph)."""
    key = (ref, *((p, st.st_size, st.st_mtime_ns) for p in (ref.path, ref.tokenizer) for st in [os.stat(p)]))
    if key not in _LOADED:
        clf = OnnxClassifier(ref)
        _LOADED.clear()
        _LOADED[key] = clf
    return _LOADED[key]


def onnx_teacher(ref: OnnxTeacherRef, ds, cache_root: Path, use_cache: bool, quiet: bool = False):
    """The ONNX classifier as a teachers.Teacher: its logits over the three splits (cached), reordered into the
    data's label order, and its accuracy on the dev and test splits."""
    import time

    from . import Teacher, load_entry, save_entry

    where = f"distill.teacher {Path(ref.path).name}"
    order = label_map(ref.labels, list(ds.label_names), where)
    fp = _digest(ref, [str(x) for x in ds.label_names])
    splits = {"train": ds.train, "dev": ds.dev, "test": ds.test}
    texts_key = hashlib.sha256(json.dumps({n: list(s.texts) for n, s in splits.items()}).encode()).hexdigest()[:24]
    k = f"onnx-{fp}-{texts_key}"
    root = Path(cache_root) / "teachers"
    def run(texts):
        return classifier(ref).logits(texts)[:, order]

    got = load_entry(root, k) if use_cache else None
    if got is not None:
        log(quiet, f"[edgeopt] distill: ONNX teacher {ref.name}: cache hit ({k[5:17]})")
        logits, meta = got[0]["train"], {**got[1], "cached": "disk"}
    else:
        t0 = time.perf_counter()
        m = classifier(ref)
        log(quiet, f"[edgeopt] distill: ONNX teacher {ref.name}: scoring {sum(len(s) for s in splits.values())} texts "
                   f"with ONNX Runtime")
        out = {n: run(s.texts) for n, s in splits.items()}
        secs = time.perf_counter() - t0
        acc = {n: float(np.mean(out[n].argmax(1) == np.asarray(splits[n].labels))) for n in ("dev", "test")}
        meta = {"accuracy_dev": round(acc["dev"], 6), "accuracy_test": round(acc["test"], 6),
                "seconds": round(secs, 1), "max_len": m.max_len, "inputs": sorted(m.inputs),
                "labels_from": Path(ref.labels_from).name if "/" in ref.labels_from else ref.labels_from,
                "teacher_labels": len(ref.labels), "labels_dropped": len(ref.labels) - len(order)}
        log(quiet, f"[edgeopt] distill: ONNX teacher {ref.name}: test accuracy {acc['test']:.4f}")
        if use_cache:
            save_entry(root, k, {"train": out["train"]}, meta)
        logits, meta = out["train"], {**meta, "cached": False}
    from tokenizers import Tokenizer

    return Teacher(logits, {"name": ref.name, "architecture": ref.architecture.name,
                            "accuracy_onnxruntime": meta["accuracy_test"], **meta},
                   "onnx-" + fp, run, mask_token(Tokenizer.from_file(ref.tokenizer)), Path(cache_root), use_cache,
                   quiet)


def mask_token(tk) -> Optional[str]:
    """What the teacher reads for a masked word: its tokenizer's mask token, else its unknown token."""
    m = next((t for t in ("[MASK]", "<mask>") if tk.token_to_id(t) is not None), None)
    if m is None:
        unk = getattr(tk.model, "unk_token", None)
        m = unk if unk and tk.token_to_id(unk) is not None else None
    return m
