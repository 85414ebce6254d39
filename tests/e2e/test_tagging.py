"""Token classification (issue 15): CoNLL data through the spec, the tokenizer on the given tokens, padding out of
loss and metrics, taggers built end to end into int8 TFLite and ONNX with entity F1 read from the artifact,
compression passes on taggers read back from the file, and what is not built yet refused before training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import FAST_LATENCY, TINY_TAGGERS as TAG_TINY, loosen_latency, run_cli, write_spec


def tagger_spec(path: Path, arch: str = "cnn_tagger", epochs: int = 4, limit=None, **changes) -> Path:
    write_spec(path, path.stem, arch, TAG_TINY[arch], dataset="wnut17", seq_len=32, epochs=epochs,
               learning_rate=0.005, limit=limit or {"train": 1500, "dev": 300, "test": 300})
    d = yaml.safe_load(path.read_text())
    d["task"] = "token_classification"
    d["tokenizer"]["min_freq"] = 2
    for k, v in changes.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    path.write_text(yaml.safe_dump(d))
    return path


def x86_tflite(path: Path, **budgets) -> Path:
    """x86-avx2-server running LiteRT int8 with XNNPACK (nothing to emulate or count)."""
    from edgeopt.registry import load_target

    d = load_target("x86-avx2-server").model_dump(mode="json", exclude_none=True)
    d.update(name=path.stem, runtime={"name": "litert", "format": "tflite", "threads": 1, "delegates": ["xnnpack"]},
             quantization="int8")
    d.pop("onnx", None)
    d["budgets"] = {**d["budgets"], **budgets}
    path.write_text(yaml.safe_dump(d))
    return path


def write_conll(path: Path, sentences) -> Path:
    path.write_text("\n\n".join("\n".join(f"{t}\t{g}" for t, g in s) for s in sentences) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------ spec and data
def test_task_and_data_must_agree_one_line_exit_2(tmp_path):
    bad = tagger_spec(tmp_path / "a.yaml", data={"dataset": "banking77"})
    r = run_cli(["build", str(bad), "--dry-run"])
    assert r.exit_code == 2 and "task token_classification does not fit the data (banking77)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    bad = tagger_spec(tmp_path / "b.yaml", architecture={"name": "bilstm", "params": {"embed_dim": 8, "units": 4}})
    r = run_cli(["build", str(bad), "--dry-run"])
    assert r.exit_code == 2 and "needs a tagger: one of bilstm_tagger, cnn_tagger" in r.stderr
    bad = write_spec(tmp_path / "c.yaml", "c", "cnn_tagger", TAG_TINY["cnn_tagger"])
    r = run_cli(["build", str(bad), "--dry-run"])
    assert r.exit_code == 2 and "tags tokens; set 'task: token_classification'" in r.stderr
    bad = tagger_spec(tmp_path / "d.yaml", tokenizer={"kind": "regex"})
    r = run_cli(["build", str(bad), "--dry-run"])
    assert r.exit_code == 2 and "remove tokenizer.kind regex" in r.stderr


def test_what_taggers_do_not_do_yet_is_refused_before_training(tmp_path):
    spec = tagger_spec(tmp_path / "t.yaml")
    for args, says in ((["-t", "pixel-7-gpu"], "GPU validation of a tagger"),
                       (["-t", "x86-avx2-server", "--distill", "banking77-cnn"], "must be a tagger with the student"),
                       (["-t", "x86-avx2-server", "--distill", "all-MiniLM-L6-v2"], "a tagger needs a tagger teacher")):
        r = run_cli(["build", str(spec), *args, "--dry-run", "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and says in r.stderr, (args, r.output)
        assert not (tmp_path / "o").exists()
    r = run_cli(["tune", str(spec), "--target", "x86-avx2-server", "--out", str(tmp_path / "tu")])
    assert r.exit_code == 2 and "searching for a tagger" in r.stderr and not (tmp_path / "tu").exists()


def test_conll_files_as_data_with_a_dev_split_carved_and_unknown_tags_refused(tmp_path):
    from edgeopt.data.datasets import load_dataset
    from edgeopt.errors import DataError
    from edgeopt.specs import DataSpec

    sents = [[("Paris", "B-location"), ("is", "O"), ("big", "O")], [("Ann", "B-person"), ("Lee", "I-person")]] * 10
    train = write_conll(tmp_path / "train.conll", sents)
    test = write_conll(tmp_path / "test.conll", sents[:3])
    ds = load_dataset(DataSpec(files={"train": str(train), "test": str(test)}))
    assert ds.task == "token_classification" and ds.label_names == ("O", "B-location", "I-location", "B-person",
                                                                    "I-person")
    assert len(ds.dev) == 2 and len(ds.train) == 18 and "random 10%" in ds.provenance["dev_split"]
    assert ds.test.tokens[0] == ("Paris", "is", "big") and ds.test.labels[0] == (1, 0, 0)
    assert ds.test.texts[1] == "Ann Lee" and ds.test.labels[1] == (3, 4)
    odd = write_conll(tmp_path / "odd.conll", [[("Acme", "B-corporation")]])
    with pytest.raises(DataError, match=r"odd.conll: tags \['B-corporation'\] do not occur in the training file"):
        load_dataset(DataSpec(files={"train": str(train), "test": str(odd)}))


def test_the_tokenizer_gives_one_id_per_given_token_and_unknown_tokens_their_shape(tmp_path):
    from edgeopt.data.tokenizer import TokenTokenizer, load_tokenizer, word_shape

    sents = ["@paul's new iPhone 15 !", "I ❤ New York", "don't stop"]
    tok = TokenTokenizer.fit(sents, seq_len=10, lowercase=True)
    assert "@paul's" in tok.vocab and "new" in tok.vocab and "don't" in tok.vocab  # never split further
    assert tok.vocab[:10] == ["<pad>", "<unk>", *TokenTokenizer.SHAPES]
    ids = tok.encode_batch(["@PAUL's  Unseen\tYork unseen NASA @bob #tag https://t.co/x 2017 ..."])[0].tolist()
    shape = [tok.index[s] for s in ("<unk:Xx>", "<unk:x>", "<unk:XX>", "<unk:@>", "<unk:#>", "<unk:url>",
                                    "<unk:0>", "<unk:.>")]
    assert ids == [tok.index["@paul's"], shape[0], tok.index["york"], *shape[1:]]
    assert [word_shape(w) for w in ("A", "Ab", "AB", "a1", "WWW.x.com", "-", "@", "é")] == [
        "<unk:Xx>", "<unk:Xx>", "<unk:XX>", "<unk:0>", "<unk:url>", "<unk:.>", "<unk:.>", "<unk:x>"]
    files = tok.save(tmp_path)
    assert {f.name for f in files} == {"edgeopt_tokenizer.json", "vocab.txt"}  # no WordLevel file: it has one unk
    again = load_tokenizer(tmp_path)
    assert type(again) is TokenTokenizer and again.encode("I ❤ new Jersey") == tok.encode("I ❤ new Jersey")
    assert "unknown" in again.config() and len(tok.encode("a " * 30)) == 10
    # case_ids: 4 x the word's id + its case class (lower, Capitalized, ALL CAPS, no letter), kept through save/load
    cased = TokenTokenizer.fit(sents, seq_len=6, lowercase=True, case_ids=True)
    york, unk_x, unk_dot = cased.index["york"], cased.index["<unk:Xx>"], cased.index["<unk:.>"]
    assert cased.encode("york York YORK Zed ...") == [4 * york, 4 * york + 1, 4 * york + 2, 4 * unk_x + 1,
                                                      4 * unk_dot + 3, 0]
    assert cased.config()["case_ids"] is True and "4 x the word's id" in cased.config()["ids"]
    (tmp_path / "cased").mkdir()
    cased.save(tmp_path / "cased")
    assert load_tokenizer(tmp_path / "cased").encode("New YORK") == cased.encode("New YORK") != tok.encode("New YORK")


def test_padding_never_enters_the_loss_or_the_metrics():
    from edgeopt.passes.common import PAD_TAG, PassContext, masked_token_accuracy

    y = np.array([[1, 0, PAD_TAG, PAD_TAG], [2, 2, 0, PAD_TAG]], np.int32)
    logits = np.full((2, 4, 3), -3.0, np.float32)
    logits[0, 0, 1] = logits[0, 1, 0] = 3.0  # both right
    logits[1, 0, 2] = logits[1, 1, 0] = logits[1, 2, 0] = 3.0  # 2 of 3 right
    m = masked_token_accuracy()
    m.update_state(y, logits)
    assert abs(float(m.result()) - 4 / 5) < 1e-6
    ctx = PassContext(x_train=None, y_train=None, x_dev=None, y_dev=None, rebuild=None, seed=0, tags=("O", "B-x",
                                                                                                     "I-x"))
    loss = ctx.loss()
    changed = logits.copy()
    changed[:, 3, :] = [9.0, -9.0, 0.0]  # anything at padded positions
    changed[0, 2, :] = [-9.0, 9.0, 0.0]
    assert abs(float(loss(y, logits)) - float(loss(y, changed))) < 1e-6
    changed[1, 2, :] = [-9.0, 9.0, 0.0]  # a real token: the loss moves
    assert float(loss(y, changed)) > float(loss(y, logits)) + 0.1


def test_the_outside_shift_is_chosen_on_dev_entity_f1_and_kept_in_the_bias():
    """Hand-worked: three real tokens whose O logit leads by 0.7, 0.9 and 2.0. Unshifted every token is O (F1 0);
    a shift of 0.75 finds the B but not the I (a wrong span, F1 0); 1.0 finds both (F1 1); past 2.0 the third
    token turns B. The first best is 1.0, and it is written into the Dense bias."""
    from edgeopt.passes.common import PAD_TAG, PassContext, shift_outside
    from edgeopt.tf import keras

    K = keras()
    tokens = K.Input((4,), dtype="int32")
    emb = K.layers.Embedding(4, 3, name="embedding")
    dense = K.layers.Dense(3, name="logits")
    model = K.Model(tokens, dense(emb(tokens)))
    emb.set_weights([np.array([[0, 0, 0], [1.0, 0.3, 0], [1.0, 0, 0.1], [2.0, 0, 0]], np.float32)])
    dense.set_weights([np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    x = np.array([[1, 2, 3, 0]], np.int32)
    ctx = PassContext(x_train=x, y_train=None, x_dev=x, y_dev=np.array([[1, 2, 0, PAD_TAG]], np.int32),
                      rebuild=None, seed=0, tags=("O", "B-person", "I-person"))
    rec = shift_outside(model, ctx)
    assert rec == {"outside_shift": 1.0, "dev_entity_f1_unshifted": 0.0, "dev_entity_f1_shifted": 1.0}
    kernel, bias = dense.get_weights()
    assert np.array_equal(kernel, np.eye(3)) and bias.tolist() == [-1.0, 0.0, 0.0]
    assert model.predict(x, verbose=0).argmax(-1)[0, :3].tolist() == [1, 2, 0]  # padding is never scored
    no_o = PassContext(x_train=x, y_train=None, x_dev=x, y_dev=ctx.y_dev, rebuild=None, seed=0,
                       tags=("B-person", "I-person", "X"))
    assert shift_outside(model, no_o) == {} and dense.get_weights()[1].tolist() == [-1.0, 0.0, 0.0]


def test_pretrained_word_vectors_give_unseen_words_a_meaning(tmp_path):
    """all-MiniLM-L6-v2's input embeddings (a fixed file): the vocabulary adds its whole words after the training
    tokens, a word's row is the mean of its pieces', standardized per dimension; padding is zero."""
    from edgeopt.architectures import CNNTaggerConfig
    from edgeopt.data.tokenizer import TokenTokenizer
    from edgeopt.teachers.minilm import WORD_DIM, whole_words, word_vectors

    words = whole_words()
    assert 20000 < len(words) < 30522 and "london" in words and not any(w.startswith("##") for w in words)
    assert "[CLS]" not in words and "[unused0]" not in words
    tok = TokenTokenizer.fit(["zqxj london zqxj"], seq_len=4, min_freq=1, extra_words=["London", "paris", "a b"])
    assert tok.vocab[10:] == ["zqxj", "london", "paris"]  # training tokens first; a duplicate or a space dropped
    assert TokenTokenizer.fit(["x y"], seq_len=4, max_vocab=11, extra_words=words).vocab_size == 11
    skip = 10
    vocab = tok.vocab + ["berlin", "madrid", "the", "zqxjunseenword"]
    vec = word_vectors(vocab, skip)
    assert vec.shape == (len(vocab), WORD_DIM) and vec.dtype == np.float32
    assert not vec[0].any() and vec[1:skip].std() > 0.1  # shape tokens: distinct fixed rows
    body = vec[skip:]
    assert np.allclose(body.mean(0), 0, atol=1e-5) and np.allclose(body.std(0), 0.3, atol=1e-3)

    def cos(a, b):
        return float(vec[a] @ vec[b] / np.linalg.norm(vec[a]) / np.linalg.norm(vec[b]))

    i = {w: vocab.index(w) for w in ("london", "paris", "berlin", "madrid", "the")}
    assert cos(i["london"], i["paris"]) > cos(i["london"], i["the"]) + 0.1  # cities near each other
    assert cos(i["berlin"], i["madrid"]) > cos(i["berlin"], i["the"]) + 0.1
    assert CNNTaggerConfig(embeddings="all-MiniLM-L6-v2").embed_dim == WORD_DIM
    bad = tagger_spec(tmp_path / "w.yaml", architecture={"params": {**TAG_TINY["cnn_tagger"], "embed_dim": 512,
                                                                    "embeddings": "all-MiniLM-L6-v2"}})
    r = run_cli(["build", str(bad), "--dry-run"])
    assert r.exit_code == 2 and "all-MiniLM-L6-v2 are 384 wide; set embed_dim to 384 or less" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # a smaller width: the vectors on their principal components, still near for near words, padding zero
    from edgeopt.teachers.minilm import project

    assert project(vec, 48, skip).shape == (len(vocab), 48)  # more dimensions than words: zero columns
    vocab = tok.vocab[:skip] + whole_words()[:3000] + ["london", "paris", "berlin", "madrid", "the"]
    small = project(word_vectors(vocab, skip), 48, skip)
    assert small.shape == (len(vocab), 48) and not small[0].any()
    assert abs(float(small[skip:].std()) - 0.3) < 1e-3
    i = {w: len(vocab) - 5 + k for k, w in enumerate(("london", "paris", "berlin", "madrid", "the"))}

    def cos2(a, b):
        return float(small[a] @ small[b] / np.linalg.norm(small[a]) / np.linalg.norm(small[b]))

    assert cos2(i["london"], i["paris"]) > cos2(i["london"], i["the"]) + 0.1


# ----------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="session")  # its xdist group's worker builds it once, even when other modules' tests interleave
def tagged(tmp_path_factory):
    """A tiny dilated-CNN tagger on a slice of WNUT-17, built into int8 TFLite (x86, XNNPACK) and int8 ONNX."""
    d = tmp_path_factory.mktemp("tagger")
    # all 3,394 training sentences: on fewer, a tagger this small predicts only O for the first epochs
    spec = tagger_spec(d / "tiny-tagger.yaml", "cnn_tagger", epochs=10, limit={"train": 3394, "dev": 300, "test": 300},
                       training={"patience": 4})
    tfl = x86_tflite(d / "x86-tflite.yaml")
    r = run_cli(["build", str(spec), "-t", str(tfl), "-t", "x86-avx2-server", "--out", str(d / "out"), "--json",
                 "--quiet", "--format", "both", *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    return {"dir": d, "spec": spec, "manifests": {m["target"]: m for m in json.loads(r.stdout)}}


def _recount(out: Path, manifest: dict) -> dict:
    """Entity scores recomputed here from the deployed file's own outputs over the whole test split."""
    from edgeopt import runtimes
    from edgeopt.data import load_dataset
    from edgeopt.data.conll import entity_scores
    from edgeopt.data.tokenizer import load_tokenizer
    from edgeopt.specs import ModelSpec

    spec = ModelSpec.model_validate(manifest["spec"])
    ds = load_dataset(spec.data)
    x = load_tokenizer(out).encode_batch(ds.test.texts)
    logits = runtimes.load(out / manifest["metrics"]["artifact"]).run(x)
    names = ds.label_names
    gold = [[names[t] for t in tags] for tags in ds.test.labels]
    pred = [[names[i] for i in row[:len(g)]] + ["O"] * max(0, len(g) - len(row)) for row, g in
            zip(logits.argmax(-1), gold)]
    return entity_scores(gold, pred)


