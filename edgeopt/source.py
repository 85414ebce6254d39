"""Where a model comes from: a built-in architecture, a saved Keras model file, or a Python builder.

One small interface that the planner, the passes, the cache and the tokenizer use alike:

- ``layer_types()``: the Keras layer classes the model holds (the planner checks passes against them; for a
  built-in, without importing TensorFlow);
- ``fingerprint()``: what the model's starting point depends on (a file's hash, a builder's source), part of the
  cache's root key;
- ``initial(...)``: the model the first step starts from (untrained for architectures and builders; the file's
  model with its weights);
- ``rebuild(...)``: the same structure with fresh weights (cache loads and the strip steps copy weights into it);
- ``pretrained``: a model file's weights are the float baseline as they are, unless ``training.fit`` is true.

Saved files are loaded safely: their config is read first (Keras' own ``safe_mode`` covers ``.keras`` files only;
tf_keras runs an ``.h5`` file's Lambda code even with ``safe_mode=True``, measured here), and a Lambda layer or a
class that neither Keras nor the user's ``custom_module`` defines is refused before anything is deserialized.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Optional

from .errors import ArtifactError, InputError

# Layer classes for which edgeopt's passes and converter have something to say (see describe_layers()).
RECURRENT = {"LSTM", "GRU", "SimpleRNN"}
FORMATS = "a tf_keras .keras or .h5 file, a SavedModel directory, or a Keras 3 .keras file"
# Layers made by Keras itself when a functional model calls TensorFlow ops (serialized by op name, not by code).
_SAFE_INTERNAL = {"Functional", "Sequential", "Model", "TFOpLambda", "SlicingOpLambda", "InputLayer", "__tuple__",
                  "__keras_tensor__", "__numpy__", "__tensor__", "Policy", "DTypePolicy", "FloatDTypePolicy",
                  "function", "__lambda__", "SharedObjectConfig", "TensorShape", "TypeSpec", "TensorSpec",
                  "RaggedTensorSpec", "SparseTensorSpec", "__ellipsis__", "__bytes__", "__passive_serialization__"}


class ModelSource:
    kind = "architecture"
    pretrained = False

    def layer_types(self) -> set[str]:
        raise NotImplementedError

    def fingerprint(self) -> dict:
        return {}

    def describe(self) -> str:
        raise NotImplementedError

    def initial(self, vocab_size: int, num_classes: int, seq_len: int):
        return self.rebuild(vocab_size, num_classes, seq_len)

    def rebuild(self, vocab_size: int, num_classes: int, seq_len: int):
        raise NotImplementedError


class BuiltinSource(ModelSource):
    def __init__(self, arch):
        self.arch = arch

    def layer_types(self) -> set[str]:
        from .architectures import LAYER_TYPES

        return set(LAYER_TYPES[self.arch.name])

    def describe(self) -> str:
        return f"built-in architecture {self.arch.name}"

    def rebuild(self, vocab_size, num_classes, seq_len):
        from .architectures import build_model

        return build_model(self.arch.name, self.arch.config(), vocab_size=vocab_size, num_classes=num_classes,
                           seq_len=seq_len)


class _KerasSource(ModelSource):
    """A source whose structure is a concrete tf_keras model (a file's, or a builder's)."""

    where: str

    def layer_types(self) -> set[str]:
        return layer_types_of(self.model)

    @property
    def model(self):
        raise NotImplementedError


class FileSource(_KerasSource):
    kind = "file"
    pretrained = True

    def __init__(self, mspec, spec_source: Optional[str] = None):
        self.path = Path(mspec.path)
        self.mspec = mspec
        self.where = str(self.path)
        self._model = None
        self.keras3: Optional[dict] = None  # the Keras 3 rebuild's report
        self.format = detect_format(self.path)

    def describe(self) -> str:
        return f"model file {self.path} ({self.format})"

    def fingerprint(self) -> dict:
        return {"model_file_sha256": tree_sha256(self.path), "format": self.format,
                "custom_module": self.mspec.custom_module}

    @property
    def model(self):
        if self._model is None:
            self._model = load_file(self.path, self.format, self.mspec)
            if self.format == "keras3":
                self._model, self.keras3 = self._model
        return self._model

    def initial(self, vocab_size, num_classes, seq_len):
        from .passes.common import copy_model

        return copy_model(self.model)

    def rebuild(self, vocab_size, num_classes, seq_len):
        from .tf import keras

        return keras().models.clone_model(self.model)


class BuilderSource(_KerasSource):
    kind = "builder"

    def __init__(self, mspec, spec_source: Optional[str] = None):
        self.ref, self.params = mspec.builder, dict(mspec.params)
        self.base = Path(spec_source).resolve().parent if spec_source else None
        self.where = f"builder {self.ref}"
        self._fn = None
        self._model = None
        self._args: Optional[tuple] = None

    def describe(self) -> str:
        return f"builder {self.ref}" + (f" with {self.params}" if self.params else "")

    def function(self):
        if self._fn is None:
            self._fn = import_builder(self.ref, self.base)
        return self._fn

    def fingerprint(self) -> dict:
        fn = self.function()
        src = getattr(sys.modules.get(fn.__module__), "__file__", None)
        return {"builder": self.ref, "params": self.params,
                "builder_source_sha256": tree_sha256(Path(src)) if src else None}

    def prepare(self, vocab_size, num_classes, seq_len):
        self._args = (vocab_size, num_classes, seq_len)
        self._model = self._call(vocab_size, num_classes, seq_len)
        return self._model

    @property
    def model(self):
        if self._model is None:
            raise RuntimeError("BuilderSource.prepare() first")
        return self._model

    def rebuild(self, vocab_size, num_classes, seq_len):
        """A clone of the model the builder made (same layer names: a second call could number them anew)."""
        from .tf import keras

        if self._args != (vocab_size, num_classes, seq_len):
            self.prepare(vocab_size, num_classes, seq_len)
        return keras().models.clone_model(self._model)

    def _call(self, vocab_size, num_classes, seq_len):
        from .tf import is_keras3_model, keras

        fn = self.function()
        try:
            m = fn(vocab_size=vocab_size, num_classes=num_classes, seq_len=seq_len, **self.params)
        except TypeError as e:
            raise InputError(f"{self.where}: calling it failed ({e}). Fix: define it as function(vocab_size, "
                             f"num_classes, seq_len, **params) and match model.params to it.") from None
        if is_keras3_model(m):
            raise InputError(f"{self.where}: returned a Keras 3 model; TFMOT compresses tf_keras models only. Fix: "
                             f"build it with `import tf_keras as keras`.")
        if not isinstance(m, keras().Model):
            raise InputError(f"{self.where}: returned {type(m).__name__}, not a tf_keras Model. Fix: return "
                             f"tf_keras.Model(inputs, outputs).")
        return m


def source_for(spec) -> ModelSource:
    if spec.architecture is not None:
        return BuiltinSource(spec.architecture)
    if spec.model.path is not None:
        return FileSource(spec.model, spec.source)
    return BuilderSource(spec.model, spec.source)


# ----------------------------------------------------------------------------------------------- files
def tree_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (relative names and contents, in sorted order)."""
    from .data.datasets import sha256_file

    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + b"\0" + sha256_file(f).encode())
    return h.hexdigest()


