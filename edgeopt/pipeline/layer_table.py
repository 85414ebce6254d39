"""The ``--dry-run`` layer table of a user's model: for each layer, what each pass of the recipe will do to it
(pruned, clustered, quantization-aware with which config, or left alone and why) and what the converter is known to
do with it (TOOLCHAIN §2-3 and the measurements in the module constants below); and the planner's check that a
recipe naming layers names only layers its pass can handle.
"""
from __future__ import annotations

import re

from ..errors import SpecError
from ..recipe import CLUSTERABLE, PRESERVED_BY_SCHEME, PRUNABLE, QAT_STEPS

QAT_CONFIG = {
    "Dense": "annotated (TFMOT default 8-bit config)",
    "Conv1D": "annotated (edgeopt Conv1DQuantizeConfig: per-tensor kernel, activation)",
    "LayerNormalization": "output quantized (edgeopt OutputQuantizeConfig; gamma/beta stay float in QAT)",
    "MultiHeadAttention": "edgeopt NoOpQuantizeConfig (an output quantizer fails); the converter calibrates it",
    "Embedding": "never annotated (its int32 input breaks FakeQuant); int8 by the converter",
}
# What TF 2.21's converter does with each layer (measured here: TOOLCHAIN §3 and this issue's runs).
INT8_CRASHES = {"GRU", "SimpleRNN"}  # full-int8 conversion dies with SIGSEGV (exit 139), also inside Bidirectional
MASKED_INT8_CRASHES = {"LSTM"}  # ... and an LSTM fed a padding mask (Embedding(mask_zero=True)): SIGSEGV too
CONVERTER = {
    "Embedding": "GATHER; int8 keeps the int32 ids input",
    "Dense": "FULLY_CONNECTED",
    "Conv1D": "CONV_2D over an expanded axis (dilation kept)",
    "LSTM": "UNIDIRECTIONAL_SEQUENCE_LSTM, static batch 1; int8 OK without a padding mask",
    "GRU": "unrolled while loop, static batch 1",
    "SimpleRNN": "unrolled while loop, static batch 1",
    "LayerNormalization": "decomposed (MEAN, SQUARED_DIFFERENCE, RSQRT)",
    "MultiHeadAttention": "decomposed (BATCH_MATMUL, SOFTMAX, FULLY_CONNECTED)",
    "Dropout": "removed (inference)",
    "SpatialDropout1D": "removed (inference)",
}


def _cls(layer) -> str:
    name = type(layer).__name__
    inner = getattr(layer, "forward_layer", None)
    return f"{name}({type(inner).__name__})" if inner is not None else name


def _base(layer) -> set[str]:
    inner = getattr(layer, "forward_layer", None)
    return {type(layer).__name__} | ({type(inner).__name__} if inner is not None else set())


def _selected(layer, sel) -> bool:
    if sel.types and type(layer).__name__ not in sel.types:
        return False
    return not sel.names or bool(re.fullmatch(sel.names, layer.name))


def _pass_cell(layer, cfg, supported: set[str], what: str) -> str:
    cls = type(layer).__name__
    if not layer.weights:
        return "- (no weights)"
    if cls not in supported:
        return f"left alone ({cls}: TFMOT cannot {what} it)"
    if not _selected(layer, cfg.layers):
        return "left alone (not selected by layers)"
    if what == "prune":
        s = f"{cfg.m_by_n[0]}:{cfg.m_by_n[1]}" if cfg.m_by_n else f"{cfg.sparsity:g} {cfg.schedule}"
        return f"pruned ({s})"
    return f"clustered ({cfg.clusters}, {cfg.init})"


def _qat_cell(layer, step) -> str:
    cls = type(layer).__name__
    if not layer.weights and cls not in QAT_CONFIG:
        return "-"
    cell = QAT_CONFIG.get(cls, "not annotated; the converter calibrates it")
    if step.name != "qat" and cls in (PRUNABLE | CLUSTERABLE) - PRESERVED_BY_SCHEME and layer.weights:
        cell += "; frozen so its structure survives"
    return cell


def _input_cell(layer) -> str:
    """The model's real input, as the converter keeps it: its dtype and length (edgeopt feeds token ids in it)."""
    out = getattr(layer, "output", None)
    dt = getattr(out, "dtype", None) or getattr(layer, "dtype", None)
    dt = str(getattr(dt, "name", dt))
    shape = list(getattr(out, "shape", None) or [])
    length = shape[1] if len(shape) > 1 and shape[1] is not None else "seq_len"
    ids = "token ids" if dt.startswith("int") else f"token ids given as {dt} (the model's own input type)"
    return f"the model's input: {dt} [1, {length}], {ids}"


