import pytest

from conftest import assert_no_tensorflow

from edgeopt.errors import ArtifactError
from edgeopt.inspect import format_inspect, inspect_tflite


def test_int8_artifact_reads_back_int8_weights_and_int32_tokens(multi_build):
    info = inspect_tflite(multi_build["out"] / "pixel-7" / "model_int8.tflite")
    assert info["inputs"] == [{"name": info["inputs"][0]["name"], "dtype": "int32", "shape": [1, 24]}]
    assert info["outputs"][0]["dtype"] == "float32"
    ops = {o["op"] for o in info["ops"]}
    assert {"GATHER", "CONV_2D", "FULLY_CONNECTED"} <= ops or {"GATHER", "FULLY_CONNECTED"} <= ops
    assert "int8" in info["weight_dtypes"] and "float32" not in info["weight_dtypes"]
    assert any("quantized" in t for t in info["tensors"])
    assert "GATHER" in format_inspect(info)


def test_dtypes_per_quantization(multi_build):
    out = multi_build["out"]
    f32 = inspect_tflite(out / "pixel-7" / "model_float32.tflite")
    f16 = inspect_tflite(out / "android-arm64-fp16" / "model_float16.tflite")
    dyn = inspect_tflite(out / "raspberry-pi-4" / "model_dynamic.tflite")
    assert set(f32["weight_dtypes"]) <= {"float32", "int32"}
    assert "float16" in f16["weight_dtypes"] and "DEQUANTIZE" in {o["op"] for o in f16["ops"]}
    assert "int8" in dyn["weight_dtypes"]
    assert f16["size_bytes"] < 0.6 * f32["size_bytes"] and dyn["size_bytes"] < 0.4 * f32["size_bytes"]


def test_not_tflite_and_corrupt(tmp_path, multi_build):
    txt = tmp_path / "notes.tflite"
    txt.write_text("hello world, not a model")
    with pytest.raises(ArtifactError, match="not a TFLite flatbuffer"):
        inspect_tflite(txt)
    good = (multi_build["out"] / "pixel-7" / "model_float32.tflite").read_bytes()
    bad = tmp_path / "trunc.tflite"
    bad.write_bytes(good[:64])
    with pytest.raises(ArtifactError, match="corrupt"):
        inspect_tflite(bad)
    with pytest.raises(ArtifactError, match="file not found"):
        inspect_tflite(tmp_path / "missing.tflite")


def test_inspect_cli_does_not_import_tensorflow(multi_build):
    path = multi_build["out"] / "pixel-7" / "model_int8.tflite"
    assert_no_tensorflow("from click.testing import CliRunner; from edgeopt.cli import main; "
                         f"r = CliRunner().invoke(main, ['inspect', {str(path)!r}, '--json']); "
                         "assert r.exit_code == 0, r.output")


def test_an_onnx_file_is_inspected_too(multi_build, tmp_path):
    from conftest import run_cli

    path = multi_build["out"] / "x86-avx2-server" / "model_int8.onnx"
    r = run_cli(["inspect", str(path), "--json"])
    assert r.exit_code == 0, r.output
    info = __import__("json").loads(r.stdout)
    assert info["format"] == "onnx" and info["opsets"]["ai.onnx"] >= 13 and info["size_bytes"] == path.stat().st_size
    assert info["inputs"][0]["dtype"] in ("int32", "int64") and info["inputs"][0]["shape"][1] == 24
    assert {o["op"] for o in info["ops"]} & {"QLinearMatMul", "MatMulInteger", "DequantizeLinear", "QLinearConv"}
    assert "int8" in info["weight_dtypes"] or "uint8" in info["weight_dtypes"]
    assert "ONNX IR v" in run_cli(["inspect", str(path)]).stdout
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(path.read_bytes()[:200])
    r = run_cli(["inspect", str(bad)])
    assert r.exit_code == 2 and "not a readable ONNX model" in r.stderr
