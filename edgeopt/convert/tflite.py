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

import contextlib
import tempfile
import types
from pathlib import Path

import numpy as np

from ..errors import ConversionError
from ..tf import tf
from .worker import worker

MODES = ("float32", "dynamic", "int8", "float16", "int16x8")
CALIBRATED = ("int8", "int16x8")  # the modes that need a representative dataset


def _embeddings(model) -> list:
    """The Embedding layers of ``model``, also those inside TFMOT's wrappers (prune, cluster, quantize)."""
    from ..tf import keras

    E = keras().layers.Embedding
    out, stack, seen = [], list(getattr(model, "layers", [])), set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, E):
            out.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
        inner = getattr(layer, "layer", None)
        if inner is not None:
            stack.append(inner)
    return out


@contextlib.contextmanager
def flat_lookups(model, on: bool = True):
    """While tracing for export, each Embedding looks its ids up as a 1-D vector (RESHAPE to [n], GATHER, RESHAPE
    back) instead of GATHER on [1, seq_len], the ids clipped into the table. The values are identical for every
    id the tokenizer makes; LiteRT's GPU accelerator refuses GATHER with
    2-D indices ("Only support 1D indices", TOOLCHAIN section 7), which sends the lookup, and the graph's start, to
    the CPU. Wrappers call the inner layer's ``call`` with their own weights, so the patch is on the layer
    instance; it is removed afterwards."""
    T = tf()
    layers = _embeddings(model) if on else []

    def flat_call(self, inputs):
        # clipped into the table: the GPU's GATHER does not bound-check (an out-of-range id gives some fixed row,
        # no error) while the CPU's fails; clipped, both give the same row for any id
        ids = T.clip_by_value(T.cast(inputs, T.int32), 0, int(self.embeddings.shape[0]) - 1)
        shape = ids.shape.as_list()
        if any(d is None for d in shape):
            shape = T.concat([T.shape(ids), [T.shape(self.embeddings)[-1]]], 0)
        else:
            shape = shape + [int(self.embeddings.shape[-1])]
        # the table as [V, 1, D]: the lookup gives [n, 1, D], which the converter cannot fold into a following
        # broadcast (a [n, D] lookup was: ADD([n, D], [1, n, D]) reads as another batch on the GPU, and the
        # reference transformer's outputs were garbage there while right on the CPU)
        table = T.expand_dims(self.embeddings, 1)
        return T.reshape(T.gather(table, T.reshape(ids, [-1])), shape)

    before = [layer.__dict__.get("call") for layer in layers]
    for layer in layers:
        layer.call = types.MethodType(flat_call, layer)
    try:
        yield len(layers)
    finally:
        for layer, old in zip(layers, before):
            if old is None:
                del layer.call
            else:
                layer.call = old


def save_for_conversion(model, directory: Path, seq_len: int | None = None, flat_lookup: bool = False) -> Path:
    """``model`` as a SavedModel whose one signature takes int32 ``tokens`` [1, seq_len]; ``flat_lookup``: the
    embedding lookups take 1-D ids (:func:`flat_lookups`, for GPU targets)."""
    T = tf()
    seq_len = seq_len or int(model.inputs[0].shape[1])
    in_dtype = model.inputs[0].dtype

    # The module tracks the model's variables only, not the model: tracking a Keras model makes saved_model.save
    # trace and serialize every layer's call as well (seconds, and QAT wrappers' traces can fail).
    mod = T.Module()
    from ..tf import is_keras3_model

    # a Keras 3 model (used as it is: sources.FileSource.native) holds keras.Variables: its tf.Variables are tracked,
    # or the SavedModel captures them untracked and the converter cannot freeze them into the file
    mod.variables_ = [v.value for v in model.variables] if is_keras3_model(model) else list(model.variables)

    @T.function(input_signature=[T.TensorSpec([1, seq_len], T.int32, name="tokens")])
    def serve(tokens):
        x = tokens if in_dtype == T.int32 else T.cast(tokens, in_dtype)
        return {"logits": model(x, training=False)}

    mod.serve = serve
    out = Path(directory) / "saved_model"
    with flat_lookups(model, flat_lookup):
        serve.get_concrete_function()  # traced here, with the lookups as asked
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


class TFLiteConverter:
    """LiteRT's converter, in its own process (convert/worker.py): every quantization mode; the GPU targets'
    export with 1-D embedding lookups (``flat_lookup``)."""

    format = "tflite"
    modes = MODES

    def check(self, steps, ptq: str, where: str, target) -> None:
        return None  # the converter's refusals depend on the model's graph: a crash or refusal falls back

    def convert(self, session, key: str, model, mode: str, n_rep: int, target) -> bytes:
        from ..console import log

        flat = bool(target is not None and target.flat_lookup)  # GPU targets: 1-D ids into the embedding lookup
        ck = (key, "tflite", mode, n_rep, flat)
        if ck not in session.converted:
            if (key, flat) not in session.exports:
                d = Path(session.tmp.name) / f"export-{len(session.exports)}"
                d.mkdir()
                session.exports[(key, flat)] = save_for_conversion(model, d, session.tok.seq_len, flat_lookup=flat)
            log(session.quiet, f"[edgeopt] converting to TFLite {mode} (converter process"
                               f"{', 1-D embedding lookups for the GPU' if flat else ''})")
            session.converted[ck] = convert_saved(session.exports[(key, flat)], mode,
                                                  session.representative(n_rep) if mode in CALIBRATED else None)
        return session.converted[ck]
