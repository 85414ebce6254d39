"""Runtimes: load an exported model and run it. One protocol (see base.py); validators never branch on type."""
from .base import LatencyStats, RuntimeOptions, Session, machine_info


ONNX_PINS = {"tf2onnx": "tf2onnx==1.17.0", "onnx": "onnx==1.23.2", "onnxruntime": "onnxruntime==1.31.1"}


def require_onnx_stack(modules=tuple(ONNX_PINS)) -> None:
    """Fail in one line, before any training, when the ONNX tools a target needs are not installed (a partial or
    hand-made environment); ``pip install .`` installs them."""
    import importlib.util

    from ..errors import InputError

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"ONNX targets need {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                         f"installed. Fix: pip install {' '.join(ONNX_PINS[m] for m in missing)} (or reinstall "
                         f"edgeopt: pip install --no-deps -r requirements.lock).")


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
        from .onnxrt import OnnxRuntimeSession

        require_onnx_stack(("onnxruntime",))
        return OnnxRuntimeSession(path, options)
    raise ArtifactError(f"{path}: no runtime for '{suffix}' files. Fix: give a .tflite or .onnx file.")


__all__ = ["LatencyStats", "RuntimeOptions", "Session", "machine_info", "load", "require_onnx_stack"]
