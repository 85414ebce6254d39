"""Keras 3 ``.keras`` files, rebuilt in tf_keras with their weights (TFMOT compresses tf_keras models only).

No library converts a Keras 3 model to tf_keras, so it is done here: the Keras 3 model is loaded (safe mode), each
layer's config is translated (dtype policies to names, Keras 3-only keys dropped) into the same tf_keras class, the
functional graph is re-wired from the Keras 3 config's ``inbound_nodes``, and each layer's weights are copied. The
result is compared with the Keras 3 model on real token ids (:func:`compare`); a mismatch is an error.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ArtifactError, InputError

# Keras 3 config keys that tf_keras layers do not take (they carry no behaviour those layers have).
_DROP = {"quantization_config", "optional", "lora_rank", "lora_alpha", "synchronized", "input_axes", "output_axes"}


def _dtype_name(d):
    if isinstance(d, dict):
        return d.get("config", {}).get("name", "float32")
    return d


def _clean(cfg: dict) -> dict:
    out = {}
    for k, v in cfg.items():
        if k in _DROP:
            continue
        if k == "dtype":
            v = _dtype_name(v)
        elif k == "batch_shape":
            k = "batch_input_shape"
        elif isinstance(v, dict) and "class_name" in v and "config" in v and "module" in v:
            # a nested serialized object (initializer, regularizer, wrapped layer)
            inner = v["config"]
            v = {"class_name": v["class_name"], "config": _clean(inner) if isinstance(inner, dict) else inner}
        out[k] = v
    return out


def _history(arg):
    """[(layer name, node index, tensor index)] of a Keras 3 node argument (a tensor or a list of tensors)."""
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        h = arg["config"]["keras_history"]
        return [(h[0], h[1], h[2])]
    if isinstance(arg, (list, tuple)):
        return [t for a in arg for t in _history(a)]
    return []


def translate(k3_config: dict) -> dict:
    """A Keras 3 Functional/Sequential model config as a tf_keras one."""
    cls = k3_config["class_name"]
    cfg = k3_config["config"]
    if cls == "Sequential":
        return {"class_name": "Sequential", "config": {"name": cfg.get("name", "sequential"),
                                                       "layers": [_layer(l, seq=True) for l in cfg["layers"]]}}
    if cls not in ("Functional", "Model"):
        raise InputError(f"Keras 3 model class {cls} cannot be rebuilt (a subclassed model has no graph to "
                         f"translate). Fix: save a Functional or Sequential model, or rebuild it with tf_keras.")

    def io(v):
        v = v if v and isinstance(v[0], list) else [v]
        return [list(x) for x in v]

    return {"class_name": "Functional", "config": {
        "name": cfg.get("name", "model"), "layers": [_layer(l) for l in cfg["layers"]],
        "input_layers": io(cfg["input_layers"]), "output_layers": io(cfg["output_layers"])}}


class NoEquivalent(InputError):
    """A Keras 3 layer class tf_keras does not have (a custom layer, or a new built-in one)."""

    def __init__(self, msg: str, cls: str):
        super().__init__(msg)
        self.cls = cls


def _layer(l: dict, seq: bool = False) -> dict:
    from ..tf import keras

    K = keras()
    cls = l["class_name"]
    if not hasattr(K.layers, cls):
        raise NoEquivalent(f"Keras 3 layer {l.get('name') or l['config'].get('name')!r} ({cls}) has no tf_keras "
                           f"equivalent. Fix: replace it with a standard layer, or build the model with tf_keras.",
                           cls)
    out = {"class_name": cls, "config": _fit_config(getattr(K.layers, cls), _clean(l["config"]), l)}
    if not seq:
        out["name"] = l.get("name") or l["config"]["name"]
        out["inbound_nodes"] = [_node(getattr(K.layers, cls), out["name"], node) for node in l.get("inbound_nodes", [])]
    return out


def _fit_config(layer_cls, cfg: dict, l: dict) -> dict:
    """Drop the Keras 3-only keys the tf_keras class refuses when they hold their off value (None/False, e.g.
    LayerNormalization's rms_scaling); one that is on has no tf_keras equivalent."""
    import re

    if layer_cls.__name__ == "InputLayer":
        return cfg
    if layer_cls.__name__ == "MultiHeadAttention":  # tf_keras builds it from these when given; the graph call does
        cfg = {"query_shape": None, "key_shape": None, "value_shape": None, **cfg}
    for _ in range(len(cfg) + 1):
        try:
            layer_cls.from_config(dict(cfg))
            return cfg
        except TypeError as e:
            m = (re.search(r"unexpected keyword argument '(\w+)'", str(e))
                 or re.search(r"Keyword argument not understood:', '(\w+)'", str(e)))
            if not m or m.group(1) not in cfg:
                raise
            key = m.group(1)
            if cfg[key] not in (None, False):
                raise InputError(f"Keras 3 layer {cfg.get('name')!r} ({layer_cls.__name__}) sets {key}="
                                 f"{cfg[key]!r}, which tf_keras does not have. Fix: build the model with tf_keras, "
                                 f"or without {key}.") from None
            cfg = {k: v for k, v in cfg.items() if k != key}
    return cfg


def _node(layer_cls, name: str, node: dict) -> list:
    """A Keras 3 call node (positional ``args``, ``kwargs``) in tf_keras' form: one entry per input tensor of the
    first argument; further tensor arguments become keyword arguments named by the layer's ``call`` signature
    (MultiHeadAttention's ``value``)."""
    import inspect

    args, kwargs = list(node.get("args", [])), dict(node.get("kwargs", {}))
    params = [p for p in inspect.signature(layer_cls.call).parameters if p != "self"]
    extra = {}
    for i, a in enumerate(args[1:], 1):
        h = _history(a)
        if len(h) != 1 or i >= len(params):
            raise InputError(f"Keras 3 layer {name!r}: positional argument {i} cannot be translated. Fix: build the "
                             f"model with tf_keras.")
        extra[params[i]] = list(h[0])
    for k, v in kwargs.items():
        if v is None or k == "training":
            continue
        h = _history(v)
        if len(h) == 1:
            extra[k] = list(h[0])
        elif isinstance(v, (bool, int, float, str)):
            extra[k] = v
        else:
            raise InputError(f"Keras 3 layer {name!r} is called with {k}={str(v)[:60]}, which the rebuild does not "
                             f"translate. Fix: build the model with tf_keras.")
    first = _history(args[0]) if args else []
    return [[n, i, t, extra if j == 0 else {}] for j, (n, i, t) in enumerate(first)]


def load_and_rebuild(path: Path, custom: dict, safe_mode: bool = True):
    """(tf_keras model, report with the Keras 3 model for :func:`compare`)."""
    from ..tf import keras

    K = keras()
    import keras as k3

    try:
        m3 = k3.saving.load_model(path, compile=False, safe_mode=safe_mode, custom_objects=custom)
    except Exception as e:
        msg = " ".join(str(e).split())[:240]
        raise ArtifactError(f"{path}: Keras 3 cannot load it ({type(e).__name__}: {msg}). Fix: give a Keras 3 "
                            f".keras file saved by model.save().") from None
    from .textvec import split_off

    if type(m3).__name__ not in ("Functional", "Sequential"):  # subclassed: traced, used as it is
        from .subclassed import SUBCLASSED, traced

        m3 = traced(m3, k3, str(path))
        return m3, {"keras_version": k3.__version__, "layers": len(m3.layers), "vectorizer": None,
                    "native": SUBCLASSED}
    m3, vectorizer = split_off(m3, str(path), k3)
    # the loaded model's config (what a .keras file's config.json holds; an .h5 file's, or the integer sub-model
    # after a TextVectorization, in the same form)
    try:
        tk_cfg = translate(k3.saving.serialize_keras_object(m3))
    except NoEquivalent as e:
        if not any(getattr(c, "__name__", None) == e.cls.split(">")[-1] for c in custom.values()):
            raise
        # the user's own layer: no tf_keras twin, so the Keras 3 model itself goes to the converter (PTQ only)
        return m3, {"keras_version": k3.__version__, "layers": len(m3.layers), "vectorizer": vectorizer,
                    "native": f"its custom layer {e.cls} has no tf_keras version to rebuild it in"}
    try:
        with K.utils.custom_object_scope(custom):
            tk = (K.Sequential.from_config(tk_cfg["config"]) if tk_cfg["class_name"] == "Sequential"
                  else K.Model.from_config(tk_cfg["config"]))
    except InputError:
        raise
    except Exception as e:
        msg = " ".join(str(e).split())[:240]
        raise InputError(f"{path}: the Keras 3 model could not be rebuilt in tf_keras ({type(e).__name__}: {msg}). "
                         f"Fix: build and save it with tf_keras.") from None
    if tk_cfg["class_name"] == "Sequential" and not tk.built:
        tk.build(tuple(m3.inputs[0].shape))
    by_name = {layer.name: layer for layer in m3.layers}
    for layer in tk.layers:
        src = by_name.get(layer.name)
        if src is None or not layer.weights:
            continue
        w = src.get_weights()
        try:
            layer.set_weights(w)
        except ValueError as e:
            raise InputError(f"{path}: Keras 3 layer {layer.name!r} ({type(src).__name__}) stores its weights "
                             f"differently from tf_keras ({' '.join(str(e).split())[:160]}). Fix: build the model "
                             f"with tf_keras.") from None
    return tk, {"keras_version": k3.__version__, "layers": len(tk.layers), "_model": m3, "vectorizer": vectorizer}


def compare(report: dict, tk_model, x, path: Path, tol: float = 1e-4) -> dict:
    """Run both models on real token ids; the max abs difference is recorded, and above ``tol`` is an error."""
    import numpy as np

    a = np.asarray(report["_model"].predict(x, batch_size=256, verbose=0))
    b = np.asarray(tk_model.predict(x, batch_size=256, verbose=0))
    diff = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
    if not diff <= tol:
        raise InputError(f"{path}: the tf_keras rebuild of this Keras 3 model disagrees with it on {len(x)} real "
                         f"inputs (max abs difference {diff:.3g} > {tol:g}). Fix: build the model with tf_keras.")
    return {"keras_version": report["keras_version"], "compared_examples": int(len(x)),
            "max_abs_difference": diff, "tolerance": tol}
