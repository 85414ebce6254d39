"""Saved Keras model files: which format a path holds, its config read without deserializing anything, and safe
loading.

Keras' own ``safe_mode`` covers ``.keras`` files only: tf_keras runs an ``.h5`` file's Lambda code even with
``safe_mode=True`` (measured here). So the config is read first (the zip's config.json, the HDF5 ``model_config``
attribute, a SavedModel's keras_metadata.pb) and a Lambda layer, or a class that neither Keras nor the user's
``custom_module`` defines, is refused before anything is deserialized. No library does this check.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import zipfile
from pathlib import Path

from ..errors import ArtifactError, InputError
from ..files import MAX_CONFIG_BYTES, check_archive, read_member

FORMATS = "a tf_keras .keras or .h5 file, a SavedModel directory, or a Keras 3 .keras or .h5 file"
KERAS3 = ("keras3", "keras3-h5")
# Layers made by Keras itself when a functional model calls TensorFlow ops (serialized by op name, not by code), and
# the serialization's own markers.
_SAFE_INTERNAL = {"Functional", "Sequential", "Model", "TFOpLambda", "SlicingOpLambda", "InputLayer", "__tuple__",
                  "__keras_tensor__", "__numpy__", "__tensor__", "Policy", "DTypePolicy", "FloatDTypePolicy",
                  "function", "__lambda__", "SharedObjectConfig", "TensorShape", "TypeSpec", "TensorSpec",
                  "RaggedTensorSpec", "SparseTensorSpec", "__ellipsis__", "__bytes__", "__passive_serialization__"}


def tree_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and contents, in sorted order)."""
    from ..data.datasets import sha256_file

    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + b"\0" + sha256_file(f).encode())
    return h.hexdigest()


def detect_format(path: Path) -> str:
    """``keras`` (tf_keras zip), ``keras3`` (zip), ``h5``, ``keras3-h5`` (HDF5 written by Keras 3) or
    ``savedmodel``; a one-line error otherwise."""
    if not path.exists():
        raise InputError(f"{path}: model file not found. Fix: check model.path (relative to the spec file).")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise InputError(f"{path}: a directory without saved_model.pb, so not a SavedModel. Fix: give {FORMATS}.")
    from ..files import regular_file

    regular_file(path, "model file", ArtifactError)
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        try:
            import h5py

            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version")
        except Exception as e:  # noqa: BLE001 -- h5py's errors on a damaged file
            raise ArtifactError(f"{path}: an HDF5 file h5py cannot open ({type(e).__name__}). Fix: give "
                                f"{FORMATS}.") from None
        version = version.decode() if isinstance(version, bytes) else str(version or "")
        return "keras3-h5" if version.startswith("3") else "h5"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                check_archive(z, str(path), ArtifactError)
                meta = json.loads(read_member(z, "metadata.json", MAX_CONFIG_BYTES, str(path), ArtifactError))
            version = str(meta.get("keras_version", ""))
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, AttributeError) as e:
            raise ArtifactError(f"{path}: a zip file but not a Keras model ({type(e).__name__}: no readable "
                                f"metadata.json). Fix: give {FORMATS}.") from None
        return "keras3" if version.startswith("3") else "keras"
    raise ArtifactError(f"{path}: not a Keras model file (neither a .keras zip nor HDF5). Fix: give {FORMATS}.")


def _config_of(path: Path, fmt: str) -> list:
    """The model's serialized config (as JSON objects), read without deserializing anything."""
    try:
        if fmt in ("keras", "keras3"):
            with zipfile.ZipFile(path) as z:
                return [json.loads(read_member(z, "config.json", MAX_CONFIG_BYTES, str(path), ArtifactError))]
        if fmt in ("h5", "keras3-h5"):
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
            if raw is None:
                raise ArtifactError(f"{path}: an HDF5 file without a model config (weights only?). Fix: save the "
                                    f"whole model (model.save(...)), not save_weights.")
            return [json.loads(raw if isinstance(raw, str) else raw.decode())]
        from ..tf import keras

        keras()
        from tf_keras.protobuf import saved_metadata_pb2

        meta = path / "keras_metadata.pb"
        if not meta.is_file():
            raise ArtifactError(f"{path}: a SavedModel without keras_metadata.pb (not saved by Keras). Fix: save it "
                                f"with tf_keras model.save(path, save_format='tf').")
        pb = saved_metadata_pb2.SavedMetadata()
        pb.ParseFromString(meta.read_bytes())
        return [json.loads(n.metadata) for n in pb.nodes if n.metadata]
    except ArtifactError:
        raise
    except Exception as e:  # zip, HDF5, protobuf and JSON errors alike: the file is damaged
        raise ArtifactError(f"{path}: cannot read its model config ({type(e).__name__}). Fix: give {FORMATS}.") from None


