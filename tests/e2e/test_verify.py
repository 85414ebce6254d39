"""`edgeopt verify`: the regression gate re-measures the artifact and compares it with a baseline."""
import json
import shutil

import numpy as np
import pytest

from conftest import loosen_latency, reseal, run_cli
from edgeopt.manifest import encode_correct

pytestmark = pytest.mark.slow


@pytest.fixture
def build_copy(multi_build, tmp_path):
    d = tmp_path / "build"
    shutil.copytree(multi_build["out"] / "x86-avx2-server", d)
    return d


def _verify(build, baseline, *extra):
    return run_cli(["verify", str(build), "--baseline", str(baseline), "--iterations", "30", *extra])


def test_update_then_verify_passes(build_copy, tmp_path):
    bl = tmp_path / "baseline.json"
    r = _verify(build_copy, bl, "--update")
    assert r.exit_code == 0 and "baseline written" in r.output
    b = json.loads(bl.read_text())
    assert b["model"] == "tiny-cnn" and b["target"] == "x86-avx2-server" and b["tolerances"]["accuracy_alpha"] == 0.001
    loosen_latency(bl)
    r = _verify(build_copy, bl, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["passed"] and {c["metric"] for c in out["checks"]} >= {"accuracy", "size_bytes", "latency_p50_ms"}


def test_broken_artifact_is_caught(build_copy, tmp_path):
    """Changed weights in the deployed file: verify re-measures it and fails on accuracy (exit 3)."""
    import onnx
    from onnx import numpy_helper

    bl = tmp_path / "baseline.json"
    assert _verify(build_copy, bl, "--update").exit_code == 0
    path = build_copy / "model_int8.onnx"
    m = onnx.load(str(path))
    rng = np.random.default_rng(0)
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.int8 and a.size > 1000:  # the quantized weights: scramble them
            init.CopyFrom(numpy_helper.from_array(rng.permutation(a.ravel()).reshape(a.shape), init.name))
    onnx.save(m, str(path))
    msg = _verify(build_copy, bl).stderr
    assert "model_int8.onnx: its SHA-256 differs from the one manifest.json records" in msg, msg
    reseal(build_copy)  # a later build whose own manifest lists the broken file: verify re-measures it
    r = _verify(build_copy, bl)
    assert r.exit_code == 3, r.output
    assert "accuracy" in r.output and "FAIL" in r.output and "artifact_sha256" in r.output


def test_impossible_baseline_fails_and_other_machine_skips_latency(build_copy, tmp_path):
    bl = tmp_path / "baseline.json"
    assert _verify(build_copy, bl, "--update").exit_code == 0
    b = json.loads(bl.read_text())
    b["accuracy"] = 1.0  # a baseline that got every example right: this artifact lost all it gets wrong
    b["correct"] = encode_correct(np.ones(b["test_examples"], bool))
    b["machine"] = {**b["machine"], "cpu": "Some Other CPU"}
    bl.write_text(json.dumps(b))
    r = _verify(build_copy, bl, "--json")
    assert r.exit_code == 3
    checks = {c["metric"]: c for c in json.loads(r.stdout)["checks"]}
    assert not checks["accuracy"]["passed"] and checks["accuracy"]["limit"] == "p >= 0.001"
    assert "paired McNemar" in checks["accuracy"]["note"] and "0 gained" in checks["accuracy"]["note"]
    assert checks["latency_p50_ms"]["passed"] and "another machine" in checks["latency_p50_ms"]["note"]


def test_latency_regression_beyond_margin_fails(build_copy, tmp_path):
    bl = tmp_path / "baseline.json"
    assert _verify(build_copy, bl, "--update").exit_code == 0
    b = json.loads(bl.read_text())
    b["latency"].update(p50_ms=b["latency"]["p50_ms"] / 10, p90_ms=b["latency"]["p50_ms"] / 10)
    bl.write_text(json.dumps(b))
    # the margin includes this run's p90-p50 spread: 30 calls of a 0.02 ms model can spread by 2x on a busy machine
    r = run_cli(["verify", str(build_copy), "--baseline", str(bl), "--iterations", "1000"])
    assert r.exit_code == 3 and "latency_p50_ms" in r.output


def test_missing_baseline_and_mismatched_build(build_copy, tmp_path, multi_build):
    r = _verify(build_copy, tmp_path / "none.json")
    assert r.exit_code == 2 and "--update" in r.stderr
    bl = tmp_path / "baseline.json"
    assert _verify(build_copy, bl, "--update").exit_code == 0
    r = _verify(multi_build["out"] / "pixel-7", bl)
    assert r.exit_code == 2 and "matching baseline" in r.stderr


def test_an_edited_baseline_accuracy_is_refused(build_copy, tmp_path):
    bl = tmp_path / "baseline.json"
    assert _verify(build_copy, bl, "--update").exit_code == 0
    b = json.loads(bl.read_text())
    b["accuracy"] = 1.0  # without its per-example record: not a baseline edgeopt wrote
    bl.write_text(json.dumps(b))
    r = _verify(build_copy, bl)
    assert r.exit_code == 2 and "does not match its per-example record" in r.stderr


def test_retraining_with_another_seed_is_no_regression(multi_build, tmp_path):
    """The gate's purpose: a re-trained model (here another seed, a larger change than another machine) differs on
    some examples both ways and passes; the same build with a weight tensor scrambled fails."""
    import yaml

    from conftest import FAST_LATENCY

    bl = tmp_path / "baseline.json"
    assert _verify(multi_build["out"] / "pixel-7", bl, "--update").exit_code == 0
    loosen_latency(bl)
    spec = yaml.safe_load(multi_build["spec"].read_text())
    spec["training"]["seed"] = 8
    s = tmp_path / "tiny-cnn.yaml"
    s.write_text(yaml.safe_dump(spec))
    out = tmp_path / "retrained"
    assert run_cli(["build", str(s), "-t", "pixel-7", "--out", str(out), "-q", *FAST_LATENCY]).exit_code == 0
    r = _verify(out, bl, "--json")
    assert r.exit_code == 0, r.output
    acc = next(c for c in json.loads(r.stdout)["checks"] if c["metric"] == "accuracy")
    assert "paired McNemar" in acc["note"] and "gained" in acc["note"]


def _tamper(d, case):
    m = json.loads((d / "manifest.json").read_text())
    if case == "vocab.txt -> /etc/passwd":
        (d / "vocab.txt").unlink(missing_ok=True)
        (d / "vocab.txt").symlink_to("/etc/passwd")
        return "vocab.txt: is a symbolic link" if any(a["path"] == "vocab.txt" for a in m["artifacts"]) else \
            "vocab.txt: not listed"
    if case == "tokenizer.json is {}":
        (d / "tokenizer.json").write_text("{}")
        return "tokenizer.json: its SHA-256 differs"
    if case == "an unlisted file":
        (d / "extra.py").write_text("import os")
        return "extra.py: not listed in"
    if case == "no deployed artifact":
        m["metrics"]["artifact"] = "nothing.onnx"
        (d / "manifest.json").write_text(json.dumps(m))
        return "the deployed artifact 'nothing.onnx' is not one of the files it lists"
    if case == "deployed artifact outside":
        dep = m["metrics"]["artifact"]
        m["metrics"]["artifact"] = "../../../../etc/passwd"
        for a in m["artifacts"]:
            if a["path"] == dep:
                a["path"] = "../../../../etc/passwd"
        (d / "manifest.json").write_text(json.dumps(m))
        return "artifact path '../../../../etc/passwd' is not a file name inside the build directory"
    if case == "manifest.json is a link":
        (d / "real.json").write_text((d / "manifest.json").read_text())
        (d / "manifest.json").unlink()
        (d / "manifest.json").symlink_to(d / "real.json")
        return "manifest.json: not a regular file"
    raise AssertionError(case)


def _untouched_baseline(multi_build, where):
    """One baseline of the untouched x86 build for every tampering case (made once: about 3 s each)."""
    bl = where / "x86-untouched-baseline.json"
    if not bl.is_file():
        assert _verify(multi_build["out"] / "x86-avx2-server", bl, "--update").exit_code == 0
    return bl


@pytest.mark.parametrize("case", ["vocab.txt -> /etc/passwd", "tokenizer.json is {}", "an unlisted file",
                                  "no deployed artifact", "deployed artifact outside", "manifest.json is a link"])
def test_a_build_directory_is_checked_before_use(multi_build, tmp_path, case):
    """predict, verify and validate refuse a build directory whose files differ from its manifest, naming what
    differs (exit 2), and never read a file outside it."""
    from test_robustness import one_line_error

    d = tmp_path / "build"
    shutil.copytree(multi_build["out"] / "x86-avx2-server", d)
    bl = tmp_path / "baseline.json"
    shutil.copy(_untouched_baseline(multi_build, tmp_path.parent), bl)
    want = _tamper(d, case)
    art = d / json.loads((multi_build["out"] / "x86-avx2-server" / "manifest.json").read_text())["metrics"]["artifact"]
    runs = [["predict", str(d), "my card has not arrived"], ["verify", str(d), "--baseline", str(bl)]]
    if art.is_file():
        runs.append(["validate", str(art), "-m", str(multi_build["spec"]), "-t", "x86-avx2-server"])
    for args in runs:
        msg = one_line_error(run_cli(args))
        assert want in msg and "root:" not in msg, (args, msg)
