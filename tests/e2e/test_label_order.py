"""A model's own label order: a model file whose outputs are in another order than the data's labels never
passes (the verdict says it is no better than chance and names the order that explains it); declared with
--labels it builds at its own accuracy; a declared label the data does not have is refused before any work."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from conftest import FAST_LATENCY, run_cli

DATA = {"dataset": "smsspam", "limit": {"train": 800, "dev": 200, "test": 300}}
SEQ = 24


@pytest.fixture(scope="session")  # its xdist group's worker builds it once, even when other modules' tests interleave
def swapped(tmp_path_factory):
    """A CNN trained on SMS spam with its outputs in the other order (output 0 = spam), its vocabulary, a data
    YAML and a target without a host-latency budget (nothing here depends on the machine's speed)."""
    from edgeopt.data import load_dataset
    from edgeopt.data.tokenizer import WordTokenizer
    from edgeopt.registry import load_target
    from edgeopt.specs import DataSpec
    from edgeopt.tf import keras

    d = tmp_path_factory.mktemp("order")
    ds = load_dataset(DataSpec.model_validate(DATA))
    assert ds.label_names == ("ham", "spam")
    tok = WordTokenizer.fit(ds.train.texts, seq_len=SEQ, max_vocab=2000)
    (d / "vocab.txt").write_text("\n".join(tok.vocab) + "\n")
    K = keras()
    K.backend.clear_session()
    K.utils.set_random_seed(3)
    i = K.Input((SEQ,), dtype="int32", name="tokens")
    x = K.layers.Embedding(len(tok.vocab), 16)(i)
    x = K.layers.GlobalMaxPooling1D()(K.layers.Conv1D(16, 3, activation="relu")(x))
    m = K.Model(i, K.layers.Dense(2)(x))
    m.compile(optimizer=K.optimizers.Adam(0.005), loss=K.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(tok.encode_batch(ds.train.texts), 1 - np.asarray(ds.train.labels), epochs=4, batch_size=32, verbose=0)
    own = float((m.predict(tok.encode_batch(ds.test.texts), verbose=0).argmax(1)
                 == 1 - np.asarray(ds.test.labels)).mean())
    assert own >= 0.93  # its own accuracy, read in its own order (the majority class is 0.89 of this slice)
    m.save(d / "swapped.keras")
    (d / "data.yaml").write_text(yaml.safe_dump({"data": DATA}))
    t = yaml.safe_load(open(load_target("x86-avx2-server").source))
    t["name"] = "server-no-clock"
    t["budgets"].pop("max_latency_p90_ms")
    (d / "server.yaml").write_text(yaml.safe_dump(t))
    return d, own


def _build(d, *extra, out):
    return run_cli(["build", str(d / "swapped.keras"), "--data", str(d / "data.yaml"), "--vocab", str(d / "vocab.txt"),
                    "--target", str(d / "server.yaml"), "--ptq", "float32", "--out", str(out), "--json", "--quiet",
                    *FAST_LATENCY, *extra])


def test_outputs_in_another_order_never_pass(swapped, tmp_path):
    d, own = swapped
    r = _build(d, out=tmp_path / "o")
    assert r.exit_code == 3, r.output
    man = json.loads(r.stdout)
    (row,) = [c for c in man["budgets"]["checks"] if c["name"] == "better_than_chance"]
    assert not row["passed"] and "another order" in row["value"] and "--labels" in row["value"]
    assert "output 0 reads as 'spam'" in row["value"]
    assert man["metrics"]["accuracy"] < 0.2  # as read in the data's order
    assert "better_than_chance" in r.stderr  # the console names the failed check
    assert man["data"]["label_order"] == "smsspam's own"


def test_declared_labels_build_at_the_models_own_accuracy(swapped, tmp_path):
    d, own = swapped
    (tmp_path / "labels.txt").write_text("spam\nham\n")
    r = _build(d, "--labels", str(tmp_path / "labels.txt"), out=tmp_path / "o")
    assert r.exit_code == 0, r.output
    man = json.loads(r.stdout)
    assert abs(man["metrics"]["accuracy"] - own) <= 1 / 300 + 1e-9
    assert all(c["passed"] for c in man["budgets"]["checks"])
    assert str(tmp_path / "labels.txt") in man["data"]["label_order"]
    assert (tmp_path / "o" / "labels.txt").read_text().split() == ["spam", "ham"]  # what an app reads, in order


def test_a_declared_label_the_data_lacks_is_refused_before_any_work(swapped, tmp_path):
    d, _ = swapped
    (tmp_path / "labels.txt").write_text("spam\nhamm\n")
    r = _build(d, "--labels", str(tmp_path / "labels.txt"), "--dry-run", out=tmp_path / "o")
    assert r.exit_code == 2
    (line,) = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "'hamm' is not a label of the data" in line and "Did you mean 'ham'" in line and "Fix:" in line
    assert not (tmp_path / "o").exists()