def detect_format(path: Path) -> str:
    """``keras`` (tf_keras zip), ``keras3``, ``h5`` or ``savedmodel``; a one-line error otherwise."""
    if not path.exists():
        raise InputError(f"{path}: model file not found. Fix: check model.path (relative to the spec file).")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise InputError(f"{path}: a directory without saved_model.pb, so not a SavedModel. Fix: give {FORMATS}.")
    from .files import regular_file

    regular_file(path, "model file", ArtifactError)
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "h5"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                meta = json.loads(z.read("metadata.json"))
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
                return [json.loads(z.read("config.json"))]
        if fmt == "h5":
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
            if raw is None:
                raise ArtifactError(f"{path}: an HDF5 file without a model config (weights only?). Fix: save the "
                                    f"whole model (model.save(...)), not save_weights.")
            return [json.loads(raw if isinstance(raw, str) else raw.decode())]
        from .tf import keras

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
        from .tf import keras

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
    return {n: v for n, v in vars(mod).items() if isinstance(v, type) and not n.startswith("_")}


def check_safe(path: Path, fmt: str, mspec, extra_known: set[str]) -> None:
    """Refuse Lambda layers (unless trusted) and classes nobody defined, before anything is deserialized."""
    found = []
    for cfg in _config_of(path, fmt):
        _class_names(cfg, found)
    known = _known_classes(fmt == "keras3") | extra_known
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
    if fmt == "keras3":
        from .keras3 import load_and_rebuild

        return load_and_rebuild(path, objs, safe_mode=not mspec.trust_model_code)
    from .tf import keras

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


