"""Conversion of a tf_keras model to a deployable file: one converter per format (base.py: the ``Converter``
shape), the one table of them, and the fallback chain (fallback.py). Importing this package imports no TensorFlow."""
from __future__ import annotations

from .base import Converter
from .onnx import OnnxConverter
from .tflite import TFLiteConverter

CONVERTERS: dict[str, Converter] = {c.format: c for c in (TFLiteConverter(), OnnxConverter())}


def converter_for(fmt: str) -> Converter:
    return CONVERTERS[fmt]


__all__ = ["CONVERTERS", "Converter", "converter_for"]
