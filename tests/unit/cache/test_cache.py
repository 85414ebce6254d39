"""Pass outputs are cached by (parent, pass, config, versions): a changed conversion does not retrain."""
import json

import pytest

from conftest import FAST_LATENCY, TINY, run_cli, write_spec

pytestmark = pytest.mark.slow
LIMIT = {"train": 600, "dev": 100, "test": 150}


def _build(spec, out, *extra):
    r = run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(out), "-q", "--json", *FAST_LATENCY, *extra])
    assert r.exit_code in (0, 3), r.output
    return json.loads(r.stdout)


def test_changed_conversion_reuses_cached_passes_and_no_cache_recomputes(tmp_path, monkeypatch):
    spec = write_spec(tmp_path / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=2, limit=LIMIT,
                      dataset="sst2")
    first = _build(spec, tmp_path / "a", "--prune", "0.5")
    assert [(r["step"], r.get("cached")) for r in first["passes"]][:3] == [
        ("train", False), ("prune", False), ("strip_pruning", None)]

    import edgeopt.passes.prune
    import edgeopt.passes.train

    def must_not_run(*a, **k):
        raise AssertionError("a cached pass ran again")

    monkeypatch.setattr(edgeopt.passes.train, "train", must_not_run)
    monkeypatch.setattr(edgeopt.passes.prune, "prune", must_not_run)
    second = _build(spec, tmp_path / "b", "--prune", "0.5", "--ptq", "float16")
    assert [r.get("cached") for r in second["passes"] if r["step"] in ("train", "prune")] == ["disk", "disk"]
    assert second["recipe"]["convert"]["quantization"] == "float16"
    assert second["passes"][1]["accuracy"] == first["passes"][1]["accuracy"]  # same weights, same float export
    monkeypatch.undo()
    third = _build(spec, tmp_path / "c", "--prune", "0.5", "--no-cache")
    assert [r.get("cached") for r in third["passes"] if r["step"] in ("train", "prune")] == [False, False]


def test_compression_build_end_to_end_with_report(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=2, limit=LIMIT,
                      dataset="sst2")
    m = _build(spec, tmp_path / "o", "--prune", "0.5", "--cluster", "8", "--qat")
    steps = [r["step"] for r in m["passes"]]
    assert steps == ["train", "prune", "strip_pruning", "cluster", "strip_clustering", "pcqat", "convert"]
    conv = m["passes"][-1]
    assert conv["weights"]["zero_fraction"] > 0.4 and conv["weights"]["unique_values_max"] <= 9
    assert m["metrics"]["artifact"] == "model_int8.tflite" and m["metrics"]["size_ratio_vs_float32"]["gzip"] > 4
    report = (tmp_path / "o" / "report.md").read_text()
    assert "## Passes" in report and "| pcqat" not in report and "| convert |" in report and "-> `pcqat" in report
    r = run_cli(["inspect", str(tmp_path / "o" / "model_int8.tflite"), "--json"])
    weights = json.loads(r.stdout)["weights"]
    assert all({"zero_fraction", "unique_values", "dtype"} <= set(w) for w in weights)


def test_distill_from_a_teacher_spec(tmp_path):
    limit = {"train": 2000, "dev": 200, "test": 300}
    teacher = write_spec(tmp_path / "teacher.yaml", "teacher", "text_cnn", TINY["text_cnn"], epochs=3, limit=limit,
                         dataset="sst2", learning_rate=0.005)
    student = write_spec(tmp_path / "student.yaml", "student", "text_cnn",
                         {"embed_dim": 16, "filters": 16, "kernel_sizes": [2, 3]}, epochs=4, limit=limit,
                         dataset="sst2", learning_rate=0.005)
    m = _build(student, tmp_path / "o", "--distill", str(teacher))
    d = m["passes"][0]
    assert d["step"] == "distill" and d["teacher"]["name"] == "teacher"
    assert 0 < d["teacher"]["accuracy_float32_tflite"] <= 1 and d["temperature"] == 4.0
    assert m["metrics"]["accuracy"] > 0.55  # SST-2's test split is balanced: above chance
    other = write_spec(tmp_path / "other.yaml", "other", "text_cnn", TINY["text_cnn"], limit=LIMIT, dataset="smsspam")
    r = run_cli(["build", str(student), "--distill", str(other), "--dry-run"])
    assert r.exit_code == 2 and "trained on other data" in r.stderr