@pytest.mark.slow
def test_tiny_tagger_end_to_end_int8_tflite_and_onnx(tagged):
    out = tagged["dir"] / "out"
    for target, fmt, ext in (("x86-tflite", "tflite", "model_int8.tflite"), ("x86-avx2-server", "onnx",
                                                                             "model_int8.onnx")):
        m = tagged["manifests"][target]
        met = m["metrics"]
        assert m["task"] == "token_classification" and met["artifact"] == ext, (target, met["artifact"])
        assert m["recipe"]["convert"] == {**m["recipe"]["convert"], "format": fmt, "quantization": "int8"}
        # the headline is entity F1 read from the deployed file over the whole test split, recomputed here
        again = _recount(out / target, m)
        assert met["entities"]["micro"] == again["micro"] and met["entity_f1"] == again["micro"]["f1"]
        assert set(met["entities"]["per_type"]) <= {"corporation", "creative-work", "group", "location", "person",
                                                    "product"}
        assert met["entities"]["sentences"] == met["test_examples"] == 300
        assert 0 <= met["entity_f1"] <= 1 and 0 <= met["baseline_entity_f1"] <= 1
        assert abs(met["entity_f1_drop"] - (met["baseline_entity_f1"] - met["entity_f1"])) < 1e-6
        # token accuracy counts real tokens only: the per-class supports add up to the test split's tokens
        tokens = sum(min(len(t.split()), 32) for t in _test_texts(m))
        assert sum(met["per_class"]["support"]) == tokens and met["entities"]["tokens"] >= tokens
        assert met["accuracy"] == pytest.approx(met["entities"]["token_accuracy"], abs=0.02)
        tr = met["truncation"]
        assert tr["seq_len"] == 32 and tr["test"]["of"] == 300
        assert tr["test"]["tokens_cut"] == sum(max(0, len(t.split()) - 32) for t in _test_texts(m))
        assert m["training"]["best_dev_entity_f1"] > 0 and m.get("metadata") is None
        report = (out / target / "report.md").read_text()
        assert "## Entities (exact spans" in report and "entity F1" in report
    # --format both: the other format from the same weights, scored the same way and compared token by token
    met = tagged["manifests"]["x86-tflite"]["metrics"]
    cf = met["cross_format"]
    assert cf["format"] == "onnx" and 0 <= cf["entity_f1"] <= 1 and abs(cf["entity_f1"] - met["entity_f1"]) < 0.05
    assert cf["agreement_with_deployed"]["examples"] == sum(met["per_class"]["support"])
    assert cf["agreement_with_deployed"]["argmax_agreement"] > 0.95
    # the int8 TFLite file is integer inside: embedding, both convs and the dense layer hold int8 weights
    from edgeopt.inspect import inspect_tflite

    info = inspect_tflite(out / "x86-tflite" / "model_int8.tflite")
    assert info["weight_dtypes"].get("int8", 0) >= 4 and info["outputs"][0]["shape"][1:] == [32, 13], info


