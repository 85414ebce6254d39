"""The manifest's one schema: closed at every level edgeopt composes, frozen typed results, optional keys written
only when given, and each validator's own section."""
import json

import pytest
from pydantic import ValidationError

from edgeopt.manifest import ArtifactRecord, Manifest, Metrics
from edgeopt.results import Attempt, BudgetCheck, Conversion, Verdict


def _metrics(**extra):
    return {"artifact": "model_int8.tflite", "accuracy": 0.9, "test_examples": 10,
            "latency_budget_row": {"threads": 1, "xnnpack": True}, **extra}


def test_metrics_refuse_a_key_nobody_declared():
    Metrics.model_validate(_metrics())
    with pytest.raises(ValidationError, match="accuracy_typo"):
        Metrics.model_validate(_metrics(accuracy_typo=0.5))


def test_optional_keys_are_written_only_when_given():
    """A classifier's metrics have no tagger keys, a side file no role; a key given as null stays null."""
    m = Metrics.model_validate(_metrics(accuracy_drop=None))
    out = m.model_dump(mode="json")
    assert "entity_f1" not in out and "cross_format" not in out and out["accuracy_drop"] is None
    side = ArtifactRecord(path="vocab.txt", format="txt", sha256="0" * 64, size_bytes=3, gzip_bytes=20)
    assert set(side.model_dump()) == {"path", "format", "sha256", "size_bytes", "gzip_bytes"}


def test_verdict_and_conversion_are_frozen_and_read_as_the_json_does():
    v = Verdict(passed=False, checks=(BudgetCheck(name="max_size_bytes", limit=10, value=11, unit="bytes",
                                                  passed=False),))
    assert v["passed"] is False and v["checks"][0]["name"] == "max_size_bytes" and v.failed() == v.checks
    with pytest.raises(ValidationError):
        v.passed = True  # frozen
    with pytest.raises(KeyError):
        v["nothing"]
    c = Conversion(asked="int8", deployed="dynamic", fell_back=True,
                   attempts=(Attempt(mode="int8", outcome="crashed", error="SIGSEGV", layer_types=("LSTM",)),
                             Attempt(mode="dynamic", outcome="converted")))
    assert json.loads(c.model_dump_json())["attempts"] == [
        {"mode": "int8", "outcome": "crashed", "error": "SIGSEGV", "layer_types": ["LSTM"]},
        {"mode": "dynamic", "outcome": "converted"}]
    with pytest.raises(ValidationError):
        Attempt(mode="int8", outcome="exploded")


def test_the_manifest_is_closed_at_the_top():
    assert Manifest.model_config["extra"] == "forbid"
    for name in ("metrics", "artifacts", "data", "emulator", "conversion", "budgets"):
        assert name in Manifest.model_fields


def test_every_validator_names_its_manifest_section():
    """A validator either writes its record under its own section of a build manifest or leaves it to the
    metrics; the sections are the manifest's declared keys, one validator each."""
    from edgeopt.validate.measure import VALIDATORS

    sections = [v.section for v in VALIDATORS if v.section]
    assert len(sections) == len(set(sections))
    assert set(sections) <= set(Manifest.model_fields)
    assert all(hasattr(v, "section") for v in VALIDATORS)
