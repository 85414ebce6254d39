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
