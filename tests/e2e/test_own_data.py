"""Your own data in one command: `edgeopt build --csv` (dev and test carved, seeded, stated), `edgeopt init` (the
same spec as a file), and `edgeopt.spec_from_data` (a DataFrame or lists) in Python."""
from __future__ import annotations

import csv
import json

import pytest
import yaml

from conftest import CSV_LABELS, FAST_LATENCY, run_cli, write_csv


def test_csv_build_carves_dev_and_test_and_says_so(csv_build):
    d, m = csv_build
    assert m["model"] == "intents" and m["budgets"]["passed"]
    assert m["data"]["labels"] == len(CSV_LABELS)
    prov = m["data"]
    assert "10% of the training file, seeded" in prov["test_split"] and "stratified 10% of train" in prov["dev_split"]
    total = len(list(csv.DictReader(open(d / "train.csv", encoding="utf-8"))))
    sizes = prov["sizes"]
    assert sum(sizes.values()) == total and 0.08 * total <= sizes["test"] <= 0.12 * total
    # a user's spec trains as the reference model does (banking77-cnn's epochs and patience), and stopped early
    tr = m["spec"]["training"]
    assert tr["epochs"] == 40 and tr["patience"] == 4 and m["training"]["epochs_run"] < 40
    # every training pass keeps its per-epoch history (the report's training curve)
    h = m["passes"][0]["history"]
    assert h["monitor"] == "val_accuracy" and len(h["dev"]) == len(h["loss"]) == m["training"]["epochs_run"]
    # far above chance (5 intents: 0.2) on the carved test split
    assert m["metrics"]["accuracy"] > 0.6
    labels = (d / "out" / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert labels == sorted(CSV_LABELS.values())  # the training file's labels, sorted


@pytest.mark.emulator
@pytest.mark.client
def test_csv_build_with_dev_and_test_files(tmp_path):
    write_csv(tmp_path / "train.csv")
    write_csv(tmp_path / "test.csv", "test")
    write_csv(tmp_path / "dev.csv", "test", per_label=8)
    r = run_cli(["build", "--csv", str(tmp_path / "train.csv"), "--dev", str(tmp_path / "dev.csv"), "--test",
                 str(tmp_path / "test.csv"), "--text-column", "utterance", "--label-column", "intent", "--arch",
                 "text_cnn", "--out", str(tmp_path / "out"), "--json", "--quiet", *FAST_LATENCY])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    assert m["model"] == tmp_path.name.lstrip("._-")  # a file called train.csv: named after its directory
    assert "test_split" not in m["data"] and "dev_split" not in m["data"]
    assert m["data"]["sizes"]["test"] == len(list(csv.DictReader(open(tmp_path / "test.csv", encoding="utf-8"))))
    assert m["data"]["sizes"]["dev"] == 5 * 8


def test_init_writes_the_spec_build_csv_builds(tmp_path, monkeypatch):
    write_csv(tmp_path / "train.csv", per_label=40)
    monkeypatch.chdir(tmp_path)
    r = run_cli(["init", "intents", "--csv", "train.csv", "--text-column", "utterance", "--label-column", "intent"])
    assert r.exit_code == 0, r.output
    spec = yaml.safe_load((tmp_path / "intents.yaml").read_text())
    assert spec["data"]["files"] == {"train": "train.csv", "format": "csv", "text_column": "utterance",
                                     "label_column": "intent"}
    assert spec["training"]["epochs"] == 40 and spec["tokenizer"]["kind"] == "regex"
    # the file's plan is the --csv command's plan
    a = run_cli(["build", "intents.yaml", "--dry-run", "--json"])
    b = run_cli(["build", "--csv", "train.csv", "--text-column", "utterance", "--label-column", "intent", "--name",
                 "intents", "--dry-run", "--json"])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    pa, pb = json.loads(a.stdout), json.loads(b.stdout)
    for k in ("model", "tokenizer", "training", "targets"):
        assert pa[k] == pb[k], k
    # never overwritten
    again = run_cli(["init", "intents", "--csv", "train.csv", "--text-column", "utterance", "--label-column", "intent"])
    assert again.exit_code == 2 and "already exists" in again.output
    assert yaml.safe_load((tmp_path / "intents.yaml").read_text()) == spec


@pytest.mark.parametrize("args, says", [
    (["--dev", "x.csv"], "--dev applies with --csv"),
    (["banking77-cnn", "--csv", "train.csv"], "MODEL 'banking77-cnn' was also given"),
    (["--csv", "train.csv", "--text-column", "utterance", "--label-column", "nope"], "--label-column"),
    (["--csv", "train.csv"], "no column 'text'"),
    (["--csv", "train.csv", "--text-column", "utterance", "--label-column", "intent", "--arch", "rnn"], "rnn"),
    (["--csv", "missing.csv"], "missing.csv"),
])
def test_csv_refusals_are_one_line(tmp_path, monkeypatch, args, says):
    write_csv(tmp_path / "train.csv", per_label=5)
    monkeypatch.chdir(tmp_path)
    r = run_cli(["build", *args, "--dry-run"])
    assert r.exit_code == 2, r.output
    assert says in r.output and len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_spec_from_data_lists_and_dataframe(tmp_path):
    import edgeopt

    texts = ["card has not arrived", "where is my card", "lost my card", "my card was stolen"] * 10
    labels = ["arrival", "arrival", "lost", "lost"] * 10
    a = edgeopt.spec_from_data(train=(texts, labels), name="mine", data_dir=tmp_path)
    b = edgeopt.spec_from_data(train=(texts, labels), name="mine", data_dir=tmp_path)
    assert a == b  # the same data gives the same spec (content-addressed files)
    assert len(list(tmp_path.glob("train-*.csv"))) == 1
    import pandas as pd  # in the lock for this test; edgeopt itself never imports it

    frame = pd.DataFrame({"msg": texts, "y": labels})
    c = edgeopt.spec_from_data(train=frame, text_column="msg", label_column="y", name="mine", data_dir=tmp_path)
    assert c.data.files.train == a.data.files.train
    with pytest.raises(edgeopt.InputError, match="no column 'text'"):
        edgeopt.spec_from_data(train=frame, data_dir=tmp_path)
    with pytest.raises(edgeopt.InputError, match="40 texts but 3 labels"):
        edgeopt.spec_from_data(train=(texts, labels[:3]), data_dir=tmp_path)


@pytest.mark.slow
def test_a_notebook_build_from_lists_is_typed_displayed_and_prints_nothing_native(tmp_path):
    """From Python, as in a notebook: data as lists, edgeopt.build, a typed manifest, a rich display, predict; and
    nothing native (LiteRT's "Created TensorFlow Lite XNNPACK delegate", TensorFlow's C++ logging) on stderr."""
    import subprocess
    import sys

    write_csv(tmp_path / "train.csv", per_label=80)
    code = f"""
import csv, json
import edgeopt
rows = list(csv.DictReader(open({str(tmp_path / 'train.csv')!r}, encoding="utf-8")))
spec = edgeopt.spec_from_data(train=([r["utterance"] for r in rows], [r["intent"] for r in rows]), name="lib",
                              data_dir={str(tmp_path / 'data')!r})
[r] = edgeopt.build(spec, ["x86-avx2-server"], quiet=True, out={str(tmp_path / 'out')!r},
                    latency=edgeopt.LatencySettings(5, 30))
m = r.manifest
print(json.dumps({{"type": type(m).__name__, "accuracy": m.metrics.accuracy, "passed": r.passed,
                  "html": r._repr_html_(), "repr": repr(r)}}))
print(json.dumps(edgeopt.predict(r.out_dir, "my card still has not arrived", top_k=2)))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stderr == "", p.stderr[-3000:]  # quiet, and nothing native
    res, pred = [json.loads(ln) for ln in p.stdout.strip().splitlines()[-2:]]
    assert res["type"] == "Manifest" and res["accuracy"] > 0.6
    assert "<table>" in res["html"] and "Verdict" in res["html"] and "x86-avx2-server" in res["repr"]
    assert pred[0]["top"][0]["label"] in CSV_LABELS.values() and len(pred[0]["top"]) == 2
