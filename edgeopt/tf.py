"""The one place that imports TensorFlow.

TFMOT and our compression code need tf_keras (Keras 2). ``TF_USE_LEGACY_KERAS=1`` must be set before
TensorFlow is first imported, so every other module calls :func:`tf` / :func:`keras` here instead of
importing TensorFlow itself. Importing this module does not import TensorFlow.
"""
from __future__ import annotations

import os


def tf():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    # 3: hide the C++ log lines (e.g. tf.data's "NodeDef mentions attribute use_unbounded_threadpool"), which read
    # like failures but are not; real failures still raise Python exceptions. A user's own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as _tf

    # TF's Python warnings (e.g. "Gradients do not exist for variables ['logits/kernel:0']" during cluster-
    # preserving QAT, where the scheme trains the centroids instead of the kernel) are expected here.
    _tf.get_logger().setLevel("ERROR")
    return _tf


def keras():
    tf()
    import tf_keras

    return tf_keras


def is_keras3_model(obj) -> bool:
    mod = type(obj).__module__
    return mod.startswith("keras.") or mod == "keras" or mod.startswith("keras.src")


def set_seed(seed: int) -> None:
    k = keras()
    k.utils.set_random_seed(seed)
    try:
        tf().config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


def versions() -> dict:
    """Versions of the packages a build depends on (without importing TF if it is not loaded)."""
    from importlib import metadata

    out = {}
    for name in ("tensorflow-cpu", "tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert",
                 "numpy", "pydantic", "click", "pyyaml"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
