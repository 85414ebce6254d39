"""The distillation transfer set (passes/transfer.py) and its settings: augmentation (masking, nearest-word
replacement, n-gram cuts), unlabeled texts, the mask each tokenizer reads, the ONNX teacher's label mapping and
padding, the distill benchmark's grid and table. No TensorFlow: the fast tier."""
from __future__ import annotations

import os

import numpy as np
import pytest

from edgeopt.errors import InputError
from edgeopt.passes import transfer as tr
from edgeopt.recipe import DistillConfig, RecipeFile, TransferConfig

TEXTS = ["My card was declined at the shop!", "How do I top up my account?", "Why is my transfer pending",
         "I lost my card, help.", "Can I change my PIN at an ATM?"]
NEIGHBOURS = {"card": ("wallet", "cheque"), "declined": ("refused",), "shop": ("store", "market"),
              "account": ("balance",), "transfer": ("payment", "deposit"), "lost": ("misplaced",)}


def _cfg(**kw):
    return TransferConfig(**{"copies": 3, "mask": 0.0, "replace": 0.0, "ngram": 0.0, **kw})


def test_same_settings_same_set_other_seed_other_set():
    a = tr.build(TEXTS, _cfg(mask=0.2, replace=0.3, ngram=0.3), NEIGHBOURS)
    b = tr.build(TEXTS, _cfg(mask=0.2, replace=0.3, ngram=0.3), NEIGHBOURS)
    c = tr.build(TEXTS, _cfg(mask=0.2, replace=0.3, ngram=0.3, seed=1), NEIGHBOURS)
    assert a.texts("[MASK]") == b.texts("[MASK]") and a.digest() == b.digest()
    assert a.texts("[MASK]") != c.texts("[MASK]") and a.digest() != c.digest()


def test_copies_equal_to_a_training_text_are_dropped():
    t = tr.build(TEXTS, _cfg(), NEIGHBOURS)  # nothing changes a copy
    assert len(t) == 0 and t.record["duplicates_dropped"] == 3 * len(TEXTS)


def test_masking_keeps_punctuation_and_renders_per_tokenizer():
    t = tr.build(["I lost my card, help."], _cfg(copies=1, mask=1.0), {})
    assert t.texts("[MASK]") == ["[MASK] [MASK] [MASK] [MASK], [MASK]."]
    assert t.texts("\ue000") == ["\ue000 \ue000 \ue000 \ue000, \ue000."]
    assert t.texts(None) == [", ."]  # a student without a reachable unknown token: the masked words left out
    assert t.record["words_masked"] == 5


def test_replacement_uses_neighbours_and_keeps_case():
    t = tr.build(["Card declined AT the SHOP"], _cfg(copies=20, replace=1.0), NEIGHBOURS)
    for text in t.texts(None):
        w = text.split()
        assert w[0] in ("Wallet", "Cheque") and w[1] == "refused" and w[2] == "AT" and w[3] == "the"
        assert w[4] in ("STORE", "MARKET")  # upper case kept
    assert len(t) == 4  # 2 x 1 x 2 distinct copies; the rest were duplicates
    assert t.record["words_replaced"] == 60


def test_ngram_cuts_are_windows_of_the_text():
    t = tr.build(TEXTS, _cfg(copies=10, ngram=1.0, ngram_max=3), NEIGHBOURS)
    assert len(t) > 0
    for text in t.texts(None):
        words = text.split()
        assert 1 <= len(words) <= 3
        assert any(" ".join(words) in " ".join(s.split()) for s in TEXTS)


def test_unlabeled_texts_join_the_set(tmp_path):
    f = tmp_path / "in-domain.txt"
    f.write_text("where is my refund\n\n  card stuck in the machine  \n", encoding="utf-8")
    t = tr.build(TEXTS, _cfg(copies=0, unlabeled=str(f)), {})
    assert t.texts("[MASK]") == ["where is my refund", "card stuck in the machine"]
    assert t.record["unlabeled"] == 2 and t.record["unlabeled_file"] == "in-domain.txt"
    assert tr.build(TEXTS, _cfg(copies=0, unlabeled=str(f), max_unlabeled=1), {}).texts(None) == ["where is my refund"]


@pytest.mark.parametrize("content,expect", [(None, "does not exist"), (b"\xff\xfe bad", "is not UTF-8"),
                                            (b"\n  \n", "holds no text")])
