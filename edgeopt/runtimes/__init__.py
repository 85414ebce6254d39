"""Runtimes: load an exported model and run it. One protocol (see base.py); validators never branch on type."""
from .base import LatencyStats, RuntimeOptions, Session, machine_info


def load(path, options: RuntimeOptions | None = None) -> Session:
    """Load ``path`` with the runtime its format needs."""
    from pathlib import Path

    from ..errors import ArtifactError

    options = options or RuntimeOptions()
    suffix = Path(path).suffix.lower()
    if suffix == ".tflite":
        from .litert import LiteRTSession

        return LiteRTSession(path, options)
    if suffix == ".onnx":
        from ..pipeline import require_onnx_stack
        from .onnxrt import OnnxRuntimeSession

        require_onnx_stack(("onnxruntime",))

        return OnnxRuntimeSession(path, options)
    raise ArtifactError(f"{path}: no runtime for '{suffix}' files. Fix: give a .tflite or .onnx file.")


__all__ = ["LatencyStats", "RuntimeOptions", "Session", "machine_info", "load"]
