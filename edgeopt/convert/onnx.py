"""tf_keras -> .onnx with tf2onnx, then ONNX Runtime quantization per the target's preset.

The input is int32 token ids named ``tokens`` with a dynamic batch (every reference architecture converts
that way; TOOLCHAIN §5). Opsets 13-18: tf2onnx 1.17 refuses 19. Quantization: ``dynamic`` (weights int8, activations
quantized at run time; QInt8 or QUInt8 weights) or ``int8`` (static: weights and activations, calibrated on real
training text through a CalibrationDataReader; QDQ or QOperator format).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConversionError
from ..tf import tf

SUPPORTED_OPSETS = range(13, 19)


def to_onnx(model, opset: int, seq_len: int | None = None) -> bytes:
    if opset not in SUPPORTED_OPSETS:
        raise ConversionError(f"ONNX opset {opset} is not supported by tf2onnx 1.17 (it supports 13 to 18). "
                              f"Fix: set onnx.opset to 18 or lower in the target.")
    T = tf()
    import tf2onnx

    seq_len = seq_len or int(model.inputs[0].shape[1])
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=(T.TensorSpec((None, seq_len), T.int32,
                                                                                   name="tokens"),), opset=opset)
    except Exception as e:
        msg = " ".join(str(e).split())[:300]
        raise ConversionError(f"tf2onnx failed at opset {opset}: {msg}. Fix: try another opset or a TFLite target.") \
            from None
    return proto.SerializeToString()


class _Reader:
    """CalibrationDataReader over token-id rows (one example per call: batch 1, as deployed)."""

    def __init__(self, input_name: str, tokens: np.ndarray):
        self.name, self.rows, self.i = input_name, np.asarray(tokens, np.int32), 0

    def get_next(self):
        if self.i >= len(self.rows):
            return None
        self.i += 1
        return {self.name: self.rows[self.i - 1:self.i]}

    def rewind(self):
        self.i = 0


def quantize(onnx_bytes: bytes, mode: str, preset, calibration: np.ndarray | None = None) -> bytes:
    """ORT quantization of a float32 model. ``preset``: the target's OnnxQuant settings."""
    if mode == "float32":
        return onnx_bytes
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    import logging

    qt = {"QInt8": QuantType.QInt8, "QUInt8": QuantType.QUInt8}
    root = logging.getLogger()
    level = root.level
    # ORT's quantizer logs a root-logger WARNING for every int64 shape tensor it (rightly) leaves alone
    root.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "model.onnx", Path(d) / "model.quant.onnx"
        src.write_bytes(onnx_bytes)
        try:
            if mode == "dynamic":
                quantize_dynamic(str(src), str(dst), weight_type=qt[preset.weight_type], per_channel=preset.per_channel,
                                 reduce_range=preset.reduce_range)
            elif mode == "int8":
                if calibration is None or len(calibration) == 0:
                    raise ConversionError("static ONNX quantization needs calibration data (training text).")

                class Reader(_Reader, CalibrationDataReader):
                    pass

                quantize_static(str(src), str(dst), Reader("tokens", calibration),
                                quant_format=QuantFormat.QDQ if preset.format == "QDQ" else QuantFormat.QOperator,
                                weight_type=qt[preset.weight_type], activation_type=qt[preset.activation_type],
                                per_channel=preset.per_channel, reduce_range=preset.reduce_range)
            else:
                raise ConversionError(f"ONNX targets take quantization float32, dynamic or int8, not {mode!r}. "
                                      f"Fix: change the target's quantization or --ptq.")
        except ConversionError:
            raise
        except Exception as e:
            msg = " ".join(str(e).split())[:300]
            raise ConversionError(f"ONNX Runtime {mode} quantization failed: {msg}.") from None
        finally:
            root.setLevel(level)
            for f in Path(d).glob("*-opt.onnx"):
                os.unlink(f)
        return dst.read_bytes()


def quantized_node_types(onnx_path) -> dict:
    """Counts of quantization-related node types (QuantizeLinear, QLinearConv, MatMulInteger, ...)."""
    import onnx

    from ..errors import ArtifactError

    try:
        m = onnx.load(str(onnx_path))
    except Exception as e:
        raise ArtifactError(f"{onnx_path}: not a readable ONNX model ({type(e).__name__}). Fix: re-export it.") from None
    counts: dict[str, int] = {}
    for n in m.graph.node:
        if any(k in n.op_type.lower() for k in ("quantize", "qlinear", "integer")):
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return counts


class OnnxConverter:
    """tf2onnx, then ONNX Runtime's quantization (the target's ``onnx`` settings): float32, dynamic, int8."""

    format = "onnx"
    modes = ("float32", "dynamic", "int8")

    def check(self, steps, ptq: str, where: str, target) -> None:
        from ..errors import InputError
        from ..recipe import QAT_STEPS
        from ..runtimes import require_onnx_stack

        require_onnx_stack()
        if steps[-1].name in QAT_STEPS:
            raise InputError(f"{where}: QAT ends in a TFLite int8 graph; {target.name} is an ONNX target. Fix: drop "
                             f"--qat and use --ptq int8 (ONNX Runtime static quantization) or dynamic.")
        if ptq not in self.modes:
            raise InputError(f"{where}: {ptq} is for TFLite targets; {target.name} is an ONNX target. Fix: use "
                             f"--ptq float32, dynamic or int8.")

    def convert(self, session, key: str, model, mode: str, n_rep: int, target) -> bytes:
        from ..console import log
        from .tflite import CALIBRATED

        ox = target.onnx_settings
        ck = (key, "onnx", ox.opset, mode, ox.quant.model_dump_json() if mode != "float32" else "", n_rep)
        if ck not in session.converted:
            fkey = (key, "onnx", ox.opset, "float32", "", 0)
            if fkey not in session.converted:
                log(session.quiet, f"[edgeopt] converting to ONNX (tf2onnx, opset {ox.opset})")
                session.converted[fkey] = to_onnx(model, ox.opset, session.tok.seq_len)
            if mode != "float32":
                log(session.quiet, f"[edgeopt] ONNX Runtime {mode} quantization")
                session.converted[ck] = quantize(session.converted[fkey], mode, ox.quant,
                                                 session.representative(n_rep) if mode in CALIBRATED else None)
        return session.converted[ck]
