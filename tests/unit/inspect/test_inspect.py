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
