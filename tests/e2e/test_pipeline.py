"""End to end: real (sliced) data -> train -> convert -> validate on the artifact -> budgets -> build dir."""
import json

import numpy as np
import pytest
import yaml

from conftest import ALL_TARGETS, FAST_LATENCY, TINY, run_cli, write_spec
from edgeopt import runtimes
from edgeopt.data import WordTokenizer, load_dataset
from edgeopt.registry import load_target
from edgeopt.specs import load_model_spec_file

pytestmark = pytest.mark.slow


def test_multi_target_build_directories_and_manifest(multi_build):
    out, manifests = multi_build["out"], multi_build["manifests"]
    assert sorted(manifests) == sorted(ALL_TARGETS)
    for target, m in manifests.items():
        d = out / target
        t = load_target(target)
        q, fmt = t.quantization, t.runtime.format
        files = {p.name for p in d.iterdir()}
        assert {f"model_float32.{fmt}", f"model_{q}.{fmt}", "tokenizer.json", "edgeopt_tokenizer.json",
                "tokenizer_golden.json", "vocab.txt", "labels.txt", "manifest.json", "report.md"} <= files
        assert m["recipe"]["convert"]["format"] == fmt
        assert json.loads((d / "manifest.json").read_text()) == m
        for key in ("model", "target", "edgeopt_version", "versions", "seed", "recipe", "artifacts", "metrics",
                    "budgets"):
            assert key in m
        assert m["recipe"]["convert"]["quantization"] == q and m["seed"] == 7
        assert m["versions"]["tf-keras"] == "2.21.0" and m["versions"]["ai-edge-litert"] == "2.3.0"
        for a in m["artifacts"]:
            assert {"path", "format", "sha256", "size_bytes", "gzip_bytes"} <= set(a)
            assert (d / a["path"]).stat().st_size == a["size_bytes"]
        met = m["metrics"]
        assert 0 <= met["accuracy"] <= 1 and 0 <= met["baseline"]["accuracy"] <= 1
        assert met["accuracy_drop"] == pytest.approx(met["baseline"]["accuracy"] - met["accuracy"], abs=1e-6)
        assert met["accuracy"] > 0.3  # 77 classes: chance is 0.013
        threads = {r["threads"] for r in met["latency"]}
        assert threads == {1, load_target(target).runtime.threads}
        for r in met["latency"]:
            assert {"runtime", "threads", "xnnpack", "delegate_applied", "p50_ms", "p90_ms", "p99_ms",
                    "machine"} <= set(r)
            assert r["delegate_applied"] == r["xnnpack"]
            assert r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert m["budgets"]["checks"] and m["budgets"]["passed"] == all(c["passed"] for c in m["budgets"]["checks"])
        assert "Verdict" in (d / "report.md").read_text()
        assert (d / "labels.txt").read_text().count("\n") == 77
    # one training run served every target: all baselines of a format are the same file
    assert len({m["artifacts"][0]["sha256"] for m in manifests.values() if m["recipe"]["convert"]["format"] ==
                "tflite"}) == 1
    onnx = manifests["x86-avx2-server"]
    assert onnx["metrics"]["latency"][0]["runtime"].startswith("onnxruntime") and \
        "CPUExecutionProvider" in onnx["metrics"]["latency"][0]["runtime"]
    assert onnx["recipe"]["convert"]["opset"] == 17 and onnx["recipe"]["convert"]["ort_quantization"]["format"] == "QDQ"
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(onnx["passes"][-1]["quantized_nodes"])
    assert {r["threads"] for r in manifests["jetson-orin-nano-cpu"]["metrics"]["latency"]} == {1, 2}
    assert multi_build["result"].exit_code == (0 if all(m["budgets"]["passed"] for m in manifests.values()) else 3)


def test_accuracy_in_manifest_is_the_artifacts_own(multi_build):
    """Re-run the deployed .tflite over the test split with the shipped tokenizer: same accuracy."""
    d = multi_build["out"] / "pixel-7"
    m = json.loads((d / "manifest.json").read_text())
    spec = load_model_spec_file(multi_build["spec"])
    ds = load_dataset(spec.data)
    tok = WordTokenizer.load(d)
    logits = runtimes.load(d / "model_int8.tflite").run(tok.encode_batch(ds.test.texts))
    acc = float((logits.argmax(1) == np.asarray(ds.test.labels)).mean())
    assert acc == pytest.approx(m["metrics"]["accuracy"], abs=1e-6)
    assert m["metrics"]["test_examples"] == len(ds.test) == 400
    par = m["metrics"]["parity_vs_keras"]
    assert par["argmax_agreement"] > 0.9
    assert m["metrics"]["baseline"]["parity_vs_keras"]["max_abs_diff"] < 1e-3  # float32 export is faithful


