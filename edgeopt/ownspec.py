"""A ModelSpec for the user's own data in one step: ``edgeopt build --csv train.csv``, ``edgeopt init NAME --csv``,
and ``edgeopt.spec_from_data(...)`` in Python (a DataFrame, or lists of texts and labels).

The spec is the reference spec of the chosen architecture (text_cnn: banking77-cnn, bilstm: banking77-bilstm,
transformer: banking77-transformer) with the user's files as its data, so a user's build trains exactly as the
reference model does (epochs, patience, learning rate, architecture settings), with MediaPipe's regex tokenizer
(the file runs in MediaPipe's TextClassifier as it is) and ``seq_len`` sized to the data: the 95th percentile of
the training texts' word counts, rounded up to a multiple of 8 (8 to 256). Without a test file, a seeded share of
train is the test split (``data.test_fraction``); without a dev file, a seeded share of the rest is dev; both are
stated in the manifest and the report.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Optional

from .errors import DataError, InputError

ARCHS = {"text_cnn": "banking77-cnn", "bilstm": "banking77-bilstm", "transformer": "banking77-transformer"}
SEQ_LEN_RANGE = (8, 256)


GENERIC_STEMS = ("train", "training", "data", "dataset", "all")


def _name_of(path: Path) -> str:
    """The file's name without its suffix, or its directory's when the file is called train.csv, data.csv, ..."""
    stem = path.name.rsplit(".", 1)[0]
    if stem.lower() in GENERIC_STEMS and path.resolve().parent.name:
        stem = path.resolve().parent.name
    return re.sub(r"[^A-Za-z0-9._-]", "-", stem).lstrip("._-")[:100] or "model"


def seq_len_for(texts) -> int:
    """The 95th percentile of the texts' word counts, rounded up to a multiple of 8, within SEQ_LEN_RANGE."""
    counts = sorted(len(t.split()) for t in texts) or [0]
    p95 = counts[min(len(counts) - 1, int(0.95 * len(counts)))]
    lo, hi = SEQ_LEN_RANGE
    return max(lo, min(hi, -(-p95 // 8) * 8))


def spec_from_files(train, dev=None, test=None, text_column: str = "text", label_column: str = "label",
                    arch: str = "text_cnn", name: Optional[str] = None, relative_to: Optional[Path] = None):
    """The ModelSpec for a user's CSV/JSONL files (``--csv``): the reference spec of ``arch`` with these files as
    its data. Paths are absolute, or relative to ``relative_to`` (``init`` writes a spec beside its files)."""
    from .registry import load_model_spec
    from .specs import DataFiles, DataSpec, ModelSpec

    if arch not in ARCHS:
        raise InputError(f"--arch {arch!r}: not a built-in architecture. Fix: give one of {', '.join(ARCHS)}.")
    paths = {k: Path(v) for k, v in (("train", train), ("dev", dev), ("test", test)) if v}
    fmt = "jsonl" if paths["train"].suffix.lower() in (".jsonl", ".json") else "csv"
    from .data.datasets import read_table

    try:
        texts, labels = read_table(paths["train"], fmt, text_column, label_column)
    except DataError as e:  # its fix names the spec's field; here the setting is a flag or an argument
        msg = str(e)
        for field, flag in (("data.files.text_column", "--text-column (text_column=)"),
                            ("data.files.label_column", "--label-column (label_column=)"),
                            ("data.files.format", "a .csv or .jsonl file name"),
                            ("the spec's data.files", "--csv")):
            msg = msg.replace(field, flag)
        raise InputError(msg) from None
    if len(set(labels)) < 2:
        raise InputError(f"{paths['train']}: column {label_column!r} has {len(set(labels))} distinct label(s). Fix: "
                         f"a classifier needs at least two labels; check --label-column.")
    base = load_model_spec(ARCHS[arch])
    where = (lambda p: str(p.resolve())) if relative_to is None else (lambda p: _rel(p, relative_to))
    files = DataFiles(train=where(paths["train"]), dev=where(paths["dev"]) if "dev" in paths else None,
                      test=where(paths["test"]) if "test" in paths else None, format=fmt, text_column=text_column,
                      label_column=label_column)
    tok = base.tokenizer.model_copy(update={"kind": "regex", "seq_len": seq_len_for(texts)})
    nm = name or _name_of(paths["train"])
    desc = (f"{len(set(labels))} labels from {paths['train'].name}; {arch} with the settings of the reference "
            f"spec {ARCHS[arch]}")
    return ModelSpec.model_validate({
        "name": nm, "description": desc, "data": DataSpec(files=files).model_dump(exclude_none=True),
        "tokenizer": tok.model_dump(exclude_none=True), "architecture": base.architecture.model_dump(),
        "training": base.training.model_dump(exclude_none=True)})


def _rel(p: Path, base: Path) -> str:
    import os

    return os.path.relpath(p.resolve(), base.resolve())


def spec_yaml(spec, files_from: str, file_name: str = "THIS.yaml") -> str:
    """The spec as a YAML file a person edits: every setting written out, with a header saying where it came from."""
    import yaml

    d = spec.model_dump(mode="json", exclude_none=True)
    head = [f"# edgeopt ModelSpec written by `edgeopt init` from {files_from}.",
            f"# Build it: edgeopt build {file_name} --target pixel-7   (paths are relative to this file)",
            "# Fields: data (files, dev_fraction, test_fraction, split_seed), tokenizer, architecture, training;",
            "# see docs/own-data.md."]
    return "\n".join(head) + "\n" + yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=120)


def write_spec(path: Path, spec, files_from: str) -> Path:
    """Write ``spec`` to ``path`` (a new file only: nothing edgeopt did not write is overwritten)."""
    from .specs import load_model_spec_file

    path = Path(path)
    if path.exists() or path.is_symlink():
        raise InputError(f"{path}: already exists. Fix: give another name or --out, or remove the file yourself.")
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such directory. Fix: create it or give another --out.")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(spec_yaml(spec, files_from, path.name), encoding="utf-8")
    try:
        load_model_spec_file(tmp)  # what was written reads back as a valid spec
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def spec_from_data(train, dev=None, test=None, text_column: str = "text", label_column: str = "label",
                   arch: str = "text_cnn", name: str = "mydata", data_dir=None):
    """A ModelSpec from data in memory: each split a pandas DataFrame (``text_column``, ``label_column``) or a pair
    ``(texts, labels)``. The splits are written as CSV files named by their content's SHA-256 under
    ``data_dir`` (default ``$EDGEOPT_CACHE_DIR/data``), so the same data gives the same spec and reuses the cache."""
    import csv
    import io

    from .data.datasets import cache_dir

    folder = Path(data_dir) if data_dir is not None else cache_dir() / "data"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, value in (("train", train), ("dev", dev), ("test", test)):
        if value is None:
            continue
        if hasattr(value, "columns"):  # a DataFrame
            missing = [c for c in (text_column, label_column) if c not in value.columns]
            if missing:
                raise InputError(f"{split}: the DataFrame has no column {missing[0]!r} (columns: "
                                 f"{', '.join(map(str, value.columns))}). Fix: pass text_column=/label_column=.")
            texts, labels = list(value[text_column]), list(value[label_column])
        else:
            try:
                texts, labels = value
                texts, labels = list(texts), list(labels)
            except (TypeError, ValueError):
                raise InputError(f"{split}: give a DataFrame or a pair (texts, labels). Fix: e.g. "
                                 f"spec_from_data(train=(texts, labels)).") from None
        if len(texts) != len(labels):
            raise InputError(f"{split}: {len(texts)} texts but {len(labels)} labels. Fix: one label per text.")
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise InputError(f"{split}: text {bad} is a {type(texts[bad]).__name__}, not a string. Fix: give texts.")
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["text", "label"])
        w.writerows(zip(texts, [str(v) for v in labels]))
        data = buf.getvalue().encode("utf-8")
        path = folder / f"{split}-{hashlib.sha256(data).hexdigest()[:16]}.csv"
        if not path.exists():
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        out[split] = path
    if "train" not in out:
        raise InputError("spec_from_data: train is required. Fix: pass train=(texts, labels) or a DataFrame.")
    return spec_from_files(out["train"], out.get("dev"), out.get("test"), "text", "label", arch, name)
