"""Bring your own model: model files in every accepted format, builders, given vocabularies, safe loading, the
checks before any work, the --dry-run layer table, converter crashes with fallbacks, and compression passes on
recurrent layers read back from the file. Every model here is made by the test itself, tiny and seeded."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import FAST_LATENCY, run_cli

DATA = {"dataset": "smsspam", "limit": {"train": 800, "dev": 200, "test": 300}}
SEQ = 24


def _one_line(r, code=2) -> str:
    assert r.exit_code == code, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgeopt: error: "), r.stderr
    return lines[0]


@pytest.fixture
def data_yaml(tmp_path) -> Path:
    p = tmp_path / "data.yaml"
    p.write_text(yaml.safe_dump({"data": DATA}))
    return p


def _K():
    from edgeopt.tf import keras

    return keras()


def _model(kind: str, vocab: int = 3000, classes: int = 2, seq: int = SEQ, softmax: bool = False):
    K = _K()
    K.backend.clear_session()  # layer names without _N suffixes
    K.utils.set_random_seed(3)
    i = K.Input((seq,), dtype="int32", name="tokens")
    x = K.layers.Embedding(vocab, 16)(i)
    if kind == "gru":
        x = K.layers.GRU(8)(x)
    elif kind == "rnns":  # every recurrent family, stacked
        x = K.layers.SimpleRNN(16, return_sequences=True)(x)
        x = K.layers.Bidirectional(K.layers.GRU(16, return_sequences=True))(x)
        x = K.layers.LSTM(16)(x)
    elif kind == "attn":
        x = K.layers.Conv1D(16, 3, dilation_rate=2, padding="same", activation="relu")(x)
        x = K.layers.LayerNormalization()(x)
        x = K.layers.MultiHeadAttention(2, 8)(x, x)
        x = K.layers.GlobalAveragePooling1D()(x)
        x = K.layers.Dropout(0.1)(x)
    else:  # cnn
        x = K.layers.Conv1D(16, 3, activation="relu")(x)
        x = K.layers.GlobalMaxPooling1D()(x)
    out = K.layers.Dense(classes, activation="softmax" if softmax else None)(x)
    return K.Model(i, out)


def _build(args, code=(0, 3)):
    r = run_cli(["build", *args, "--quiet", "--json", *FAST_LATENCY])
    assert r.exit_code in code, r.output
    return json.loads(r.stdout)


# ------------------------------------------------------------------------------------------ formats
def test_every_file_format_loads_with_its_own_weights(tmp_path):
    from edgeopt.sources import FileSource
    from edgeopt.specs import ModelFileSpec

    m = _model("gru")
    x = np.random.default_rng(0).integers(0, 3000, (20, SEQ)).astype(np.int32)
    want = m.predict(x, verbose=0)
    K = _K()  # compiled, as a training script leaves it: the file then also names its optimizer and loss
    m.compile(optimizer=K.optimizers.Adam(1e-3), loss=K.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.save(tmp_path / "m.keras")
    m.save(tmp_path / "m.h5")
    m.save(tmp_path / "m_saved", save_format="tf")
    import keras as k3  # Keras 3, as a user's training script would save it

    i = k3.Input((SEQ,), dtype="int32")
    y = k3.layers.Embedding(3000, 16)(i)
    y = k3.layers.Bidirectional(k3.layers.GRU(8))(y)
    k3m = k3.Model(i, k3.layers.Dense(2)(y))
    k3m.save(tmp_path / "k3.keras")
    for name, fmt in (("m.keras", "keras"), ("m.h5", "h5"), ("m_saved", "savedmodel"), ("k3.keras", "keras3")):
        src = FileSource(ModelFileSpec(path=str(tmp_path / name)))
        assert src.format == fmt
        got = src.model.predict(x, verbose=0)
        ref = want if fmt != "keras3" else np.asarray(k3m.predict(x, verbose=0))
        np.testing.assert_allclose(got, ref, atol=1e-6, err_msg=name)
        assert {"Embedding", "GRU", "Dense"} <= src.layer_types()
    fp = FileSource(ModelFileSpec(path=str(tmp_path / "m.h5"))).fingerprint()["model_file_sha256"]
    m.layers[-1].set_weights([w + 1 for w in m.layers[-1].get_weights()])
    m.save(tmp_path / "m.h5")
    assert FileSource(ModelFileSpec(path=str(tmp_path / "m.h5"))).fingerprint()["model_file_sha256"] != fp


def test_misleading_inputs_get_the_right_error(tmp_path, data_yaml):
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "junk.keras").write_bytes(b"PK\x03\x04not really")
    (tmp_path / "text.h5").write_text("hello")
    for name, expect in (("empty_dir", "without saved_model.pb"), ("junk.keras", "not a Keras model"),
                         ("text.h5", "not a Keras model file"), ("missing.keras", "not found")):
        line = _one_line(run_cli(["build", str(tmp_path / name), "--data", str(data_yaml), "--dry-run"]))
        assert expect in line, line
    _model("cnn").save(tmp_path / "ok.keras")
    assert "needs its data" in _one_line(run_cli(["build", str(tmp_path / "ok.keras"), "--dry-run"]))


# ----------------------------------------------------------------------------------- checks up front
def test_each_mismatch_is_one_line_before_any_work(tmp_path, data_yaml):
    K = _K()
    cases = {
        "classes": (_model("cnn", classes=5), "outputs 5 class scores, dataset smsspam has 2 classes"),
        "seq": (_model("cnn", seq=40), "takes sequences of 40 tokens, the tokenizer makes 24"),
        "vocab": (_model("cnn", vocab=50), "has 50 rows, the tokenizer's vocabulary has"),
        "max_vocab": (_model("cnn", vocab=4000), "tokenizer.max_vocab 5000 exceeds the 4000 rows"),
    }
    i1, i2 = K.Input((SEQ,), dtype="int32"), K.Input((SEQ,), dtype="int32")
    e = K.layers.Embedding(3000, 8)
    two = K.Model([i1, i2], K.layers.Dense(2)(K.layers.Flatten()(K.layers.Add()([e(i1), e(i2)]))))
    cases["two_inputs"] = (two, "has 2 inputs")
    i = K.Input((SEQ,), dtype="int32")
    cases["seq_out"] = (K.Model(i, K.layers.Dense(2)(K.layers.Embedding(3000, 8)(i))), "outputs [[None, 24, 2]]")
    for name, (m, expect) in cases.items():
        m.save(tmp_path / f"{name}.keras")
        spec = {"name": name, "data": DATA, "model": {"path": f"{name}.keras"}, "tokenizer": {"seq_len": SEQ}}
        if name in ("vocab", "max_vocab"):
            spec["tokenizer"]["max_vocab"] = 3000 if name == "vocab" else 5000
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(spec))
        out = tmp_path / f"out-{name}"
        line = _one_line(run_cli(["build", str(tmp_path / f"{name}.yaml"), "--out", str(out)]))
        assert expect in line, (name, line)
        assert not out.exists()


def test_spec_names_the_model_exactly_one_way(tmp_path):
    for model_part, expect in (({}, "exactly one way"),
                               ({"architecture": {"name": "text_cnn"}, "model": {"path": "m.keras"}}, "exactly one way"),
                               ({"model": {"path": "m.keras", "builder": "a:b"}}, "exactly one of 'path'"),
                               ({"model": {"builder": "not a ref"}}, "is not \"package.module:function\""),
                               ({"architecture": {"name": "text_cnn"}, "training": {"fit": False}}, "training.fit false")):
        (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "s", "data": DATA, **model_part}))
        assert expect in _one_line(run_cli(["build", str(tmp_path / "s.yaml"), "--dry-run"]))


# --------------------------------------------------------------------------------------- safe loading
def _lambda_model(marker: Path):
    K = _K()
    i = K.Input((SEQ,), dtype="int32")
    x = K.layers.GlobalMaxPooling1D()(K.layers.Embedding(3000, 8)(i))
    code = f"lambda z: (open({str(marker)!r}, 'w').close(), z)[1]"
    x = K.layers.Lambda(eval(code))(x)
    return K.Model(i, K.layers.Dense(2)(x))


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_is_refused_without_running_it_and_accepted_with_the_flag(tmp_path, data_yaml, suffix):
    marker = tmp_path / "LAMBDA_RAN"
    f = tmp_path / f"lam{suffix}"
    _lambda_model(marker).save(f)
    marker.unlink(missing_ok=True)
    line = _one_line(run_cli(["build", str(f), "--data", str(data_yaml), "--dry-run"]))
    assert "Lambda" in line and "--trust-model-code" in line
    assert not marker.exists(), "the Lambda's code ran while the file was refused"
    r = run_cli(["build", str(f), "--data", str(data_yaml), "--dry-run", "--trust-model-code"])
    assert r.exit_code == 0, r.output
    assert marker.exists()  # trusted: loading ran it (that is what the flag allows)


def test_custom_layers_come_in_only_through_a_named_module(tmp_path, data_yaml, monkeypatch):
    (tmp_path / "mylayers.py").write_text(
        "import tf_keras as K\n"
        "class Scale(K.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return x * 2.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    mod = importlib.import_module("mylayers")
    K = _K()
    i = K.Input((SEQ,), dtype="int32")
    x = mod.Scale()(K.layers.GlobalMaxPooling1D()(K.layers.Embedding(3000, 8)(i)))
    K.Model(i, K.layers.Dense(2)(x)).save(tmp_path / "custom.keras")
    line = _one_line(run_cli(["build", str(tmp_path / "custom.keras"), "--data", str(data_yaml), "--dry-run"]))
    assert "Scale" in line and "custom_module" in line
    r = run_cli(["build", str(tmp_path / "custom.keras"), "--data", str(data_yaml), "--dry-run",
                 "--custom-module", "mylayers"])
    assert r.exit_code == 0, r.output


# ------------------------------------------------------------------------------------ dry-run table
def test_dry_run_layer_table_says_what_each_pass_does(tmp_path, data_yaml):
    _model("rnns").save(tmp_path / "rnns.keras")
    _model("attn").save(tmp_path / "attn.h5")
    r = run_cli(["build", str(tmp_path / "rnns.keras"), "--data", str(data_yaml), "--dry-run", "--prune", "0.5",
                 "--cluster", "8", "--qat"])
    assert r.exit_code == 0, r.output
    rows = {ln.split()[0]: ln for ln in r.stdout.splitlines()[1:] if ln.startswith("    ") and len(ln.split()) > 2}
    assert "pruned (0.5 polynomial)" in rows["simple_rnn"] and "clustered (8, kmeans++)" in rows["simple_rnn"]
    assert "full-int8 crashes" in rows["simple_rnn"] and "full-int8 crashes" in rows["bidirectional"]
    assert "Bidirectional(GRU)" in rows["bidirectional"] and "frozen so its structure survives" in rows["lstm"]
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in rows["lstm"] and "never annotated" in rows["embedding"]
    assert "annotated (TFMOT default 8-bit config)" in rows["dense"]
    inp = next(ln for ln in rows.values() if "InputLayer" in ln)  # the model's real input, not a stock phrase
    assert "the model's input: int32 [1, " in inp and "token ids" in inp
    assert "known to crash" in r.stdout and "expect dynamic to be deployed" in r.stdout  # pixel-7: int8, then dynamic
    r = run_cli(["build", str(tmp_path / "attn.h5"), "--data", str(data_yaml), "--dry-run", "--prune", "0.5",
                 "--qat", "--json"])
    layers = {row["layer"]: row for row in json.loads(r.stdout)["layers"]}
    ln = layers["layer_normalization"]
    assert ln["prune"].startswith("left alone (LayerNormalization") and "output quantized" in ln["qat"]
    assert layers["dropout"]["prune"] == "- (no weights)" and "removed" in layers["dropout"]["converter"]
    assert "dilation" in layers["conv1d"]["converter"] and layers["multi_head_attention"]["prune"].startswith("pruned")
    # a recipe naming a layer its pass cannot handle is an error
    (tmp_path / "r.yaml").write_text(yaml.safe_dump({"passes": [{"prune": {"layers": {"names": "layer_norm.*"}}}]}))
    line = _one_line(run_cli(["build", str(tmp_path / "attn.h5"), "--data", str(data_yaml), "--dry-run", "--recipe",
                              str(tmp_path / "r.yaml")]))
    assert "layer_normalization (LayerNormalization)" in line and "prune cannot handle" in line


@pytest.mark.parametrize("args, says", [
    (["banking77-cnn", "--pad-token", "[PAD]"], "--pad-token applies when MODEL is a model file"),
    (["m.h5", "--data", "banking77", "--unk-token", "[UNK]"], "--unk-token applies with --vocab"),
    (["m.h5", "--data", "banking77", "--pad-token", "[PAD]"], "--pad-token applies with --vocab or --hf-tokenizer"),
    (["m.h5", "--data", "banking77", "--vocab", "v.txt", "--pad-token", " "], "not a token"),
])
def test_special_token_flags_are_checked_before_any_work(args, says):
    r = run_cli(["build", *args, "--dry-run"])
    assert r.exit_code == 2 and says in r.output and len(r.output.strip().splitlines()) == 1, r.output


# ------------------------------------------------------------------------------ the real pipeline
@pytest.mark.slow
def test_pretrained_model_with_its_own_vocabulary_reaches_its_own_accuracy(tmp_path, data_yaml):
    """A model trained elsewhere on ids from its own vocabulary file (special tokens not at 0/1): edgeopt feeds the
    artifact exactly those ids, so the build measures the model's own accuracy; a Hugging Face tokenizers file of
    the same vocabulary gives the same."""
    from edgeopt.data import load_dataset
    from edgeopt.data.tokenizer import WordTokenizer
    from edgeopt.specs import DataSpec

    ds = load_dataset(DataSpec.model_validate(DATA))
    fitted = WordTokenizer.fit(ds.train.texts, seq_len=SEQ, max_vocab=2000)
    vocab = ["[UNK]"] + fitted.vocab[2:600] + ["[PAD]"] + fitted.vocab[600:]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = WordTokenizer.from_vocab_file(tmp_path / "vocab.txt", SEQ, pad_token="[PAD]", unk_token="[UNK]")
    assert tok.pad_id == 599 and tok.unk_id == 0
    K = _K()
    m = _model("cnn", vocab=len(vocab))
    m.compile(optimizer=K.optimizers.Adam(0.005),
              loss=K.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(tok.encode_batch(ds.train.texts), np.asarray(ds.train.labels), epochs=4, batch_size=32, verbose=0)
    own = float((m.predict(tok.encode_batch(ds.test.texts), verbose=0).argmax(1) == np.asarray(ds.test.labels))
                .mean())
    m.save(tmp_path / "pre.h5")
    spec = {"name": "pre", "data": DATA, "model": {"path": "pre.h5"},
            "tokenizer": {"vocab_file": "vocab.txt", "pad_token": "[PAD]", "unk_token": "[UNK]"}}
    (tmp_path / "pre.yaml").write_text(yaml.safe_dump(spec))
    man = _build([str(tmp_path / "pre.yaml"), "--target", "pixel-7", "--ptq", "float32", "--out",
                  str(tmp_path / "out")])
    assert man["passes"][0]["step"] == "load" and man["model_source"]["weights"] == "used as given"
    assert man["metrics"]["keras_accuracy"] == pytest.approx(own, abs=1e-6)
    assert abs(man["metrics"]["accuracy"] - own) <= 1 / 300 + 1e-9  # the float32 artifact: same ids, at most 1 flip
    assert man["tokenizer"]["pad_id"] == 599 and own >= 0.93  # the majority class is 0.893 of this slice
    # the same from the command line, no spec file: --pad-token and --unk-token name the special tokens
    args = ["build", str(tmp_path / "pre.h5"), "--data", str(data_yaml), "--vocab", str(tmp_path / "vocab.txt"),
            "--target", "pixel-7", "--ptq", "float32", "--dry-run", "--json"]
    r = run_cli([*args, "--pad-token", "[PAD]", "--unk-token", "[UNK]"])
    assert r.exit_code == 0, r.output
    assert {k: json.loads(r.stdout)["tokenizer"][k] for k in ("pad_token", "unk_token")} == {
        "pad_token": "[PAD]", "unk_token": "[UNK]"}
    bare = run_cli(args)  # <pad>/<unk> assumed: not in this vocabulary, and the message names the flag
    assert bare.exit_code == 2 and "--pad-token" in bare.output and len(bare.output.strip().splitlines()) == 1
    # the same vocabulary as a Hugging Face tokenizers file
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    hf = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    hf.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    hf.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                pre_tokenizers.Split(Regex(r"\w+|[^\w\s]"), behavior="isolated")])
    hf.save(str(tmp_path / "hf.json"))
    man2 = _build([str(tmp_path / "pre.h5"), "--data", str(data_yaml), "--hf-tokenizer", str(tmp_path / "hf.json"),
                   "--target", "pixel-7", "--ptq", "float32", "--out", str(tmp_path / "out2")])
    assert man2["metrics"]["keras_accuracy"] == pytest.approx(own, abs=1e-6)
    from tokenizers import Tokenizer as T2

    ids = T2.from_file(str(tmp_path / "out2" / "tokenizer.json")).encode(ds.test.texts[0]).ids
    assert ids == tok.encode(ds.test.texts[0])  # the build's tokenizer.json is a standard file giving the same ids
    r = run_cli(["validate", str(tmp_path / "out" / "model_float32.tflite"), "--model", str(tmp_path / "pre.yaml"),
                 "--target", "pixel-7", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["accuracy"] == man["metrics"]["accuracy"]


@pytest.mark.slow
def test_builder_model_trains_and_compresses(tmp_path):
    (tmp_path / "mybuilders.py").write_text(
        "import tf_keras as K\n"
        "def gru_classifier(vocab_size, num_classes, seq_len, units=8):\n"
        "    i = K.Input((seq_len,), dtype='int32')\n"
        "    x = K.layers.Embedding(vocab_size, 16)(i)\n"
        "    x = K.layers.GRU(units)(x)\n"
        "    return K.Model(i, K.layers.Dense(num_classes, activation='softmax')(x))\n")
    spec = {"name": "built", "data": DATA, "tokenizer": {"seq_len": SEQ, "max_vocab": 2000},
            "model": {"builder": "mybuilders:gru_classifier", "params": {"units": 12}},
            "training": {"epochs": 5, "batch_size": 32, "learning_rate": 0.01}}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec))
    man = _build([str(tmp_path / "b.yaml"), "--target", "raspberry-pi-4", "--prune", "0.5", "--out",
                  str(tmp_path / "out")])
    assert man["model_source"]["kind"] == "builder" and man["model_source"]["output"] == "probabilities"
    assert man["model_source"]["builder_source_sha256"]
    assert [p["step"] for p in man["passes"]][:2] == ["train", "prune"]
    assert man["passes"][1]["weights"]["zero_fraction"] > 0.3
    # the majority class (ham) is 0.893 of this test slice, what a model that learned nothing scores; this one
    # (and the distilled one below) reach about 0.96 here
    assert man["metrics"]["accuracy"] >= 0.93
    # distillation into the same softmax builder, from a built-in teacher trained on the same data
    teacher = {"name": "teacher", "data": DATA, "tokenizer": {"seq_len": SEQ, "max_vocab": 2000},
               "architecture": {"name": "text_cnn", "params": {"embed_dim": 16, "filters": 16, "kernel_sizes": [3]}},
               "training": {"epochs": 4, "batch_size": 32, "learning_rate": 0.01}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(teacher))
    dm = _build([str(tmp_path / "b.yaml"), "--target", "raspberry-pi-4", "--distill", str(tmp_path / "t.yaml"),
                 "--out", str(tmp_path / "distilled")])
    d = dm["passes"][0]
    assert d["step"] == "distill" and d["teacher"]["architecture"] == "text_cnn" and dm["metrics"]["accuracy"] >= 0.93
    spec["model"]["params"] = {"bogus": 1}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec))
    assert "calling it failed" in _one_line(run_cli(["build", str(tmp_path / "b.yaml"), "--dry-run"]))


@pytest.mark.slow
def test_prune_and_cluster_reach_recurrent_weights_in_the_file(tmp_path, data_yaml):
    """SimpleRNN, Bidirectional(GRU) and LSTM: pruned and clustered, read back from the deployed .tflite, where the
    SimpleRNN and GRU kernels live in while-loop subgraphs and the LSTM's in the fused op's gate tensors."""
    from edgeopt.inspect import inspect_tflite

    _model("rnns").save(tmp_path / "rnns.keras")
    man = _build([str(tmp_path / "rnns.keras"), "--data", str(data_yaml), "--target", "raspberry-pi-4",
                  "--prune", "0.6", "--cluster", "8", "--out", str(tmp_path / "out")])
    rec = {p["step"]: p for p in man["passes"]}
    assert man["passes"][0]["step"] == "load"
    assert {"simple_rnn", "bidirectional", "lstm"} <= set(rec["prune"]["layers"]) <= set(rec["cluster"]["layers"])
    info = inspect_tflite(tmp_path / "out" / man["metrics"]["artifact"])  # the deployed (dynamic) file
    # (dynamic range leaves tensors under 1,024 values float32; the all-zero initial states are not weights)
    big = [w for w in info["weights"] if np.prod(w["shape"]) >= 256 and w["unique_values"] > 1]
    in_loops = [w for w in big if w.get("subgraph")]
    assert len(in_loops) >= 6, info["weights"]  # SimpleRNN 2 + Bi-GRU 2x2 kernels, in while-loop bodies
    for w in big:
        assert w["zero_fraction"] >= 0.55, w  # 0.6 sparsity survives into every kernel
        assert w.get("unique_per_channel_max", w["unique_values"]) <= 9, w  # 8 centroids (+ the zeros)
    layers = {r["layer"]: r for r in man["model_source"]["layers"]}
    assert layers["lstm"]["prune"].startswith("pruned") and layers["simple_rnn"]["cluster"].startswith("clustered")


def test_keras3_layer_without_tf_keras_equivalent_is_named(tmp_path, data_yaml):
    import keras as k3

    i = k3.Input((SEQ,), dtype="int32")
    y = k3.layers.LayerNormalization(rms_scaling=True)(k3.layers.Embedding(3000, 8)(i))
    k3.Model(i, k3.layers.Dense(2)(k3.layers.GlobalMaxPooling1D()(y))).save(tmp_path / "rms.keras")
    line = _one_line(run_cli(["build", str(tmp_path / "rms.keras"), "--data", str(data_yaml), "--dry-run"]))
    assert "rms_scaling=True" in line and "tf_keras" in line
    i = k3.Input((SEQ,), dtype="int32")
    y = k3.layers.GRU(8)(k3.layers.Embedding(3000, 8)(i))
    k3.Model(i, k3.layers.Dense(2)(y)).save(tmp_path / "ok3.keras")
    r = run_cli(["build", str(tmp_path / "ok3.keras"), "--data", str(data_yaml), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    rb = json.loads(r.stdout)["model_source"]["keras3_rebuild"]
    assert rb["max_abs_difference"] <= 1e-4 and rb["compared_examples"] == 200



@pytest.mark.slow
def test_tune_takes_a_users_model_file(tmp_path, data_yaml):
    """`edgeopt tune` on the user's own Keras file (trained on the data first): the grid, a sampled training
    candidate, and the pick built from the file's model."""
    from edgeopt.data import load_dataset
    from edgeopt.data.tokenizer import WordTokenizer
    from edgeopt.registry import load_target
    from edgeopt.specs import DataSpec

    # trained a little first, on the ids edgeopt will feed it (a file that starts at chance stays there: --fit's
    # early stopping sees no dev gain, and a file no better than the majority class never passes)
    ds = load_dataset(DataSpec.model_validate(DATA))
    tok = WordTokenizer.fit(ds.train.texts, seq_len=SEQ, max_vocab=3000)
    K = _K()
    m = _model("cnn")
    m.compile(optimizer=K.optimizers.Adam(0.005), loss=K.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(tok.encode_batch(ds.train.texts), np.asarray(ds.train.labels), epochs=2, batch_size=32, verbose=0)
    m.save(tmp_path / "mine.keras")
    t = load_target("x86-avx2-server").model_dump(mode="json", exclude_none=True)
    t.update(name="server-small", tune={"runtimes": [], "quantizations": ["float32", "dynamic"], "threads": [1]})
    (tmp_path / "server-small.yaml").write_text(yaml.safe_dump(t))
    out = tmp_path / "tune"
    r = run_cli(["tune", str(tmp_path / "mine.keras"), "--data", str(data_yaml), "--fit", "--target",
                 str(tmp_path / "server-small.yaml"), "--trials", "1", "--out", str(out), "-q", "--json", "--host-cost",
                 *FAST_LATENCY])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    rows = json.loads((out / "tune" / "trials.json").read_text())
    assert [x["label"] for x in rows if not x["trains"]] == [  # the preset first, then the target's tune space
        "onnxruntime int8, 1 thread", "onnxruntime float32, 1 thread", "onnxruntime dynamic, 1 thread"]
    assert len([x for x in rows if x["trains"]]) == 1 and s["trial_budget"] == 4
    man = json.loads((out / "build" / "manifest.json").read_text())
    assert man["model_source"]["kind"] == "file" and man["passes"][0]["step"] == "train"
    assert s["pick_build"]["budgets_passed"] and man["metrics"]["test_examples"] == 300


def test_layer_table_names_a_float_input_as_it_is():
    """A model whose input is float32 (ids fed as floats) is described as such, not as int32 token ids."""
    from edgeopt.pipeline.layer_table import layer_rows

    K = _K()
    i = K.Input((12,), dtype="float32")
    x = K.layers.Dense(4)(i)
    rows = {r["type"]: r for r in layer_rows(K.Model(i, x), [], "int8")}
    assert rows["InputLayer"]["converter"] == ("the model's input: float32 [1, 12], token ids given as float32 (the "
                                               "model's own input type)")