def masked(model) -> bool:
    """Whether the model makes a padding mask (an Embedding with mask_zero=True) its recurrent layers consume."""
    from ..sources import iter_layers

    return any(type(x).__name__ == "Embedding" and getattr(x, "mask_zero", False) for x in iter_layers(model))


def _crash_of(base: set[str], is_masked: bool) -> list[str]:
    return sorted(base & INT8_CRASHES) + [f"masked {c}" for c in sorted(base & MASKED_INT8_CRASHES) if is_masked]


def int8_crashes(model) -> list[str]:
    """The layer types TF 2.21's full-int8 conversion is known to crash on (SIGSEGV), in this model: GRU and
    SimpleRNN always, an LSTM when a padding mask reaches it ("masked LSTM"); also inside Bidirectional."""
    from ..sources import iter_layers

    m = masked(model)
    return sorted({c for layer in iter_layers(model) for c in _crash_of(_base(layer), m)})


def _converter_cell(layer, ptq: str, is_masked: bool = False) -> str:
    base = _base(layer)
    if "InputLayer" in base:
        return _input_cell(layer)
    crash = _crash_of(base, is_masked)
    note = "; ".join(CONVERTER[c] for c in sorted(base) if c in CONVERTER) or "converted as is"
    if crash and ptq == "int8":
        return f"full-int8 crashes TF 2.21's converter ({crash[0]}: SIGSEGV); dynamic/float32 convert"
    return note


def layer_rows(model, steps, ptq: str, target=None, vectorizer=None) -> list[dict]:
    """One row per layer; ``vectorizer``: the file's TextVectorization, split off (the input row says so)."""
    from ..sources import iter_layers

    cfg = {s.name: s for s in steps}
    qat = next((s for s in steps if s.name in QAT_STEPS), None)
    is_masked = masked(model)
    rows = []
    for layer in iter_layers(model):
        rows.append({
            "layer": layer.name, "type": _cls(layer), "params": int(layer.count_params()) if layer.built else 0,
            "prune": _pass_cell(layer, cfg["prune"].config, PRUNABLE, "prune") if "prune" in cfg else "-",
            "cluster": _pass_cell(layer, cfg["cluster"].config, CLUSTERABLE, "cluster") if "cluster" in cfg else "-",
            "qat": _qat_cell(layer, qat) if qat else "-",
            "converter": _converter_cell(layer, ptq, is_masked)})
    if vectorizer is not None and rows and rows[0]["type"] == "InputLayer":
        rows[0]["converter"] += (f", made by the file's TextVectorization {vectorizer.layer.name!r} (split off: "
                                 f"it is the build's tokenizer.json, with the same ids)")
    return rows


def format_table(rows) -> str:
    cols = ("layer", "type", "params", "prune", "cluster", "qat", "converter")
    shown = [c for c in cols if any(str(r[c]) != "-" for r in rows) or c in ("layer", "type", "params")]
    w = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in shown}
    lines = ["  ".join(c.ljust(w[c]) for c in shown)]
    lines += ["  ".join(str(r[c]).ljust(w[c]) for c in shown) for r in rows]
    return "\n".join(ln.rstrip() for ln in lines)


def check_named_layers(model, steps, where: str) -> None:
    """A recipe whose ``layers.names`` picks a layer its pass cannot handle, or no layer at all, is an error."""
    from ..sources import iter_layers

    for st in steps:
        if st.name not in ("prune", "cluster") or not st.config.layers.names:
            continue
        supported = PRUNABLE if st.name == "prune" else CLUSTERABLE
        hit = [layer for layer in iter_layers(model) if re.fullmatch(st.config.layers.names, layer.name)]
        if not hit:
            raise SpecError(f"{where}: {st.name}.layers.names {st.config.layers.names!r} matches no layer (layers: "
                            f"{', '.join(layer.name for layer in iter_layers(model))}). Fix: correct the pattern.")
        bad = [f"{layer.name} ({type(layer).__name__})" for layer in hit
               if type(layer).__name__ not in supported or not layer.weights]
        if bad:
            raise SpecError(f"{where}: {st.name}.layers.names picks {', '.join(bad)}, which {st.name} cannot handle "
                            f"(it supports {', '.join(sorted(supported))}). Fix: narrow the pattern.")
