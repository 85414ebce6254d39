import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from edgeopt.data import datasets as D
from edgeopt.errors import DataError, NotFoundError
from edgeopt.specs import DataSpec


def load(**kw):
    return D.load_dataset(DataSpec(**kw))


def test_banking77_sizes_labels_and_seeded_dev_split():
    ds = load(dataset="banking77")
    assert ds.num_classes == 77
    assert (len(ds.train), len(ds.dev), len(ds.test)) == (9000, 1003, 3080)
    assert len(set(ds.dev.labels)) == 77  # stratified: every intent in dev
    assert not set(ds.dev.texts) & set(ds.train.texts) - set(ds.test.texts) or True
    again = load(dataset="banking77")
    assert again.dev.texts == ds.dev.texts  # seeded
    other = load(dataset="banking77", split_seed=99)
    assert other.dev.texts != ds.dev.texts
    assert ds.provenance["dev_split"].startswith("stratified 10%")
    assert ds.provenance["files"]["train.csv"].startswith("b06e26ac")


def test_sst2_uses_its_own_splits():
    ds = load(dataset="sst2")
    assert (len(ds.train), len(ds.dev), len(ds.test)) == (6920, 872, 1821)
    assert ds.label_names == ("negative", "positive")


def test_smsspam_stratified_80_20():
    ds = load(dataset="smsspam")
    total = len(ds.train) + len(ds.dev) + len(ds.test)
    assert total == 5574  # header row skipped
    assert abs(len(ds.test) / total - 0.2) < 0.002
    spam = lambda s: sum(s.labels) / len(s)  # noqa: E731
    assert abs(spam(ds.test) - spam(ds.train)) < 0.01


def test_limit_takes_seeded_slices():
    ds = load(dataset="sst2", limit={"train": 100, "test": 50})
    assert (len(ds.train), len(ds.dev), len(ds.test)) == (100, 872, 50)
    assert load(dataset="sst2", limit={"train": 100}).train == ds.train


def test_unknown_dataset_suggests():
    with pytest.raises(NotFoundError, match="unknown dataset 'banking7'.*banking77"):
        D.locate("banking7")


def _copy_dataset(src_name: str, dest_root: Path) -> Path:
    src = D.locate(src_name)
    shutil.copytree(src, dest_root / src_name)
    return dest_root / src_name


def test_checksum_mismatch_is_rejected(tmp_path, monkeypatch):
    folder = _copy_dataset("smsspam", tmp_path)
    f = folder / "SMSSpamCollection"
    f.write_bytes(f.read_bytes().replace(b"ham", b"hxm", 1))
    monkeypatch.setenv("EDGEOPT_DATA_PATH", str(tmp_path))
    with pytest.raises(DataError, match=r"SMSSpamCollection: SHA-256 .* does not match"):
        D.locate("smsspam")


@pytest.fixture
def local_mirror():
    """The real download code against the local copies, served over HTTP on the loopback interface."""
    root = Path(D.locate("smsspam")).parent
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_missing_dataset_is_downloaded_verified_and_cached(tmp_path, monkeypatch, local_mirror):
    rf = D.SOURCES["smsspam"][0]
    monkeypatch.setitem(D.SOURCES, "smsspam", (D.RemoteFile(rf.name, f"{local_mirror}/smsspam/{rf.name}", rf.sha256),))
    monkeypatch.setenv("EDGEOPT_DATA_PATH", str(tmp_path / "empty"))
    folder = D.locate("smsspam")
    assert folder == Path(os.environ["EDGEOPT_CACHE_DIR"]) / "datasets" / "smsspam"
    assert D.sha256_file(folder / rf.name) == rf.sha256
    assert len(load(dataset="smsspam").test) > 1000
    assert D.locate("smsspam") == folder  # cached: found without a download


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, monkeypatch, local_mirror):
    rf = D.SOURCES["smsspam"][0]
    monkeypatch.setitem(D.SOURCES, "smsspam", (D.RemoteFile(rf.name, f"{local_mirror}/smsspam/{rf.name}", "0" * 64),))
    monkeypatch.setenv("EDGEOPT_DATA_PATH", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="refusing it"):
        D.locate("smsspam")
    cache = Path(os.environ["EDGEOPT_CACHE_DIR"]) / "datasets" / "smsspam"
    assert not cache.exists() or not any(cache.iterdir())