def _test_texts(manifest: dict) -> list[str]:
    from edgeopt.data import load_dataset
    from edgeopt.specs import ModelSpec

    return list(load_dataset(ModelSpec.model_validate(manifest["spec"]).data).test.texts)


@pytest.mark.slow
def test_predict_prints_the_entities_a_tagger_finds(tagged):
    out = tagged["dir"] / "out" / "x86-tflite"
    text = "I saw Taylor Swift in New York with my Samsung phone"
    r = run_cli(["predict", str(out), text, "--json"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.stdout)["predictions"][0]
    assert row["tokens"] == text.split() and len(row["tags"]) == len(row["tokens"]) and not row["truncated"]
    from edgeopt.data.conll import entities

    assert {(e["type"], e["start"], e["end"]) for e in row["entities"]} == entities(row["tags"])
    for e in row["entities"]:
        assert e["text"] == " ".join(text.split()[e["start"]:e["end"]]) and 0 < e["score"] <= 1
    plain = run_cli(["predict", str(out), text])
    assert plain.exit_code == 0 and (("no entities" in plain.stdout) == (not row["entities"]))


@pytest.mark.slow
def test_verify_and_validate_gate_a_taggers_entity_f1(tagged, tmp_path):
    out = tagged["dir"] / "out" / "x86-tflite"
    m = tagged["manifests"]["x86-tflite"]
    base = tmp_path / "bl.json"
    r = run_cli(["verify", str(out), "--baseline", str(base), "--update", "--iterations", "30"])
    assert r.exit_code == 0, r.output
    loosen_latency(base)
    b = json.loads(base.read_text())
    # the per-example records are per real token; entity F1 is recomputed from the file over whole sentences
    assert b["entity_f1"] == m["metrics"]["entity_f1"] and b["test_examples"] == sum(m["metrics"]["per_class"]["support"])
    assert b["accuracy"] == m["metrics"]["accuracy"]
    ok = run_cli(["verify", str(out), "--baseline", str(base), "--iterations", "30", "--json"])
    assert ok.exit_code == 0, ok.output
    c = next(c for c in json.loads(ok.stdout)["checks"] if c["metric"] == "entity_f1")
    assert c["passed"] and c["current"] == c["baseline"]
    b["entity_f1"] = min(1.0, m["metrics"]["entity_f1"] + 0.05)  # a baseline 0.05 F1 better: the gate (0.01) fails
    base.write_text(json.dumps(b))
    bad = run_cli(["verify", str(out), "--baseline", str(base), "--iterations", "30", "--json"])
    c = next(c for c in json.loads(bad.stdout)["checks"] if c["metric"] == "entity_f1")
    assert bad.exit_code == 3 and not c["passed"], c
    v = run_cli(["validate", str(out / m["metrics"]["artifact"]), "-m", str(tagged["spec"]), "-t",
                 str(tagged["dir"] / "x86-tflite.yaml"), "--json"])
    assert v.exit_code == 0, v.output
    res = json.loads(v.stdout)
    assert res["entity_f1"] == m["metrics"]["entity_f1"] and res["accuracy"] == m["metrics"]["accuracy"]
    r = run_cli(["validate", str(out / m["metrics"]["artifact"]), "-m", str(tagged["spec"]), "-t", "pixel-7",
                 "--gpu"])
    assert r.exit_code == 2 and "for a tagger they are not built yet" in r.stderr


@pytest.mark.slow
@pytest.mark.emulator
def test_a_tagger_runs_on_the_emulated_arm64_cpu(tagged):
    """--emulate on a tagger: the guest's outputs compared with the host's and scored per real token."""
    m = tagged["manifests"]["x86-tflite"]
    art = tagged["dir"] / "out" / "x86-tflite" / m["metrics"]["artifact"]
    r = run_cli(["validate", str(art), "-m", str(tagged["spec"]), "-t", "pixel-7", "--emulate", "--cpu",
                 "cortex-a76", "--sample", "40", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)["emulator"]
    row = res["cpus"][0]
    assert row["loaded"] and row["delegate_applied"] and row["parity"]["passed"], row
    assert res["sample"]["examples"] == 40 and res["scored"] == res["sample"]["scored"] > 40  # tokens, not sentences
    assert row["accuracy"] == res["host"]["accuracy"] and row["instructions"]["xnnpack_on"] > 0


@pytest.mark.slow
def test_entity_f1_budgets_gate_the_build(tagged, tmp_path):
    strict = x86_tflite(tmp_path / "strict.yaml", min_f1=0.99, max_f1_drop=0.5)
    r = run_cli(["build", str(tagged["spec"]), "-t", str(strict), "--out", str(tmp_path / "o"), *FAST_LATENCY])
    assert r.exit_code == 3, r.output
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    checks = {c["name"]: c for c in m["budgets"]["checks"]}
    assert not checks["min_f1"]["passed"] and checks["min_f1"]["unit"] == "entity F1"
    assert checks["max_f1_drop"]["passed"]
    met = m["metrics"]  # the summary table leads with entity F1, not the per-token figures
    assert "FAILED" in r.stdout and "min_f1" in r.stdout, r.stdout
    assert f"entity F1 {met['entity_f1']:.4f}" in r.stdout and "token accuracy" not in r.stdout, r.stdout
    assert "budget failed" in r.stderr and "min_f1" in r.stderr, r.stderr


@pytest.mark.slow
def test_compression_passes_on_taggers_survive_into_the_file(tmp_path):
    from edgeopt.inspect import inspect_tflite

    spec = tagger_spec(tmp_path / "cnn.yaml", "cnn_tagger", epochs=3, limit={"train": 800, "dev": 200, "test": 200})
    tfl = x86_tflite(tmp_path / "x86-tflite.yaml")
    r = run_cli(["build", str(spec), "-t", str(tfl), "--out", str(tmp_path / "pc"), "--prune", "0.5", "--cluster",
                 "8", "--ptq", "float32", "--quiet", "--json", *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    w = inspect_tflite(tmp_path / "pc" / m["metrics"]["artifact"])["weights"]
    convs = [x for x in w if "conv" in x["name"]]
    assert len(convs) == 2 and all(x["zero_fraction"] > 0.4 and x["unique_values"] <= 9 for x in convs), convs
    assert "entity_f1" in m["metrics"]
    # each fine-tune sets the O threshold again (cross-entropy moves it back), recorded in its pass
    for step in ("prune", "cluster"):
        rec = next(p for p in m["passes"] if p["step"] == step)
        assert rec["outside_shift"] in [x / 4 for x in range(17)]
        assert rec["dev_entity_f1_shifted"] >= rec["dev_entity_f1_unshifted"]
    spec = tagger_spec(tmp_path / "lstm.yaml", "bilstm_tagger", epochs=2, limit={"train": 800, "dev": 200,
                                                                                  "test": 200})
    r = run_cli(["build", str(spec), "-t", str(tfl), "--out", str(tmp_path / "pl"), "--prune", "0.5", "--self-distill",
                 "--quiet", "--json", *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    prune = next(p for p in m["passes"] if p["step"] == "prune")
    assert prune["weights"]["zero_fraction"] > 0.3 and "entity_f1" in prune
    assert prune["config"]["self_distill"] == {"alpha": 0.9, "temperature": 2.0} and "outside_shift" in prune


@pytest.mark.slow
def test_a_users_own_tagger_file_is_trained_and_built(tmp_path):
    """The model-file path: a tf_keras tagger saved by the user, fitted on WNUT-17 and built into int8 ONNX; a
    sentence classifier given as a tagger is a one-line error before any training."""
    from edgeopt.tf import keras

    K = keras()
    L = K.layers
    ids = K.Input(shape=(32,), dtype="int32")
    x = L.Embedding(3000, 16, mask_zero=True)(ids)
    x = L.Conv1D(24, 3, padding="same", activation="relu")(x)
    K.Model(ids, L.Dense(13)(x)).save(tmp_path / "mine.keras")
    ids = K.Input(shape=(32,), dtype="int32")
    pooled = L.GlobalMaxPooling1D()(L.Embedding(3000, 8)(ids))
    K.Model(ids, L.Dense(13)(pooled)).save(tmp_path / "classifier.keras")
    spec = tagger_spec(tmp_path / "mine.yaml", epochs=2, limit={"train": 800, "dev": 200, "test": 200},
                       training={"fit": True})
    d = yaml.safe_load(spec.read_text())
    d.pop("architecture")
    d["model"] = {"path": "mine.keras"}
    spec.write_text(yaml.safe_dump(d))
    r = run_cli(["build", str(spec), "-t", "x86-avx2-server", "--out", str(tmp_path / "o"), "--json", "--quiet",
                 *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    assert m["model_source"]["kind"] == "file" and m["metrics"]["artifact"] == "model_int8.onnx"
    assert m["task"] == "token_classification" and 0 <= m["metrics"]["entity_f1"] <= 1
    d["model"] = {"path": "classifier.keras"}
    spec.write_text(yaml.safe_dump(d))
    r = run_cli(["build", str(spec), "-t", "x86-avx2-server", "--out", str(tmp_path / "o2"), "--dry-run"])
    assert r.exit_code == 2 and "a tagger has one [batch, seq_len, num_tags] output" in r.stderr, r.output


@pytest.mark.slow
def test_a_tagger_distilled_from_a_tagger_teacher_per_token(tmp_path):
    limit = {"train": 1200, "dev": 200, "test": 200}
    teacher = tagger_spec(tmp_path / "teacher.yaml", "bilstm_tagger", epochs=3, limit=limit)
    student = tagger_spec(tmp_path / "student.yaml", "cnn_tagger", epochs=3, limit=limit)
    r = run_cli(["build", str(student), "-t", "x86-avx2-server", "--distill", str(teacher), "--out", str(tmp_path / "o"),
                 "--json", "--quiet", *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    d = next(p for p in m["passes"] if p["step"] == "distill")
    assert d["teacher"]["name"] == "teacher" and d["teacher"]["architecture"] == "bilstm_tagger"
    assert 0 <= d["teacher"]["entity_f1_float32_tflite"] <= 1 and "best_dev_entity_f1" in d
    assert m["training"]["best_dev_entity_f1"] == d["best_dev_entity_f1"] and "entity_f1" in m["metrics"]


@pytest.mark.slow
def test_a_tagger_on_pretrained_word_vectors_keeps_them_frozen_in_the_file(tmp_path):
    """embeddings: all-MiniLM-L6-v2 (with case ids): the vocabulary holds the model's whole words besides the training tokens, the
    exported float32 file's embedding table is exactly their vectors (frozen through training), and the train pass
    sets the O threshold on dev entity F1 and records it."""
    import onnx
    from onnx import numpy_helper

    from edgeopt.data import load_dataset
    from edgeopt.data.tokenizer import TokenTokenizer, _token_key, load_tokenizer
    from edgeopt.specs import ModelSpec
    from edgeopt.teachers.minilm import whole_words, word_vectors

    params = {k: v for k, v in TAG_TINY["cnn_tagger"].items() if k != "embed_dim"}
    spec = tagger_spec(tmp_path / "pre.yaml", epochs=2, limit={"train": 3394, "dev": 300, "test": 300},
                       architecture={"params": {**params, "embeddings": "all-MiniLM-L6-v2", "case": True}},
                       tokenizer={"max_vocab": 40000, "min_freq": 1})
    r = run_cli(["build", str(spec), "-t", "x86-avx2-server", "--out", str(tmp_path / "o"), "--json", "--quiet",
                 *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output  # 3: a 9 MB tagger fails the profile's 4 MB size budget
    m = json.loads(r.stdout)
    out = tmp_path / "o"
    tok = load_tokenizer(out)
    ds = load_dataset(ModelSpec.model_validate(m["spec"]).data)
    train_words = {w.lower() for t in ds.train.texts for w in t.split()}
    unseen = [w for t in ds.test.texts for w in t.split() if w.lower() not in train_words and w.isalpha()]
    known = [w for w in unseen if w.lower() in tok.index]
    assert len(known) > len(unseen) / 2  # most test words the training split lacks still have a vector
    keys = {_token_key(w, True) for w in whole_words()}  # as looked up: NFKC, lower-cased
    assert tok.vocab_size > 20000 and set(tok.vocab) >= {k for k in keys if len(k.split()) == 1}
    base = onnx.load(str(out / m["metrics"]["baseline"]["artifact"]))
    table = next(numpy_helper.to_array(t) for t in base.graph.initializer if tuple(t.dims) == (tok.vocab_size, 384))
    skip = len(TokenTokenizer.SPECIALS) + len(TokenTokenizer.SHAPES)
    assert np.array_equal(table, word_vectors(tok.vocab, skip))  # pretrained and frozen, into the file
    # case: the file splits 4 x word id + case class itself, and a word's case changes what it predicts
    assert tok.case_ids and "Div" in {n.op_type for n in base.graph.node}  # FloorMod: x - 4 * (x / 4)
    from edgeopt import runtimes

    ids = tok.encode_batch(["he met john in london", "he met John in London"])
    logits = runtimes.load(out / m["metrics"]["artifact"]).run(ids)
    assert not np.allclose(logits[0, :5], logits[1, :5])
    tr = next(p for p in m["passes"] if p["step"] == "train")
    assert tr["outside_shift"] in [x / 4 for x in range(17)] and m["training"]["outside_shift"] == tr["outside_shift"]
    assert tr["dev_entity_f1_shifted"] >= tr["dev_entity_f1_unshifted"]
    assert m["metrics"]["entity_f1"] > 0.05  # 2 epochs of a tiny CNN on 300 test sentences: a loose floor


@pytest.mark.slow
def test_a_taggers_pretrained_table_cut_to_its_words_and_projected(tmp_path):
    """pretrained_words: training and embed_dim 32: the vocabulary is the training tokens alone (no whole words
    added), and the file's frozen table is their vectors on the 32 principal components, a tenth of the width."""
    import onnx
    from onnx import numpy_helper

    from edgeopt.data.tokenizer import TokenTokenizer, load_tokenizer
    from edgeopt.teachers.minilm import project, word_vectors

    params = {**TAG_TINY["cnn_tagger"], "embed_dim": 32, "embeddings": "all-MiniLM-L6-v2",
              "pretrained_words": "training"}
    spec = tagger_spec(tmp_path / "cut.yaml", epochs=4, limit={"train": 3394, "dev": 300, "test": 300},
                       architecture={"params": params}, tokenizer={"max_vocab": 40000, "min_freq": 1})
    r = run_cli(["build", str(spec), "-t", "x86-avx2-server", "--out", str(tmp_path / "o"), "--json", "--quiet",
                 *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    out = tmp_path / "o"
    tok = load_tokenizer(out)
    assert 5000 < tok.vocab_size < 20000  # the training tokens only (with the whole words: over 31,000)
    base = onnx.load(str(out / m["metrics"]["baseline"]["artifact"]))
    table = next(numpy_helper.to_array(t) for t in base.graph.initializer if tuple(t.dims) == (tok.vocab_size, 32))
    skip = len(TokenTokenizer.SPECIALS) + len(TokenTokenizer.SHAPES)
    np.testing.assert_allclose(table, project(word_vectors(tok.vocab, skip), 32, skip), atol=1e-5)  # frozen
    assert m["metrics"]["entity_f1"] > 0  # it finds entities (the best constant tag, O, finds none)
    bad = tagger_spec(tmp_path / "bad.yaml", architecture={"params": {**TAG_TINY["cnn_tagger"],
                                                                     "pretrained_words": "training"}})
    r = run_cli(["build", str(bad), "--dry-run"])
    assert r.exit_code == 2 and "pretrained_words applies to pretrained embeddings" in r.stderr


def test_tagger_report_snippet_runs_and_its_page_draws_its_plots(tagged, tmp_path):
    """The tagger's report: its Python snippet run as printed from the build directory; report.html in headless
    Chromium with its training curve, per-entity-type F1 and accuracy-against-size plots drawn, no errors."""
    from conftest import open_in_chromium, python_snippets, run_snippet

    out = tagged["dir"] / "out" / "x86-tflite"
    snips = python_snippets((out / "report.md").read_text(encoding="utf-8"))
    assert len(snips) == 1 and "load_tokenizer" in snips[0]
    pairs = run_snippet(snips[0], out)
    assert pairs.startswith("[('Going', ") and "Paris" in pairs
    probe, _ = open_in_chromium(out / "report.html", tmp_path)
    assert probe["errors"] == []
    ids = {f["id"] for f in probe["figures"]}
    assert {"plot-training", "plot-per-class", "plot-artifacts", "plot-confusion"} <= ids
    assert all(f["width"] > 200 and f["painted"] > 10 for f in probe["figures"]), probe
