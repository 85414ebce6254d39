"""A subclassed Keras model (its layers are Python code, not a graph) as a functional model edgeopt can check,
convert and measure: called once on the one input edgeopt feeds it. Its structure is used as it is, so the passes
that rebuild a model layer by layer are refused for it (``FileSource.native``).
"""
from __future__ import annotations

from ..errors import InputError

SUBCLASSED = ("a subclassed model (its layers are Python code, not a graph), traced through one int32 token-id "
              "input [batch, seq_len]")


def saved_length(model):
    """The sequence length the model was built or saved with (tf_keras: the saved call's spec, or the build shape;
    Keras 3: the build shapes), None when it records none."""
    shapes = []
    try:
        spec = model.save_spec() if callable(getattr(model, "save_spec", None)) else None
        if spec:
            shapes.append(tuple(spec[0][0].shape))
    except Exception:  # noqa: BLE001 -- a model saved without a call spec
        pass
    shapes.append(getattr(model, "_build_input_shape", None))
    shapes += list((getattr(model, "_build_shapes_dict", None) or {}).values())
    for shape in shapes:
        try:
            if shape is not None and len(shape) == 2 and shape[1] is not None:
                return int(shape[1])
        except TypeError:
            continue
    return None


def traced(model, K, where: str):
    """A subclassed model as a functional one: called once on a symbolic int32 input [batch, length] (the
    concrete signature edgeopt feeds it; the length it was built with when it records one); a model whose call
    cannot take that is a one-line error."""
    inp = K.Input(shape=(saved_length(model),), dtype="int32", name="tokens")
    try:
        out = model(inp)
    except Exception as e:  # noqa: BLE001 -- the user's call() code: its own message, on one line
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"{where}: a subclassed model whose call() does not take one int32 token-id tensor "
                         f"[batch, seq_len] ({type(e).__name__}: {msg}). Fix: make call(ids) return the class "
                         f"scores, or save a functional or Sequential model.") from None
    return K.Model(inp, out)
