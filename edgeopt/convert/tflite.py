"""tf_keras -> .tflite with the post-training quantization a target asks for.

Modes (TOOLCHAIN §3): ``float32``; ``dynamic`` (Optimize.DEFAULT: int8 weights, float activations);
``int8`` (full integer: representative dataset from real training text, TFLITE_BUILTINS_INT8 only; the
token input stays int32 because the converter cannot make it int8, the logits stay float32);
``float16`` (float16 weights); ``int16x8`` (int16 activations x int8 weights, calibrated like int8: more
accurate than int8 where activations are fragile; converts for convolutional models, not for LSTM or LayerNorm,
TOOLCHAIN §3, and runs on LiteRT's reference kernels, not XNNPACK). Every model is exported with a static batch of 1: recurrent layers need a static
batch to convert, and batch 1 is how an edge app calls the model. The model is saved as a SavedModel with one
``tokens`` signature and converted in a separate process (convert/worker.py): the converter can crash.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConversionError
from ..tf import tf
from .worker import ConverterCrash, worker  # noqa: F401 (ConverterCrash is part of this module's interface)

MODES = ("float32", "dynamic", "int8", "float16", "int16x8")
CALIBRATED = ("int8", "int16x8")  # the modes that need a representative dataset


def save_for_conversion(model, directory: Path, seq_len: int | None = None) -> Path:
    """``model`` as a SavedModel whose one signature takes int32 ``tokens`` [1, seq_len]."""
    T = tf()
    seq_len = seq_len or int(model.inputs[0].shape[1])
    in_dtype = model.inputs[0].dtype

    # The module tracks the model's variables only, not the model: tracking a Keras model makes saved_model.save
    # trace and serialize every layer's call as well (seconds, and QAT wrappers' traces can fail).
    mod = T.Module()
    mod.variables_ = list(model.variables)

    @T.function(input_signature=[T.TensorSpec([1, seq_len], T.int32, name="tokens")])
    def serve(tokens):
        x = tokens if in_dtype == T.int32 else T.cast(tokens, in_dtype)
        return {"logits": model(x, training=False)}

    mod.serve = serve
    out = Path(directory) / "saved_model"
    T.saved_model.save(mod, str(out), signatures={"serving_default": mod.serve})
    return out


def convert_saved(saved: Path, mode: str, representative: np.ndarray | None = None) -> bytes:
    """Convert a SavedModel from :func:`save_for_conversion` in the converter process. Raises ConverterCrash when
    that process dies, ConversionError when the converter refuses the model."""
    if mode not in MODES:
        raise ConversionError(f"unknown quantization {mode!r}; choose one of {', '.join(MODES)}.")
    if mode in CALIBRATED and (representative is None or len(representative) == 0):
        raise ConversionError(f"{mode} conversion needs a representative dataset (token ids from training text).")
    with tempfile.TemporaryDirectory(prefix="edgeopt-convert-") as d:
        rep = None
        if mode in CALIBRATED:
            rep = str(Path(d) / "rep.npy")
            np.save(rep, np.asarray(representative, dtype=np.int32))
        out = Path(d) / "model.tflite"
        reply = worker().convert(str(saved), mode, rep, str(out))
        if not reply["ok"]:
            lines = [ln.strip() for ln in reply["error"].splitlines() if ln.strip()]
            key = next((ln for ln in lines if "error" in ln.lower() or "not supported" in ln.lower()),
                       lines[0] if lines else reply["type"])
            raise ConversionError(f"TFLite converter failed for {mode}: {key[:300]}. Fix: choose another "
                                  f"quantization for this model in the target (quantization or fallback) or with "
                                  f"--ptq.")
        return out.read_bytes()


def convert(model, mode: str, representative: np.ndarray | None = None, seq_len: int | None = None) -> bytes:
    """``model`` as .tflite bytes (saved, then converted in the converter process)."""
    with tempfile.TemporaryDirectory(prefix="edgeopt-export-") as d:
        return convert_saved(save_for_conversion(model, Path(d), seq_len), mode, representative)