def test_unlabeled_file_errors_name_the_file_and_the_fix(tmp_path, content, expect):
    f = tmp_path / "u.txt"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(InputError) as e:
        tr.read_unlabeled(str(f), 10)
    msg = str(e.value)
    assert "distill.transfer.unlabeled" in msg and str(f) in msg and expect in msg and "Fix:" in msg
    assert "\n" not in msg


def test_nearest_neighbours_by_cosine():
    words = ["a", "b", "c", "d"]
    v = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, -0.1]], np.float32)
    nn = tr.nearest_neighbours(words, v, 2)
    assert nn["a"] == ("b", "c") and nn["c"] == ("b", "a") and nn["d"][0] == "c"
    assert all(w not in nn[w] for w in words)


def test_vocabulary_is_alphabetic_lower_case_by_frequency():
    assert tr.vocabulary(["My card, my CARD!", "a PIN 1234 card"]) == ["card", "my", "pin"]


def test_each_tokenizer_reads_the_student_mask_as_one_unknown_token():
    from edgeopt.data.tokenizer import RegexTokenizer, WordTokenizer

    for cls in (WordTokenizer, RegexTokenizer):
        tok = cls.fit(TEXTS, seq_len=12)
        m = tr.unknown_text(tok)
        assert m is not None
        ids = list(tok.encode_batch([f"card {m}"])[0][:2])
        assert ids[1] == tok.unk_id and ids[0] != tok.unk_id


def test_settings_are_checked():
    with pytest.raises(ValueError, match="mask \\+ replace"):
        TransferConfig(mask=0.6, replace=0.5)
    with pytest.raises(ValueError, match="empty transfer set"):
        TransferConfig(copies=0)
    with pytest.raises(ValueError, match="fine_tune_teacher is for teacher all-MiniLM-L6-v2"):
        DistillConfig(teacher="banking77-transformer", fine_tune_teacher={})
    with pytest.raises(ValueError, match="teacher_labels is for an ONNX teacher"):
        DistillConfig(teacher="minilm", teacher_labels=["a", "b"])
    assert DistillConfig(teacher="minilm", fine_tune_teacher={"epochs": 2}).fine_tune_teacher.epochs == 2


def test_recipe_paths_are_relative_to_the_yaml(tmp_path):
    r = RecipeFile(passes=({"distill": {"teacher": "t/model.onnx", "teacher_labels": "t/labels.txt",
                                        "transfer": {"copies": 2, "unlabeled": "u.txt"}}},)).relative_to(tmp_path)
    (_, cfg), = r.parsed()
    assert cfg.teacher == str(tmp_path / "t/model.onnx") and cfg.teacher_labels == str(tmp_path / "t/labels.txt")
    assert cfg.transfer.unlabeled == str(tmp_path / "u.txt")
    spec_teacher = RecipeFile(passes=({"distill": {"teacher": "banking77-transformer"}},)).relative_to(tmp_path)
    assert spec_teacher.parsed()[0][1].teacher == "banking77-transformer"  # a name, not a path


def test_onnx_teacher_labels_are_mapped_by_name():
    from edgeopt.teachers.onnx import label_map

    teacher = ["Lost Card", "card_arrival", "refund", "extra"]
    assert list(label_map(teacher, ["card_arrival", "lost_card", "refund"], "t")) == [1, 0, 2]
    with pytest.raises(InputError, match="the teacher has no label 'top_up'.*1 of 2 missing"):
        label_map(teacher, ["refund", "top_up"], "t")


