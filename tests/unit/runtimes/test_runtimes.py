"""Runtime protocol conformance (LiteRT now; the ONNX Runtime session must pass the same assertions)."""
import numpy as np
import pytest

from edgeopt import runtimes
from edgeopt.errors import ArtifactError


@pytest.fixture(scope="module")
def artifacts(multi_build):
    out = multi_build["out"]
    return {"float32": out / "pixel-7" / "model_float32.tflite", "int8": out / "pixel-7" / "model_int8.tflite",
            "onnx-float32": out / "x86-avx2-server" / "model_float32.onnx",
            "onnx-int8": out / "x86-avx2-server" / "model_int8.onnx"}


@pytest.mark.parametrize("name", ["float32", "int8", "onnx-float32", "onnx-int8"])
def test_protocol_conformance_same_assertions_for_every_runtime(artifacts, name):
    """LiteRT and ONNX Runtime sessions answer the same protocol with the same behaviour."""
    sess = runtimes.load(artifacts[name], runtimes.RuntimeOptions(threads=2, xnnpack=True))
    seq = sess.input_shape[1]
    x = np.random.default_rng(3).integers(2, 50, size=(9, seq), dtype=np.int32)
    y = sess.run(x)
    assert y.shape == (9, 77) and y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_array_equal(sess.run(x[:1]), y[:1])  # per-example results do not depend on the batch
    assert sess.run(x[:0]).shape == (0, 77)
    st = sess.benchmark(x, warmup=2, iterations=20)
    assert st.threads == 2 and st.iterations == 20 and 0 < st.p50_ms <= st.p90_ms <= st.p99_ms
    assert isinstance(st.delegate_applied, bool) and st.machine["cores"]
    with pytest.raises(ArtifactError, match="takes token ids of shape"):
        sess.run(np.zeros((2, seq + 1), np.int32))


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_session_runs_any_batch_and_detects_xnnpack(artifacts, mode):
    on = runtimes.load(artifacts[mode], runtimes.RuntimeOptions(threads=1, xnnpack=True))
    off = runtimes.load(artifacts[mode], runtimes.RuntimeOptions(threads=2, xnnpack=False))
    assert on.delegate_applied is True and off.delegate_applied is False
    seq = on.input_shape[1]
    x = np.random.default_rng(0).integers(0, 50, size=(5, seq), dtype=np.int32)
    y_on, y_off = on.run(x), off.run(x)
    assert y_on.shape == (5, 77) and y_on.dtype == np.float32
    assert np.array_equal(y_on.argmax(1), y_off.argmax(1)) or mode == "int8"
    np.testing.assert_allclose(y_on, y_off, atol=1e-3 if mode == "float32" else 0.5)
    assert on.run(x[:0]).shape == (0, 77)


def test_benchmark_stats_are_labelled(artifacts):
    s = runtimes.load(artifacts["int8"], runtimes.RuntimeOptions(threads=2, xnnpack=False))
    x = np.ones((4, s.input_shape[1]), np.int32)
    st = s.benchmark(x, warmup=3, iterations=40)
    assert st.threads == 2 and st.xnnpack is False and st.delegate_applied is False
    assert st.iterations == 40 and st.warmup == 3
    assert 0 < st.min_ms <= st.p50_ms <= st.p90_ms <= st.p99_ms
    assert st.machine["arch"] and st.machine["cores"] and st.machine["emulated"] is False
    assert st.runtime.startswith("litert-interpreter")


def test_wrong_input_shape(artifacts):
    s = runtimes.load(artifacts["float32"])
    with pytest.raises(ArtifactError, match="takes token ids of shape"):
        s.run(np.zeros((2, 3), np.int32))


def test_unknown_format_and_corrupt_file(tmp_path, artifacts):
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="no runtime for '.pt'"):
        runtimes.load(tmp_path / "m.pt")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(artifacts["float32"].read_bytes()[:2000])
    with pytest.raises(ArtifactError, match="bad.tflite"):
        runtimes.load(bad)