def import_builder(ref: str, base: Optional[Path]):
    """``package.module:function``, imported with the spec file's directory (and the working directory) on the path."""
    mod_name, fn_name = ref.split(":")
    added = [str(p) for p in (base, Path.cwd()) if p is not None and str(p) not in sys.path]
    sys.path[:0] = added
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:
        raise InputError(f"model.builder {ref!r}: cannot import {mod_name} ({type(e).__name__}: {e}). Fix: put it "
                         f"beside the spec file or on PYTHONPATH.") from None
    finally:
        for p in added:
            sys.path.remove(p)
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise InputError(f"model.builder {ref!r}: {mod_name} has no function {fn_name}. Fix: name a function.")
    return fn


# ----------------------------------------------------------------------------------------- the model
def layer_types_of(model) -> set[str]:
    """Class names of the layers with weights, with the layer a Bidirectional wraps."""
    out = set()
    for layer in iter_layers(model):
        if type(layer).__name__.startswith("QuantizeWrapper"):  # QAT: the layer it wraps
            layer = layer.layer
        if layer.weights:
            out.add(type(layer).__name__)
            inner = getattr(layer, "forward_layer", None)
            if inner is not None:
                out.add(type(inner).__name__)
    return out


def iter_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and type(layer).__name__ in ("Functional", "Sequential", "Model"):
            yield from iter_layers(layer)
        else:
            yield layer


def output_kind(model) -> str:
    """``probabilities`` when the model ends in a softmax, else ``logits``."""
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    name = getattr(act, "__name__", "") if act is not None else ""
    if name == "softmax" or type(last).__name__ == "Softmax":
        return "probabilities"
    return "logits"


def input_spec(model) -> tuple[Optional[int], str]:
    """(sequence length or None when dynamic, dtype name) of the model's one input, after checking its shape."""
    return model.inputs[0].shape[1], model.inputs[0].dtype.name


def check_io(model, where: str, num_classes: int, seq_len: int, vocab_size: int, dataset: str) -> dict:
    """One-line errors for a model that does not fit the data; the facts used (a dict) otherwise."""
    fix_in = ("edgeopt feeds one integer tensor of token ids [batch, seq_len]; a padding mask is computed inside "
              "the model (Embedding(mask_zero=True), or from the ids)")
    if len(model.inputs) != 1:
        names = [t.name.split(":")[0] for t in model.inputs]
        raise InputError(f"{where}: has {len(model.inputs)} inputs ({', '.join(names)}); {fix_in}. Fix: give a "
                         f"model with one token-id input.")
    shape = tuple(model.inputs[0].shape)
    dtype = model.inputs[0].dtype.name
    if len(shape) != 2:
        raise InputError(f"{where}: its input has shape {list(shape)}; {fix_in}. Fix: give a model whose input is "
                         f"[batch, seq_len] token ids.")
    if dtype not in ("int32", "int64", "float32"):
        raise InputError(f"{where}: its input is {dtype}; {fix_in}. Fix: use an int32 input.")
    if shape[1] is not None and shape[1] != seq_len:
        raise InputError(f"{where}: takes sequences of {shape[1]} tokens, the tokenizer makes {seq_len}. Fix: set "
                         f"tokenizer.seq_len: {shape[1]} (or leave it unset: a model file's own length is used).")
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        got = [list(o.shape) for o in model.outputs]
        raise InputError(f"{where}: outputs {got}; a text classifier has one [batch, num_classes] output (logits or "
                         f"probabilities). Fix: end the model in Dense(num_classes).")
    n_out = model.outputs[0].shape[1]
    if n_out != num_classes:
        raise InputError(f"{where}: outputs {n_out} class scores, dataset {dataset} has {num_classes} classes. Fix: "
                         f"give a model with Dense({num_classes}) output, or the data it was made for.")
    emb = [layer for layer in iter_layers(model) if type(layer).__name__ == "Embedding"]
    if emb and emb[0].input_dim < vocab_size:
        raise InputError(f"{where}: its Embedding {emb[0].name!r} has {emb[0].input_dim} rows, the tokenizer's "
                         f"vocabulary has {vocab_size} ids. Fix: set tokenizer.max_vocab: {emb[0].input_dim} (or give "
                         f"the vocabulary the model was trained with as tokenizer.vocab_file).")
    return {"input_dtype": dtype, "seq_len": shape[1], "num_classes": int(n_out), "output": output_kind(model),
            "embedding_rows": int(emb[0].input_dim) if emb else None}