def test_an_onnx_teacher_pads_with_its_tokenizers_own_padding_id(tmp_path):
    """A tokenizer.json whose padding settings name the id (9 here, no [PAD] token in its vocabulary): short texts
    are padded with 9, not with 0 (the graph returns each row's largest and smallest input id)."""
    import onnx
    from onnx import TensorProto, helper
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from edgeopt.teachers.onnx import OnnxTeacherRef, classifier

    tk = Tokenizer(WordLevel({"[UNK]": 0, "a": 1, "b": 2, "c": 3, "<p>": 9}, unk_token="[UNK]"))
    tk.pre_tokenizer = Whitespace()
    tk.enable_padding(pad_id=9, pad_token="<p>")
    tk.save(str(tmp_path / "tokenizer.json"))
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])
    nodes = [helper.make_node("ReduceMax", ["input_ids"], ["mx"], axes=[1], keepdims=1),
             helper.make_node("ReduceMin", ["input_ids"], ["mn"], axes=[1], keepdims=1),
             helper.make_node("Concat", ["mx", "mn"], ["both"], axis=1),
             helper.make_node("Cast", ["both"], ["logits"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "pad", [ids], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what this ONNX Runtime reads (onnx's default is newer)
    onnx.save(model, str(tmp_path / "m.onnx"))
    ref = OnnxTeacherRef(str(tmp_path / "m.onnx"), str(tmp_path / "tokenizer.json"), ("x", "y"), "test")
    clf = classifier(ref)
    assert clf.pad_id == 9
    np.testing.assert_array_equal(clf.logits(["a b c", "b"]), [[3, 1], [9, 2]])
    assert classifier(ref) is clf  # loaded once per process: the plan's check and the build share it
    tk.enable_padding(pad_id=8, pad_token="<q>")
    tk.save(str(tmp_path / "tokenizer.json"))
    os.utime(tmp_path / "tokenizer.json", ns=(1, 1))  # another modification time, even within the clock's tick
    assert classifier(ref) is not clf and classifier(ref).pad_id == 8


def test_a_model_specs_own_recipe_is_checked_and_its_paths_are_relative(tmp_path):
    from edgeopt.errors import SpecError
    from edgeopt.specs import load_model_spec_file

    f = tmp_path / "s.yaml"
    base = "name: s\ndata: {dataset: banking77}\narchitecture: {name: text_cnn}\nrecipe:\n  passes:\n"
    f.write_text(base + "    - distill: {teacher: minilm, transfer: {copies: 0}}\n")
    with pytest.raises(SpecError) as e:
        load_model_spec_file(f)
    assert str(f) in str(e.value) and "field 'recipe': passes[0].distill.transfer" in str(e.value)
    assert "empty transfer set" in str(e.value)
    f.write_text(base + "    - distill: {teacher: minilm, transfer: {copies: 1, unlabeled: u.txt}}\n")
    (_, cfg), = load_model_spec_file(f).recipe.parsed()
    assert cfg.teacher == "all-MiniLM-L6-v2" and cfg.transfer.unlabeled == str(tmp_path / "u.txt")


def test_the_distill_benchmarks_grid_names_its_sizes_and_variants_and_its_table_is_ordered():
    """benchmarks/distill.py: the grid's sizes and variants exist, and the table groups seeds and sorts by data set,
    size (smallest first) and variant, whatever order the rows ran in."""
    import importlib.util
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[3] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location("distill_bench", bench / "distill.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(bench))
    for ds, (sizes, copies) in mod.GRID.items():
        assert ds in mod.REFERENCE and len(sizes) == 3 and copies >= 1
        assert set(sizes) <= set(mod.SST2_SIZES if ds == "sst2" else mod.SIZES)
    assert set(mod.GRID_VARIANTS) <= set(mod.VARIANTS) and len(mod.GRID_VARIANTS) == 4

    def row(ds, size, var, seed, acc, copies=0):
        return {"dataset": ds, "size": size, "variant": var, "seed": seed, "copies": copies, "accuracy": acc,
                "macro_f1": acc, "dev_accuracy": None, "size_bytes": 1000, "instructions_a76": 10,
                "teacher_accuracy": None}

    md = mod.table([row("sst2", "tiny", "plain", 42, 0.8), row("banking77", "reference", "plain", 42, 0.9),
                    row("banking77", "tiny", "init+augment", 42, 0.7, copies=1),
                    row("banking77", "tiny", "plain", 43, 0.6), row("banking77", "tiny", "plain", 42, 0.8)])
    body = [ln for ln in md.splitlines() if ln.startswith("| banking77") or ln.startswith("| sst2")]
    assert [ln.split(" | ")[:4] for ln in body] == [
        ["| banking77", "tiny", "plain", "2"], ["| banking77", "tiny", "init+augment (1 copy)", "1"],
        ["| banking77", "reference", "plain", "1"], ["| sst2", "tiny", "plain", "1"]]
    assert "0.7000 ± 0.1414" in body[0]  # the mean and standard deviation over the seeds run
