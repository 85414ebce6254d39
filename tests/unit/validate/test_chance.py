"""Better than chance: the exact test against the majority-class rate, and the label order it names."""
import numpy as np

from edgeopt.specs import Budgets
from edgeopt.validate.budgets import check, failures
from edgeopt.validate.chance import chance_level

NAMES = ["ham", "spam", "other"]


def _labels(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice(3, n, p=[0.7, 0.2, 0.1])


def test_a_constant_output_is_no_better_than_chance():
    y = _labels()
    c = chance_level(np.zeros_like(y), y, NAMES)  # always the majority class
    assert not c["passed"] and "'ham'" in c["chance_by"] and c["value"] == c["chance"]
    assert "permuted_accuracy" not in c  # no order explains a constant
    v = check(Budgets(), accuracy=c["value"], accuracy_drop=0.0, size_bytes=1, latency_p90_ms=None,
              chance={"model_int8.tflite": c})
    assert not v.passed and failures(v) == ["better_than_chance: " + next(
        ch.value for ch in v.checks if ch.name == "better_than_chance")]
    assert "no better than chance" in failures(v)[0]


def test_a_good_model_passes_and_a_tiny_split_cannot_tell():
    y = _labels()
    good = y.copy()
    good[:60] = (good[:60] + 1) % 3  # 90% right
    assert chance_level(good, y, NAMES)["passed"]
    small = np.array([0] * 8 + [1] * 3 + [2])  # 12 rows, all right: p = (8/12)^12 = 0.0077, not below 0.001
    c = chance_level(small, small, NAMES)
    assert c["value"] == 1.0 and not c["passed"] and c["p_value"] > 0.001


def test_outputs_in_another_order_are_named():
    y = _labels()
    perm = np.array([1, 2, 0])  # output o of the model means label perm^-1 ...: the model's id for label l is perm[l]
    pred = perm[y]
    pred[:30] = y[:30]  # a little noise
    c = chance_level(pred, y, NAMES)
    assert not c["passed"] and c["permuted_accuracy"] > 0.9 and c["outputs_moved"] == 3
    v = check(Budgets(), accuracy=c["value"], accuracy_drop=0.0, size_bytes=1, latency_p90_ms=None,
              chance={"model.onnx": c})
    msg = failures(v)[0]
    assert "another order" in msg and "labels" in msg and "output 1 reads as 'ham'" in msg


def test_the_verdict_names_both_files_when_both_fail():
    y = _labels()
    c = chance_level(np.zeros_like(y), y, NAMES)
    v = check(Budgets(), accuracy=c["value"], accuracy_drop=0.0, size_bytes=1, latency_p90_ms=None,
              chance={"model_float32.tflite": c, "model_int8.tflite": c})
    (row,) = [ch for ch in v.checks if ch.name == "better_than_chance"]
    assert not row.passed and "model_float32.tflite" in row.value and "model_int8.tflite" in row.value


def test_a_tagger_is_judged_on_its_spans_not_its_token_accuracy():
    """A tagger that finds entities tags fewer tokens 'O' than the majority class, so token accuracy says nothing;
    its exact spans are tested against the best constant tag's."""
    from edgeopt.data.conll import split_scores
    from edgeopt.validate.chance import entity_chance

    names = ["O", "B-person", "I-person", "B-place", "I-place"]
    rng = np.random.default_rng(0)
    gold = [tuple(int(t) for t in rng.choice([0, 0, 0, 0, 1, 3], 12)) for _ in range(300)]
    right = split_scores([list(s) for s in gold], gold, names)
    ok = entity_chance(right, gold, names)
    assert ok["passed"] and ok["value"] == 1.0 and ok["measure"] == "entity span precision"
    none = entity_chance(split_scores([[0] * 12 for _ in gold], gold, names), gold, names)
    assert not none["passed"] and none["rows"] == 0  # all 'O': no span at all
    const = entity_chance(split_scores([[1] * 12 for _ in gold], gold, names), gold, names)
    assert not const["passed"] and "'B-" in const["chance_by"]  # a constant tag is the chance level itself
