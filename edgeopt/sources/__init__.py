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

Saved files are found, read and loaded safely by modelfile.py; Keras 3 files are rebuilt in tf_keras by
keras3.py.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Optional

from ..errors import InputError
from .modelfile import KERAS3, detect_format, load_file, tree_sha256


class ModelSource:
    kind = "architecture"
    pretrained = False

    def layer_types(self) -> set[str]:
        raise NotImplementedError

    def fingerprint(self) -> dict:
        return {}

    def describe(self) -> str:
        raise NotImplementedError

    def initial(self, vocab_size: int, num_classes: int, seq_len: int, vocab=()):
        """The model training starts from (``vocab``: the tokenizer's words, by id)."""
        return self.rebuild(vocab_size, num_classes, seq_len)

    def rebuild(self, vocab_size: int, num_classes: int, seq_len: int):
        raise NotImplementedError


class BuiltinSource(ModelSource):
    def __init__(self, arch):
        self.arch = arch

    def layer_types(self) -> set[str]:
        from ..architectures import LAYER_TYPES

        return set(LAYER_TYPES[self.arch.name])

    def describe(self) -> str:
        return f"built-in architecture {self.arch.name}"

    def rebuild(self, vocab_size, num_classes, seq_len):
        from ..architectures import build_model

        return build_model(self.arch.name, self.arch.config(), vocab_size=vocab_size, num_classes=num_classes,
                           seq_len=seq_len)

    def initial(self, vocab_size, num_classes, seq_len, vocab=()):
        """A tagger with pretrained embeddings starts with their vectors for the tokenizer's words (frozen); a
        text CNN with ``embeddings_init`` starts from them too (trainable)."""
        model = self.rebuild(vocab_size, num_classes, seq_len)
        cfg = self.arch.config()
        tagger = getattr(cfg, "pretrained", False)  # a tagger's frozen table, or a classifier's trainable start
        if tagger or getattr(cfg, "embeddings_init", "random") != "random":
            from ..data.tokenizer import TokenTokenizer
            from ..teachers.minilm import project, word_vectors

            if len(vocab) != vocab_size:
                raise ValueError(f"pretrained embeddings need the {vocab_size} vocabulary words, got {len(vocab)}")
            # the rows before the words (padding, unknown, a tagger's shape tokens) get fixed rows, padding zero
            skip = len(TokenTokenizer.SPECIALS) + (len(TokenTokenizer.SHAPES) if tagger else 0)
            vec = word_vectors(list(vocab), skip)
            if cfg.embed_dim < vec.shape[1]:
                vec = project(vec, cfg.embed_dim, skip)
            model.get_layer("embedding").set_weights([vec])
        return model


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

    def __init__(self, mspec):
        self.path = Path(mspec.path)
        self.mspec = mspec
        self.where = str(self.path)
        self._model = None
        self.keras3: Optional[dict] = None  # the Keras 3 rebuild's report
        self._vectorizer = None  # a TextVectorization split off the file's model (textvec.Vectorizer)
        self._native: Optional[str] = None  # why the model's structure is used as it is (see ``native``)
        self.format = detect_format(self.path)
        self._sha256: Optional[str] = None

    def describe(self) -> str:
        return f"model file {self.path} ({self.format})"

    def fingerprint(self) -> dict:
        if self._sha256 is None:  # asked by the planner and by each build's cache key: hash the file once
            self._sha256 = tree_sha256(self.path)
        return {"model_file_sha256": self._sha256, "format": self.format, "custom_module": self.mspec.custom_module}

    @property
    def model(self):
        if self._model is None:
            model = load_file(self.path, self.format, self.mspec)
            if self.format in KERAS3:
                model, self.keras3 = model
                self._vectorizer = self.keras3.pop("vectorizer", None)
                self._native = self.keras3.get("native")
            else:
                from ..tf import keras
                from .textvec import split_off

                if getattr(model, "inputs", None) is None:
                    from .subclassed import SUBCLASSED, traced

                    model, self._native = traced(model, keras(), self.where), SUBCLASSED
                model, self._vectorizer = split_off(model, self.where, keras())
            bad = _non_finite_layer(model)
            if bad:
                raise InputError(f"{self.where}: layer {bad!r} holds NaN or infinite weights, so nothing built from "
                                 f"it can be measured or quantized. Fix: retrain it, or give the file saved before "
                                 f"training diverged.")
            self._model = model
        return self._model

    @property
    def native(self) -> Optional[str]:
        """Why the model's structure is used as it is, or None: a Keras 3 model with a custom layer tf_keras has no
        version of, or a subclassed model (traced through one token-id input). Such a model takes no pass that
        needs its layers in tf_keras (TFMOT's prune, cluster and QAT; training); PTQ converts it directly."""
        self.model
        return self._native

    @property
    def vectorizer(self):
        """The model's TextVectorization layer and settings (textvec.Vectorizer), None when it takes token ids."""
        self.model
        return self._vectorizer

    def initial(self, vocab_size, num_classes, seq_len, vocab=()):
        from ..passes.common import copy_model

        if self.native:  # a Keras 3 model used as it is: cloned by Keras 3
            m = self.rebuild(vocab_size, num_classes, seq_len)
            m.set_weights(self.model.get_weights())
            return m
        return copy_model(self.model)

    def rebuild(self, vocab_size, num_classes, seq_len):
        from ..tf import keras

        if self.native:
            import keras as k3

            return k3.models.clone_model(self.model)
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
        from ..tf import keras

        if self._args != (vocab_size, num_classes, seq_len):
            self.prepare(vocab_size, num_classes, seq_len)
        return keras().models.clone_model(self._model)

    def _call(self, vocab_size, num_classes, seq_len):
        from ..tf import is_keras3_model, keras

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


