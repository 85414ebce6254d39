"""Distillation with a transfer set and an ONNX teacher, through the CLI: a Hugging Face-style ONNX classifier
(input_ids, attention_mask and token_type_ids as int64, its WordPiece tokenizer.json and config.json id2label
beside it, its outputs in another label order than the data's) teaches a student spec whose own recipe names it,
with augmented copies and an unlabeled file; the ONNX teacher's accuracy equals its Keras original's; a changed
unlabeled file reruns the pass; a teacher lacking a label of the data is one line before any training."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from conftest import TINY, run_cli, write_spec

pytestmark = pytest.mark.slow
LIMIT = {"train": 1500, "dev": 300, "test": 400}


def _encode(tk, texts, seq_len=32):
    enc = tk.encode_batch(list(texts))
    ids = np.zeros((len(enc), seq_len), np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(enc):
        n = min(len(e.ids), seq_len)
        ids[i, :n], mask[i, :n] = e.ids[:n], 1
    return ids, mask


@pytest.fixture(scope="module")
def onnx_teacher(tmp_path_factory):
    """A mean-of-word-piece-embeddings classifier over all-MiniLM-L6-v2's tokenizer, trained on the student's
    training split, exported with tf2onnx the way a Hugging Face classifier is (three int64 inputs, logits).
    Its output order is the data's label order reversed; config.json's id2label says so."""
    import tf2onnx
    from tokenizers import Tokenizer

    from edgeopt.data.datasets import load_dataset
    from edgeopt.specs import DataSpec
    from edgeopt.teachers.minilm import model_dir
    from edgeopt.tf import keras, set_seed, tf

    K, T = keras(), tf()
    d = tmp_path_factory.mktemp("onnx-teacher")
    shutil.copy(model_dir() / "tokenizer.json", d / "tokenizer.json")
    tk = Tokenizer.from_file(str(d / "tokenizer.json"))
    tk.no_padding()
    tk.no_truncation()
    ds = load_dataset(DataSpec(dataset="banking77", dev_fraction=0.1, limit=LIMIT))
    n = ds.num_classes
    order = list(range(n))[::-1]  # teacher output j is data label order[j]
    to_teacher = {lab: j for j, lab in enumerate(order)}

    set_seed(3)
    ids_in = K.Input((None,), dtype="int64", name="input_ids")
    mask_in = K.Input((None,), dtype="int64", name="attention_mask")
    types_in = K.Input((None,), dtype="int64", name="token_type_ids")
    emb = K.layers.Embedding(tk.get_vocab_size(), 48)(ids_in)
    m = K.layers.Lambda(lambda t: T.cast(t, "float32")[..., None])(mask_in)
    pooled = K.layers.Lambda(lambda a: T.reduce_sum(a[0] * a[1], 1) / T.maximum(T.reduce_sum(a[1], 1), 1.0))(
        [emb, m])
    zero = K.layers.Lambda(lambda t: T.cast(t[:, :1], "float32") * 0.0)(types_in)  # read, as BERT reads it
    logits = K.layers.Dense(n, name="logits")(K.layers.Add()([pooled, zero]))
    model = K.Model([ids_in, mask_in, types_in], logits)
    model.compile(K.optimizers.Adam(0.01), K.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, xm = _encode(tk, ds.train.texts)
    y = np.asarray([to_teacher[int(v)] for v in ds.train.labels])
    model.fit([x, xm, np.zeros_like(x)], y, epochs=12, batch_size=32, verbose=0)
    xt, xtm = _encode(tk, ds.test.texts)
    pred = model.predict([xt, xtm, np.zeros_like(xt)], verbose=0).argmax(1)
    keras_acc = float(np.mean([order[p] == g for p, g in zip(pred, ds.test.labels)]))
    sig = tuple(T.TensorSpec((None, None), T.int64, name=nm) for nm in ("input_ids", "attention_mask",
                                                                          "token_type_ids"))
    tf2onnx.convert.from_keras(model, input_signature=sig, opset=17, output_path=str(d / "model.onnx"))
    names = [ds.label_names[i] for i in order]
    (d / "config.json").write_text(json.dumps({"id2label": {str(j): nm for j, nm in enumerate(names)}}))
    return d, keras_acc, names


def test_an_onnx_classifier_teaches_through_a_transfer_set(tmp_path, onnx_teacher):
    folder, keras_acc, _ = onnx_teacher
    assert keras_acc > 0.3  # 1,500 texts over 77 intents: far above chance (0.013)
    (tmp_path / "t").symlink_to(folder)
    unl = tmp_path / "unlabeled.txt"
    unl.write_text("my card has not come yet\nhow long does a transfer take\ni was charged twice\n", encoding="utf-8")
    spec_path = write_spec(tmp_path / "student.yaml", "student", "text_cnn", TINY["text_cnn"], epochs=4,
                           limit=LIMIT, dev_fraction=0.1)
    spec = yaml.safe_load(spec_path.read_text())
    spec["recipe"] = {"passes": [{"distill": {"teacher": "t/model.onnx",  # paths relative to the spec file
                                              "transfer": {"copies": 1, "unlabeled": "unlabeled.txt"}}}]}
    spec_path.write_text(yaml.safe_dump(spec))
    dry = run_cli(["build", str(spec_path), "-t", "pixel-7", "--dry-run"])
    assert dry.exit_code == 0 and "model.onnx" in dry.output, dry.output
    args = ["build", str(spec_path), "-t", "pixel-7", "--out", str(tmp_path / "o"), "-q", "--json", "--ptq",
            "float32", "--no-count", "--latency-iterations", "20", "--force"]
    r = run_cli(args)
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    d = m["passes"][0]
    t = d["teacher"]
    assert d["step"] == "distill" and t["name"] == "model.onnx" and t["labels_from"] == "config.json"
    assert t["inputs"] == ["attention_mask", "input_ids", "token_type_ids"]
    # ONNX Runtime on the reordered outputs = the Keras model it was exported from (within 2 of 400 texts)
    assert abs(t["accuracy_onnxruntime"] - keras_acc) <= 2 / LIMIT["test"]
    tr = d["transfer"]
    assert tr["unlabeled"] == 3 and tr["augmented"] > 1000 and tr["teacher_mask"] == "[MASK]"
    assert tr["student_mask"] == "unknown token" and tr["teacher_outputs"]["texts"] == tr["augmented"] + 3
    assert m["metrics"]["accuracy"] > 0.2  # far above chance on 77 intents
    report = (tmp_path / "o" / "report.md").read_text(encoding="utf-8")
    assert "distilled from model.onnx (ONNX classifier (77 labels)" in report
    assert "test accuracy of the ONNX teacher in ONNX Runtime" in report and "and 3 unlabeled texts" in report
    again = json.loads(run_cli(args).stdout)["passes"][0]
    assert again["cached"] == "disk"
    unl.write_text("my card has not come yet\nwhere is my money\n", encoding="utf-8")  # another file: rerun
    changed = json.loads(run_cli(args).stdout)["passes"][0]
    assert changed["cached"] is False and changed["transfer"]["unlabeled"] == 2
    assert changed["teacher"]["cached"] == "disk"  # the teacher's scores on the splits are kept


def test_an_onnx_teacher_without_a_label_of_the_data_is_one_line(tmp_path, onnx_teacher):
    folder, _, names = onnx_teacher
    for f in ("model.onnx", "tokenizer.json"):
        shutil.copy(folder / f, tmp_path / f)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["not_a_banking_intent", *names[1:]]) + "\n")
    spec = write_spec(tmp_path / "student.yaml", "student", "text_cnn", TINY["text_cnn"], limit=LIMIT,
                      dev_fraction=0.1)
    r = run_cli(["build", str(spec), "-t", "pixel-7", "--distill", str(tmp_path / "model.onnx"),
                 "--out", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 2 and "config.json" in r.output and "teacher_labels" in r.output  # no id2label beside it
    rec = tmp_path / "recipe.yaml"
    rec.write_text(yaml.safe_dump({"passes": [{"distill": {"teacher": "model.onnx", "teacher_labels": "labels.txt"}}]}))
    r = run_cli(["build", str(spec), "-t", "pixel-7", "--recipe", str(rec), "--out", str(tmp_path / "o"), "-q"])
    assert r.exit_code == 2, r.output
    line = r.output.strip().splitlines()[-1]
    assert f"the teacher has no label {names[0]!r}" in line and "Fix:" in line
    assert not (tmp_path / "o").exists()


def test_a_classifier_embedding_can_start_from_minilm_vectors():
    """text_cnn embeddings_init: all-MiniLM-L6-v2: the untrained model's table is the tokenizer's words' MiniLM
    vectors projected on embed_dim principal components (trainable from there); near words start near."""
    from edgeopt.architectures import TextCNNConfig
    from edgeopt.data.tokenizer import RegexTokenizer
    from edgeopt.sources import source_for
    from edgeopt.specs import ModelSpec
    from edgeopt.teachers.minilm import project, word_vectors

    from edgeopt.data.datasets import load_dataset
    from edgeopt.specs import DataSpec

    tok = RegexTokenizer.fit(load_dataset(DataSpec(dataset="banking77", limit={"train": 3000})).train.texts, seq_len=8)
    spec = ModelSpec.model_validate({"name": "s", "data": {"dataset": "banking77"},
                                     "architecture": {"name": "text_cnn", "params": {
                                         "embed_dim": 16, "filters": 8, "embeddings_init": "all-MiniLM-L6-v2"}}})
    model = source_for(spec).initial(tok.vocab_size, 3, 8, vocab=tuple(tok.vocab))
    table = model.get_layer("embedding").get_weights()[0]
    np.testing.assert_allclose(table, project(word_vectors(tok.vocab, 2), 16, 2), atol=1e-6)
    assert model.get_layer("embedding").trainable and not table[0].any()
    i = {w: tok.vocab.index(w) for w in ("refund", "refunded", "euro", "dollars", "card")}

    def cos(a, b):
        return float(table[a] @ table[b] / np.linalg.norm(table[a]) / np.linalg.norm(table[b]))

    assert cos(i["refund"], i["refunded"]) > cos(i["refund"], i["euro"]) + 0.1
    assert cos(i["euro"], i["dollars"]) > cos(i["euro"], i["card"]) + 0.1
    with pytest.raises(ValueError, match="set embed_dim to 384 or less"):
        TextCNNConfig(embed_dim=512, embeddings_init="all-MiniLM-L6-v2")
