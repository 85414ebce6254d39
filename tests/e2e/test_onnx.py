"""ONNX: tf2onnx conversion of every architecture at two opsets, ORT quantization read back, errors."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import FAST_LATENCY, TINY, run_cli, write_spec
from edgeopt import runtimes
from edgeopt.architectures import CONFIGS, build_model
from edgeopt.convert import onnx as ox
from edgeopt.errors import ArtifactError, ConversionError, SpecError
from edgeopt.specs import OnnxQuant, load_target_file

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("arch", sorted(TINY))
def test_every_architecture_converts_with_dynamic_batch(tmp_path, arch, opset):
    m = build_model(arch, CONFIGS[arch].model_validate(TINY[arch]), 60, 4, 12)
    p = tmp_path / "m.onnx"
    p.write_bytes(ox.to_onnx(m, opset))
    import onnx

    model = onnx.load(str(p))
    assert model.opset_import[0].version == opset
    sess = runtimes.load(p)
    assert sess.input_shape[0] == -1 and sess.input_shape[1] == 12  # dynamic batch, fixed sequence
    x = np.random.default_rng(0).integers(0, 60, size=(7, 12)).astype(np.int32)
    np.testing.assert_allclose(sess.run(x), m(x).numpy(), atol=1e-5)


def test_ort_quantization_modes_read_back(tmp_path):
    m = build_model("text_cnn", CONFIGS["text_cnn"].model_validate(TINY["text_cnn"]), 60, 4, 12)
    f32 = ox.to_onnx(m, 17)
    calib = np.random.default_rng(1).integers(0, 60, size=(20, 12)).astype(np.int32)
    cases = {"dynamic": (OnnxQuant(weight_type="QUInt8"), {"DynamicQuantizeLinear"}),
             "qdq": (OnnxQuant(format="QDQ"), {"QuantizeLinear", "DequantizeLinear"}),
             "qop": (OnnxQuant(format="QOperator"), {"QLinearConv", "QuantizeLinear"})}
    x = calib[:5]
    ref = m(x).numpy()
    for name, (preset, expected) in cases.items():
        data = ox.quantize(f32, "dynamic" if name == "dynamic" else "int8", preset, calib)
        p = tmp_path / f"{name}.onnx"
        p.write_bytes(data)
        nodes = ox.quantized_node_types(p)
        assert expected <= set(nodes), (name, nodes)
        assert len(data) < 0.7 * len(f32)  # tiny model: QDQ bookkeeping is a large share (the 1.9 MB CNN: 26%)
        assert np.abs(runtimes.load(p).run(x) - ref).max() < 0.5


def test_opset_19_and_bad_onnx_targets_are_refused(tmp_path):
    m = build_model("text_cnn", CONFIGS["text_cnn"].model_validate(TINY["text_cnn"]), 60, 4, 12)
    with pytest.raises(ConversionError, match="opset 19 is not supported by tf2onnx 1.17"):
        ox.to_onnx(m, 19)
    src = Path(__file__).resolve().parents[2] / "targets" / "x86-avx2-server.yaml"
    bad = tmp_path / "t.yaml"
    bad.write_text(src.read_text().replace("opset: 17", "opset: 19"))
    with pytest.raises(SpecError, match="onnx.opset.*13 to 18"):
        load_target_file(bad)
    bad.write_text(src.read_text().replace("quantization: int8", "quantization: float16"))
    with pytest.raises(SpecError, match="float16 is for TFLite targets"):
        load_target_file(bad)
    bad.write_text(src.read_text().replace("format: onnx", "format: tflite"))
    with pytest.raises(SpecError, match="runtime onnxruntime runs onnx files"):
        load_target_file(bad)
    r = run_cli(["build", "banking77-cnn", "-t", "x86-avx2-server", "--qat", "--dry-run"])
    assert r.exit_code == 2 and "ONNX target" in r.stderr


def test_corrupt_onnx_file(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ArtifactError, match="ONNX Runtime cannot load it"):
        runtimes.load(p)
    with pytest.raises(ArtifactError, match="not a readable ONNX model"):
        ox.quantized_node_types(p)
    r = run_cli(["bench", str(p)])
    assert r.exit_code == 2 and "ONNX Runtime cannot load it" in r.stderr


def test_cross_format_parity_in_one_build(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", "tiny", "text_cnn", TINY["text_cnn"], epochs=3, dataset="sst2",
                      limit={"train": 1500, "dev": 100, "test": 200}, learning_rate=0.005)
    r = run_cli(["build", str(spec), "-t", "raspberry-pi-4", "--format", "both", "--out", str(tmp_path / "o"), "-q",
                 "--json", *FAST_LATENCY])
    m = json.loads(r.stdout)
    cf = m["metrics"]["cross_format"]
    assert cf["format"] == "onnx" and cf["quantization"] == "dynamic" and (tmp_path / "o" / cf["artifact"]).is_file()
    assert cf["agreement_with_deployed"]["argmax_agreement"] > 0.9 and 0 <= cf["accuracy"] <= 1
    assert any(a["role"] == "cross_format" for a in m["artifacts"])
    assert "Cross-format parity" in (tmp_path / "o" / "report.md").read_text()