def _non_finite_layer(model):
    """The name of the first layer with a NaN or infinite weight, None when every weight is finite."""
    import numpy as np

    for layer in iter_layers(model):
        if any(not np.isfinite(np.asarray(w, np.float64)).all() for w in layer.get_weights()
               if np.issubdtype(np.asarray(w).dtype, np.floating)):
            return layer.name
    return None


def source_for(spec) -> ModelSource:
    if spec.architecture is not None:
        return BuiltinSource(spec.architecture)
    if spec.model.path is not None:
        return FileSource(spec.model)
    return BuilderSource(spec.model, spec.source)


# -------------------------------------------------------------------------------------------- builders
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


def first_embedding(model):
    """The Embedding the token ids index: the model's first Embedding layer; else, inside the first custom layer
    holding Embeddings (keras.io's TokenAndPositionEmbedding), the one with the most rows (the token table, not
    the position table); None when there is none."""
    top = next((layer for layer in iter_layers(model) if type(layer).__name__ == "Embedding"), None)
    if top is not None:
        return top
    for layer in iter_layers(model):
        flat = getattr(layer, "_flatten_layers", None)
        inner = [x for x in flat(include_self=False, recursive=True)
                 if type(x).__name__ == "Embedding"] if callable(flat) else []
        if inner:
            return max(inner, key=lambda x: int(x.input_dim))
    return None


def output_kind(model) -> str:
    """``probabilities`` when the model ends in a softmax, else ``logits``."""
    last = model.layers[-1]
    act = getattr(last, "activation", None)
    name = getattr(act, "__name__", "") if act is not None else ""
    if name == "softmax" or type(last).__name__ == "Softmax":
        return "probabilities"
    return "logits"


def check_io(model, where: str, num_classes: int, seq_len: int, vocab_size: int, dataset: str,
             tagging: bool = False) -> dict:
    """One-line errors for a model that does not fit the data; the facts used (a dict) otherwise. ``tagging``:
    token classification, whose output is [batch, seq_len, num_tags]."""
    fix_in = ("edgeopt feeds one integer tensor of token ids [batch, seq_len]; a padding mask is computed inside "
              "the model (Embedding(mask_zero=True), or from the ids)")
    if len(model.inputs) != 1:
        names = [t.name.split(":")[0] for t in model.inputs]
        raise InputError(f"{where}: has {len(model.inputs)} inputs ({', '.join(names)}); {fix_in}. Fix: give a "
                         f"model with one token-id input.")
    shape = tuple(model.inputs[0].shape)
    dtype = str(getattr(model.inputs[0].dtype, "name", model.inputs[0].dtype))  # tf_keras: a DType; Keras 3: a str
    if len(shape) != 2:
        raise InputError(f"{where}: its input has shape {list(shape)}; {fix_in}. Fix: give a model whose input is "
                         f"[batch, seq_len] token ids.")
    if dtype not in ("int32", "int64", "float32"):
        raise InputError(f"{where}: its input is {dtype}; {fix_in}. Fix: use an int32 input.")
    if shape[1] is not None and shape[1] != seq_len:
        raise InputError(f"{where}: takes sequences of {shape[1]} tokens, the tokenizer makes {seq_len}. Fix: set "
                         f"tokenizer.seq_len: {shape[1]} (or leave it unset: a model file's own length is used).")
    if tagging:
        out = list(model.outputs[0].shape) if len(model.outputs) == 1 else []
        if len(out) != 3 or out[1] not in (None, seq_len):
            got = [list(o.shape) for o in model.outputs]
            raise InputError(f"{where}: outputs {got}; a tagger has one [batch, seq_len, num_tags] output (tag scores "
                             f"per token, return_sequences=True). Fix: end the model in Dense({num_classes}) over the "
                             f"sequence.")
        if out[2] != num_classes:
            raise InputError(f"{where}: outputs {out[2]} tag scores per token, dataset {dataset} has {num_classes} "
                             f"BIO tags. Fix: give a model with Dense({num_classes}) output, or the data it was made "
                             f"for.")
    elif len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        got = [list(o.shape) for o in model.outputs]
        raise InputError(f"{where}: outputs {got}; a text classifier has one [batch, num_classes] output (logits or "
                         f"probabilities). Fix: end the model in Dense(num_classes).")
    n_out = model.outputs[0].shape[-1]
    if n_out != num_classes:
        raise InputError(f"{where}: outputs {n_out} class scores, dataset {dataset} has {num_classes} classes. Fix: "
                         f"give a model with Dense({num_classes}) output, or the data it was made for.")
    emb = first_embedding(model)
    if emb is not None and emb.input_dim < vocab_size:
        raise InputError(f"{where}: its Embedding {emb.name!r} has {emb.input_dim} rows, the tokenizer's "
                         f"vocabulary has {vocab_size} ids. Fix: set tokenizer.max_vocab: {emb.input_dim} (or give "
                         f"the vocabulary the model was trained with as tokenizer.vocab_file).")
    check = (f"not run: edgeopt found no Embedding layer in the model (nor inside its custom layers), so it cannot "
             f"check that the tokenizer's {vocab_size} ids fit the model's table; an id past it fails when the file "
             f"runs" if emb is None else f"the tokenizer's {vocab_size} ids fit Embedding {emb.name!r} "
                                          f"({int(emb.input_dim)} rows)")
    return {"input_dtype": dtype, "seq_len": shape[1], "num_classes": int(n_out), "output": output_kind(model),
            "embedding_rows": int(emb.input_dim) if emb is not None else None, "vocabulary_check": check}