def _class_names(obj, out: list) -> list:
    if isinstance(obj, dict):
        cn = obj.get("class_name")
        if isinstance(cn, str):
            name = obj.get("config", {}).get("name") if isinstance(obj.get("config"), dict) else None
            out.append((cn, name or obj.get("name")))
        for v in obj.values():
            _class_names(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _class_names(v, out)
    return out


def _known_classes(keras3: bool) -> set[str]:
    if keras3:
        import keras as k
    else:
        from ..tf import keras

        k = keras()
    names = set(_SAFE_INTERNAL)
    # a compiled model's file also names its optimizer, loss and metrics (compile_config)
    for mod in (k.layers, k.initializers, k.regularizers, k.constraints, k.models, k.activations, k.optimizers,
                k.optimizers.schedules, k.losses, k.metrics):
        names.update(n for n in dir(mod) if not n.startswith("_"))
    if keras3:
        names.update(n for n in dir(k) if not n.startswith("_"))
    return names


def custom_objects(mspec) -> dict:
    """The Keras classes of the user's ``custom_module`` (imported only when named)."""
    if not mspec.custom_module:
        return {}
    try:
        mod = importlib.import_module(mspec.custom_module)
    except Exception as e:
        raise InputError(f"model.custom_module {mspec.custom_module!r}: cannot import it ({type(e).__name__}: "
                         f"{e}). Fix: make it importable (on PYTHONPATH).") from None
    objs = {n: v for n, v in vars(mod).items() if isinstance(v, type) and not n.startswith("_")}
    # a class registered with register_keras_serializable is named in the file by its registered name
    # ("package>Class"): known by that name too
    for v in list(objs.values()):
        for reg in _registries():
            try:
                name = reg(v)
            except Exception:  # noqa: BLE001 -- a class Keras cannot name
                continue
            if isinstance(name, str) and name not in objs:
                objs[name] = v
    return objs


def _registries() -> list:
    """get_registered_name of tf_keras and, when installed, Keras 3."""
    out = []
    from ..tf import keras

    out.append(keras().utils.get_registered_name)
    try:
        import keras as k3

        out.append(k3.saving.get_registered_name)
    except Exception:  # noqa: BLE001 -- Keras 3 is optional
        pass
    return out


def check_safe(path: Path, fmt: str, mspec, extra_known: set[str]) -> None:
    """Refuse Lambda layers (unless trusted) and classes nobody defined, before anything is deserialized."""
    found = []
    for cfg in _config_of(path, fmt):
        _class_names(cfg, found)
    known = _known_classes(fmt in KERAS3) | extra_known
    lam = sorted({n or "?" for c, n in found if c == "Lambda"})
    if lam and not mspec.trust_model_code:
        raise InputError(f"{path}: layer(s) {', '.join(lam)} are Lambda layers, whose Python code runs when the file "
                         f"is loaded; refused by default. Fix: if you trust this file, pass --trust-model-code (or "
                         f"model.trust_model_code: true), or replace the Lambda with a layer class in a "
                         f"model.custom_module.")
    # SavedModel metadata names tf_keras' own optimizers by their registered name ("Custom>Adam")
    unknown = sorted({c for c, _ in found if c.removeprefix("Custom>") not in known and c != "Lambda"})
    if unknown:
        raise InputError(f"{path}: uses class(es) {', '.join(unknown)} that Keras does not define. Fix: name the "
                         f"module that defines them in model.custom_module (or --custom-module).")


def load_file(path: Path, fmt: str, mspec):
    """The tf_keras model in ``path`` (for a Keras 3 file: (model, rebuild report))."""
    objs = custom_objects(mspec)
    check_safe(path, fmt, mspec, set(objs))
    if fmt in KERAS3:
        from .keras3 import load_and_rebuild

        return load_and_rebuild(path, objs, safe_mode=not mspec.trust_model_code)
    from ..tf import keras

    K = keras()
    try:
        with K.utils.custom_object_scope(objs):
            if fmt == "keras":
                return K.models.load_model(path, compile=False, safe_mode=not mspec.trust_model_code)
            return K.models.load_model(path, compile=False)
    except Exception as e:
        msg = " ".join(str(e).split())[:240]
        raise ArtifactError(f"{path}: tf_keras cannot load it ({type(e).__name__}: {msg}). Fix: give {FORMATS}; "
                            f"custom layers come in through model.custom_module.") from None