@pytest.mark.parametrize("arch", ["bilstm", "transformer"])
def test_other_architectures_convert_to_int8_and_run(tmp_path, arch):
    spec = write_spec(tmp_path / f"{arch}.yaml", f"tiny-{arch}", arch, TINY[arch], epochs=4, learning_rate=0.01,
                      limit={"train": 1500, "dev": 100, "test": 100}, seq_len=16, dataset="sst2")
    r = run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(tmp_path / "o"), "-q", "--json", *FAST_LATENCY])
    assert r.exit_code in (0, 3), r.output
    m = json.loads(r.stdout)
    assert m["metrics"]["baseline"]["parity_vs_keras"]["max_abs_diff"] < 1e-3
    assert m["metrics"]["baseline"]["parity_vs_keras"]["argmax_agreement"] == 1.0
    assert m["metrics"]["parity_vs_keras"]["argmax_agreement"] >= 0.9
    from edgeopt.inspect import inspect_tflite

    info = inspect_tflite(tmp_path / "o" / "model_int8.tflite")
    assert info["inputs"][0]["dtype"] == "int32" and info["inputs"][0]["shape"] == [1, 16]
    assert "int8" in info["weight_dtypes"]
    assert [c for c in m["budgets"]["checks"] if c["name"] == "min_export_agreement"][0]["passed"]
    if arch == "bilstm":  # converted LSTM state lives in variable tensors that persist across invoke()
        assert info["variable_tensors"] > 0 and m["metrics"]["variable_tensors"] > 0
        assert "Stateful graph" in (tmp_path / "o" / "report.md").read_text()
        for name in ("model_float32.tflite", "model_int8.tflite"):
            sess = runtimes.load(tmp_path / "o" / name)
            a = np.random.default_rng(1).integers(2, 50, size=(1, 16), dtype=np.int32)
            b = np.random.default_rng(2).integers(2, 50, size=(1, 16), dtype=np.int32)
            first = sess.run(a)
            sess.run(b)
            np.testing.assert_array_equal(sess.run(a), first)  # no state leaks from b into a


def test_budget_failure_exits_3_and_names_the_budget(tmp_path):
    t = yaml.safe_load(open(load_target("raspberry-pi-zero-2w").source))
    t.update(name="impossible", budgets={"max_size_bytes": 1000, "max_accuracy_drop": 0.5})
    (tmp_path / "impossible.yaml").write_text(yaml.safe_dump(t))
    spec = write_spec(tmp_path / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"])  # far above chance: one failure
    r = run_cli(["build", str(spec), "-t", str(tmp_path / "impossible.yaml"), "--out", str(tmp_path / "o"), "-q",
                 *FAST_LATENCY])
    assert r.exit_code == 3
    assert "budget failed for impossible: max_size_bytes: measured" in r.stderr and "> limit 1000" in r.stderr
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["budgets"]["passed"] is False
    assert [c["name"] for c in m["budgets"]["checks"] if not c["passed"]] == ["max_size_bytes"]
    # the failure says what drives the size, and the knobs
    vocab = m["tokenizer"]["vocab_size"]
    assert f"what drives the size: the vocabulary {vocab:,} x embedding width 32" in r.stderr, r.stderr
    assert "tokenizer.max_vocab" in r.stderr and "architecture.params.embed_dim" in r.stderr
    size = m["metrics"]["size"]["size_bytes"]
    # --fit-size: nothing fits 1,000 bytes (one line, before any training); 85% of the file does, chosen before
    # training, and the trained file meets it
    r = run_cli(["build", str(spec), "-t", str(tmp_path / "impossible.yaml"), "--fit-size", "--dry-run"])
    assert r.exit_code == 2 and "no configuration fits impossible (1,000 B)" in r.output, r.output
    t["budgets"]["max_size_bytes"] = int(0.85 * size)
    (tmp_path / "tight.yaml").write_text(yaml.safe_dump({**t, "name": "tight"}))
    r = run_cli(["build", str(spec), "-t", str(tmp_path / "tight.yaml"), "--fit-size", "--out", str(tmp_path / "f"),
                 "-q", "--json", *FAST_LATENCY])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    z = m["model_source"]["fit_size"]
    assert z["was"] == {"max_vocab": 3000, "embed_dim": 32} and z["limits"] == {"tight": int(0.85 * size)}
    c = z["chosen"]
    assert (c["embed_dim"], c["max_vocab"]) != (32, 3000) and c["predicted_bytes"]["tight"] <= 0.98 * 0.85 * size
    assert m["metrics"]["size"]["size_bytes"] <= int(0.85 * size)
    assert m["tokenizer"]["vocab_size"] == c["vocab_size"]
    assert m["spec"]["architecture"]["params"]["embed_dim"] == c["embed_dim"]
    assert "Sized to the budget (--fit-size)" in (tmp_path / "f" / "report.md").read_text()


def test_failed_build_leaves_nothing_half_written(tmp_path, monkeypatch):
    import edgeopt.report

    spec = write_spec(tmp_path / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=1,
                      limit={"train": 200, "dev": 50, "test": 50}, dataset="sst2")
    out = tmp_path / "o"
    assert run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(out), "-q", *FAST_LATENCY]).exit_code in (0, 3)
    before = {p.name: p.read_bytes() for p in out.iterdir()}  # an earlier good build

    def boom(*a, **k):
        raise RuntimeError("disk full while writing the report")

    monkeypatch.setattr(edgeopt.report, "write_report", boom)
    with pytest.raises(RuntimeError):
        run_cli(["build", str(spec), "-t", "pixel-7", "--out", str(out), "-q", *FAST_LATENCY])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging dir left
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier build is untouched