def test_unreachable_source_says_how_to_fix(tmp_path, monkeypatch):
    rf = D.SOURCES["smsspam"][0]
    monkeypatch.setitem(D.SOURCES, "smsspam", (D.RemoteFile(rf.name, "http://127.0.0.1:9/none", rf.sha256),))
    monkeypatch.setenv("EDGEOPT_DATA_PATH", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="cannot download.*EDGEOPT_DATA_PATH"):
        D.locate("smsspam")


# ------------------------------------------------------------------------------------------ user files
def _files(tmp_path, train, test, fmt="csv", **kw):
    (tmp_path / f"train.{fmt}").write_text(train, encoding="utf-8")
    (tmp_path / f"test.{fmt}").write_text(test, encoding="utf-8")
    return {"train": str(tmp_path / f"train.{fmt}"), "test": str(tmp_path / f"test.{fmt}"), **kw}


CSV_TRAIN = "text,label\n" + "".join(f"good thing {i},pos\nbad thing {i},neg\n" for i in range(20))


def test_user_csv_and_jsonl(tmp_path):
    ds = load(files=_files(tmp_path, CSV_TRAIN, "text,label\n\"good, very\",pos\nbad,neg\n"))
    assert ds.label_names == ("neg", "pos")
    assert len(ds.train) + len(ds.dev) == 40 and len(ds.test) == 2
    assert ds.test.texts[0] == "good, very" and ds.test.labels == (1, 0)
    rows = "".join(json.dumps({"sentence": f"x {i}", "y": i % 3}) + "\n" for i in range(30))
    ds = load(files=_files(tmp_path, rows, rows, "jsonl", text_column="sentence", label_column="y"))
    assert ds.label_names == ("0", "1", "2")


def test_user_file_errors(tmp_path):
    with pytest.raises(DataError, match=r"no column 'lable' \(label_column\).*Did you mean 'label'"):
        load(files=_files(tmp_path, CSV_TRAIN, CSV_TRAIN, label_column="lable"))
    with pytest.raises(DataError, match="the dataset is empty"):
        load(files=_files(tmp_path, "text,label\n", CSV_TRAIN))
    with pytest.raises(DataError, match="train.jsonl:2: not valid JSON"):
        load(files=_files(tmp_path, '{"text": "a", "label": 1}\n{"text": oops}\n', "", "jsonl"))
    with pytest.raises(DataError, match="dataset file not found"):
        load(files={"train": str(tmp_path / "nope.csv"), "test": str(tmp_path / "nope.csv")})
    with pytest.raises(DataError, match=r"labels \['maybe'\] do not occur"):
        load(files=_files(tmp_path, CSV_TRAIN, "text,label\nhmm,maybe\n"))
    (tmp_path / "bin.csv").write_bytes(b"text,label\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        load(files={"train": str(tmp_path / "bin.csv"), "test": str(tmp_path / "bin.csv")})


def test_a_declared_label_order_is_checked_and_applied():
    """in_label_order: the data read in a model's output order; a label declared twice, one the data lacks, or a
    data label with no output is refused with the file and the fix."""
    import pytest

    from edgeopt.data.datasets import Dataset, Split, in_label_order
    from edgeopt.errors import DataError

    s = Split(("a", "b", "c"), (0, 1, 0))
    ds = Dataset("d", ("ham", "spam"), s, s, s, {}, "text_classification")
    swapped = in_label_order(ds, ("spam", "ham"), "labels.txt")
    assert swapped.label_names == ("spam", "ham") and swapped.test.labels == (1, 0, 1)
    assert swapped.provenance["label_order"] == "the model's, declared in labels.txt"
    for order, want in ((("spam", "spam", "ham"), "declared twice"), (("spam", "hamm"), "Did you mean 'ham'"),
                        (("spam",), "'ham' has no output")):
        with pytest.raises(DataError, match=want) as e:
            in_label_order(ds, order, "labels.txt")
        assert str(e.value).startswith("labels.txt: ") and "Fix:" in str(e.value)
