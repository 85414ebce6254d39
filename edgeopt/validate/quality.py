"""Validators of what an artifact computes: ``quality`` (the file run over the whole split through the runtime
protocol, scored by its task: accuracy, per-class figures, a tagger's entity spans; finiteness; parity with the
reference outputs) and ``size`` (raw, gzip -9, SHA-256)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ArtifactError, ConversionError
from .base import MeasureRequest, Quality, Size


def _check_shape(req: MeasureRequest, logits: np.ndarray) -> None:
    """The outputs must have the task's shape for this data: a file edgeopt just exported with other outputs has
    a wrong output layer; a given file with other outputs was built for other data."""
    n, seq_len = len(req.label_names), req.split.x.shape[1]
    want = req.task.output_shape(seq_len, n)
    if logits.shape[1:] == want:
        return
    if req.origin == "given":
        raise ArtifactError(f"{req.path}: outputs {logits.shape[1:]} scores per example, but a "
                            f"{req.task.name.replace('_', ' ')} model of this data gives {want} "
                            f"({req.task.outputs()}): it was built for other data. Fix: use the spec the artifact "
                            f"was built from.")
    raise ConversionError(f"{Path(req.path).name}: the exported model outputs {logits.shape[1:]} per example, "
                          f"not {want} ({req.task.outputs()}). Fix: check the model's output layer.")


class QualityValidator:
    name = "quality"
    section = None  # the build composes it into the manifest's metrics

    def applies(self, req: MeasureRequest) -> bool:
        return True

    def measure(self, req: MeasureRequest, so_far) -> Quality:
        from .. import runtimes
        from .accuracy import accuracy, parity
        from .classes import per_class

        sess = runtimes.load(req.path, req.run)
        logits = sess.run(req.split.x)
        _check_shape(req, logits)
        task = req.task
        flat, y = task.rows(logits, req.split.y)  # a tagger: its real tokens, padding left out
        ref_rows = task.rows(req.reference, req.split.y)[0] if req.reference is not None else None
        entities = task.entities(logits, req.split.gold, req.label_names)
        return Quality(
            split=req.split.name, examples=int(len(req.split.x)), rows=int(len(y)),
            accuracy=round(accuracy(flat, y), 6), per_class=per_class(flat.argmax(1), y, list(req.label_names)),
            entities=entities,
            finite=bool(np.isfinite(logits).all()), logits=logits, variable_tensors=sess.variable_tensors,
            parity=parity(ref_rows, flat) if ref_rows is not None else None,
            reference_finite=bool(np.isfinite(req.reference).all()) if req.reference is not None else None,
            runtime=sess.runtime, delegate_applied=sess.delegate_applied,
            chance=task.chance(flat, y, entities, req.split.gold, list(req.label_names)))


class SizeValidator:
    name = "size"
    section = None  # the build composes it into the manifest's metrics

    def applies(self, req: MeasureRequest) -> bool:
        return True

    def measure(self, req: MeasureRequest, so_far) -> Size:
        from .size import size_of

        s = size_of(req.path)
        return Size(s["size_bytes"], s["gzip_bytes"], s["sha256"])
