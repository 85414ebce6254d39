"""tf_keras -> .tflite with the post-training quantization a target asks for.

Modes (TOOLCHAIN §3): ``float32``; ``dynamic`` (Optimize.DEFAULT: int8 weights, float activations);
``int8`` (full integer: representative dataset from real training text, TFLITE_BUILTINS_INT8 only; the
token input stays int32 because the converter cannot make it int8, the logits stay float32);
``float16`` (float16 weights). Every model is converted from a concrete function with a static batch of 1:
recurrent layers need a static batch to convert, and batch 1 is how an edge app calls the model.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConversionError
from ..tf import tf

MODES = ("float32", "dynamic", "int8", "float16")


def convert(model, mode: str, representative: np.ndarray | None = None) -> bytes:
    if mode not in MODES:
        raise ConversionError(f"unknown quantization {mode!r}; choose one of {', '.join(MODES)}.")
    T = tf()
    seq_len = int(model.inputs[0].shape[1])
    fn = T.function(lambda tokens: model(tokens, training=False))
    cf = fn.get_concrete_function(T.TensorSpec([1, seq_len], T.int32, name="tokens"))
    conv = T.lite.TFLiteConverter.from_concrete_functions([cf], model)
    if mode != "float32":
        conv.optimizations = [T.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [T.float16]
    if mode == "int8":
        if representative is None or len(representative) == 0:
            raise ConversionError("int8 conversion needs a representative dataset (token ids from training text).")
        rep = np.asarray(representative, dtype=np.int32)

        def gen():
            for row in rep:
                yield [row[None, :]]

        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [T.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        return conv.convert()
    except Exception as e:  # the converter raises many types; report the first meaningful line
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        key = next((ln for ln in lines if "error" in ln.lower() or "not supported" in ln.lower()), lines[0] if lines
                   else type(e).__name__)
        raise ConversionError(f"TFLite converter failed for {mode}: {key[:300]}. Fix: choose another quantization "
                              f"for this architecture in the target or with --ptq.") from None
