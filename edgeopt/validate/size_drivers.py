"""What drives a model file's size, for a size budget that failed: the layers holding most of the weights (an
Embedding's rows x width, and how many of its rows the tokenizer uses), and the knobs that shrink them for this
kind of model. A file's bytes are almost all weights, so the weight counts of the Keras model that was converted
say where the bytes are; no library reads that out of a Keras model, hence this module.
"""
from __future__ import annotations

from typing import Optional

BYTES_PER_WEIGHT = {"float32": 4, "float16": 2, "dynamic": 1, "int8": 1, "int16x8": 1}


def weights_by_layer(model) -> list[tuple[str, str, int, tuple]]:
    """(name, class, weight count, the largest weight's shape) of every layer with weights (a compression
    wrapper's: the class it wraps), largest first."""
    from ..sources import iter_layers

    out = []
    for layer in iter_layers(model):
        inner = getattr(layer, "layer", None)  # a pruning/clustering/QAT wrapper: the layer it wraps
        base = inner if inner is not None and type(layer).__name__.endswith("Wrapper") else layer
        ws = [w for w in layer.get_weights() if getattr(w, "size", 0)]
        if ws:
            big = max(ws, key=lambda w: w.size)
            out.append((layer.name, type(base).__name__, int(sum(w.size for w in ws)), tuple(big.shape)))
    return sorted(out, key=lambda r: -r[2])


def describe(model, quantization: str, vocab_used: Optional[int], source_kind: str) -> Optional[str]:
    """One sentence on what drives the size, and the knobs, or None for a model without weights."""
    rows = weights_by_layer(model)
    total = sum(r[2] for r in rows)
    if not total:
        return None
    name, cls, n, shape = rows[0]
    share = n / total
    per = BYTES_PER_WEIGHT.get(quantization, 4)
    what = f"{cls} {name!r} holds {n:,} of the model's {total:,} weights ({share:.0%}, about {n * per / 1e6:.2f} MB " \
           f"as {quantization})"
    if cls == "Embedding" and len(shape) == 2:
        r, d = shape
        what = (f"the vocabulary {r:,} x embedding width {d} = {n:,} weights in {cls} {name!r}, {share:.0%} of the "
                f"model's {total:,} (about {n * per / 1e6:.2f} MB as {quantization})")
        if vocab_used is not None and vocab_used < r:
            what += f"; the tokenizer uses {vocab_used:,} of its {r:,} rows"
    if source_kind == "architecture":
        knobs = ("tokenizer.max_vocab (fewer rows), architecture.params.embed_dim (narrower rows), or a smaller "
                 "architecture (architecture.params); prune/cluster shrink the gzip size, not the file")
    else:
        knobs = ("the model's own Embedding (input_dim: the rows the tokenizer needs; output_dim), or a vocabulary "
                 "with fewer words; prune/cluster shrink the gzip size, not the file")
    if quantization in ("float32", "float16"):
        knobs += f"; int8 or dynamic store each weight in 1 byte ({per} now)"
    return f"what drives the size: {what}. Knobs: {knobs}"

