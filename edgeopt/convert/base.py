"""The ``Converter`` shape: a tf_keras model to a deployable file of one format, in a quantization mode, isolated
from the edgeopt process where the converter can crash it. ``check`` says, from the plan alone and before any
training, what the converter will refuse (a QAT graph to ONNX, float16 on ONNX Runtime, a missing toolchain);
``convert`` makes the file. ``convert/__init__.py`` holds the one table of converters; the fallback chain a target
declares for a crash or refusal is ``convert/fallback.py``."""
from __future__ import annotations

from typing import Protocol


class Converter(Protocol):
    format: str  # the file's format and extension: "tflite" | "onnx"
    modes: tuple[str, ...]  # the quantization modes it makes

    def check(self, steps, ptq: str, where: str, target) -> None:
        """Raise InputError (one line, the fix) when the plan asks what this converter refuses."""

    def convert(self, session, key: str, model, mode: str, n_rep: int, target) -> bytes:
        """The model as this format's file bytes (``session``: the build session's memo, exports and
        calibration samples; ``key``: the pass output's cache key)."""
