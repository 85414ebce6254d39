from edgeopt.specs import Budgets
from edgeopt.validate.budgets import check, failures
from edgeopt.validate.accuracy import accuracy, parity
import numpy as np


def test_all_pass_and_each_failure_named():
    b = Budgets(max_accuracy_drop=0.01, max_size_bytes=1000, max_latency_p90_ms=2.0, min_accuracy=0.5)
    ok = check(b, accuracy=0.9, accuracy_drop=0.01, size_bytes=1000, latency_p90_ms=2.0)
    assert ok["passed"] and len(ok["checks"]) == 4
    bad = check(b, accuracy=0.4, accuracy_drop=0.02, size_bytes=1001, latency_p90_ms=None)
    assert not bad["passed"] and not any(c["passed"] for c in bad["checks"])
    msgs = failures(bad)
    assert "max_size_bytes: measured 1001 bytes > limit 1000" in msgs
    assert "min_accuracy: measured 0.4 fraction < limit 0.5" in msgs


def test_no_budgets_passes():
    assert check(Budgets(), accuracy=0, accuracy_drop=1, size_bytes=10**9, latency_p90_ms=None)["passed"]


def test_accuracy_and_parity():
    ref = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    got = np.array([[0.9, 0.1], [0.5, 0.4], [2.0, 1.0]])
    assert accuracy(got, [0, 1, 0]) == 2 / 3
    p = parity(ref, got)
    assert p["argmax_agreement"] == round(2 / 3, 6) and p["max_abs_diff"] == 0.6 and p["examples"] == 3


def test_broken_export_fails_even_when_the_drop_looks_fine():
    b = Budgets(max_accuracy_drop=0.01)
    assert b.min_export_agreement == 0.99  # on by default for every target
    v = check(b, accuracy=0.5, accuracy_drop=0.0, size_bytes=1, latency_p90_ms=1.0, export_agreement=0.47)
    assert not v["passed"] and failures(v) == ["min_export_agreement: measured 0.47 fraction < limit 0.99"]


def test_no_count_skips_the_instruction_budgets_with_the_reason_and_nothing_else():
    from edgeopt.registry import load_target
    from edgeopt.validate.budgets import NO_COUNT, skipped_by

    pixel = load_target("pixel-7")
    assert skipped_by(pixel, None) == {} and skipped_by(pixel, True) == {}
    skip = skipped_by(pixel, False)
    assert skip == {"max_instructions_per_inference": NO_COUNT}
    b = Budgets(max_instructions_per_inference=5_000_000, max_size_bytes=1000)
    v = check(b, accuracy=0.9, accuracy_drop=0.0, size_bytes=999, latency_p90_ms=None, skipped=skip)
    ins = next(c for c in v["checks"] if c["name"] == "max_instructions_per_inference")
    assert v["passed"] and ins["skipped"] == NO_COUNT and ins["value"] is None and failures(v) == []
    # a skip never hides another budget's failure, nor a count that was made
    v = check(b, accuracy=0.9, accuracy_drop=0.0, size_bytes=1001, latency_p90_ms=None, skipped=skip)
    assert not v["passed"] and failures(v) == ["max_size_bytes: measured 1001 bytes > limit 1000"]
    v = check(b, accuracy=0.9, accuracy_drop=0.0, size_bytes=999, latency_p90_ms=None, instructions=6_000_000,
              instructions_cpu="cortex-a76", skipped=skip)
    assert not v["passed"] and not any(c["skipped"] for c in v["checks"])
    # without --no-count, a missing count still fails
    v = check(b, accuracy=0.9, accuracy_drop=0.0, size_bytes=999, latency_p90_ms=None)
    assert not v["passed"]


def test_a_failed_size_budget_names_what_drives_the_size_and_the_knobs():
    from edgeopt.tf import keras
    from edgeopt.validate.size_drivers import describe

    K = keras()
    i = K.Input((24,), dtype="int32")
    x = K.layers.GlobalMaxPooling1D()(K.layers.Embedding(20000, 128, name="embedding")(i))
    m = K.Model(i, K.layers.Dense(77)(x))
    hint = describe(m, "int8", 2311, "file")
    assert "the vocabulary 20,000 x embedding width 128 = 2,560,000 weights in Embedding 'embedding', 100% of" in hint
    assert "the tokenizer uses 2,311 of its 20,000 rows" in hint and "input_dim" in hint
    assert "tokenizer.max_vocab" in describe(m, "float32", 20000, "architecture") and "uses" not in describe(
        m, "float32", 20000, "architecture")
    b = Budgets(max_size_bytes=1_000_000)
    v = check(b, accuracy=0.9, accuracy_drop=0.0, size_bytes=2_600_000, latency_p90_ms=None, size_hint=hint)
    assert failures(v) == [f"max_size_bytes: measured 2600000 bytes > limit 1000000; {hint}"]
    # a passing size budget carries no hint
    v = check(b, accuracy=0.9, accuracy_drop=0.0, size_bytes=999, latency_p90_ms=None, size_hint=hint)
    assert v["passed"] and v["checks"][0]["hint"] is None
