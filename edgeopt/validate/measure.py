"""One evidence path: the table of validators and ``measure_artifact``.

``build``, ``tune``'s evaluator, ``edgeopt validate`` and ``edgeopt verify`` measure an artifact by calling
:func:`measure_artifact` with a :class:`~edgeopt.validate.base.MeasureRequest`; the CLI only formats what comes
back, and ``budgets.check`` judges it. A new validator is a class with ``name``, ``applies(req)`` and
``measure(req, so_far)`` in a file of its own, and one line in :data:`VALIDATORS`. The order of the table is the
order of measurement: a validator sees the records of those before it (the GPU and the clients compare with the
quality run's outputs; the count reuses the emulated run's). A validator with a ``section`` writes its record into
a build's manifest under that key (:func:`manifest_sections`); the others' figures the build composes into
``metrics``.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional

from .base import ArtifactEvidence, MeasureRequest, Validator
from .board import BoardValidator
from .client import ClientValidator
from .cost import CostValidator, CountValidator
from .emulated import EmulatedValidator
from .gpu import GpuValidator
from .latency import LatencyValidator
from .quality import QualityValidator, SizeValidator
from .robustness import RobustnessValidator

VALIDATORS: tuple[Validator, ...] = (
    SizeValidator(),  # raw, gzip -9, SHA-256
    QualityValidator(),  # the task's figures over the whole split, finiteness, parity with the reference
    LatencyValidator(),  # the build machine's latency over a grid of runtime options
    EmulatedValidator(),  # emulated arm64 CPUs: loads, delegate, parity with the host
    CountValidator(),  # instructions per inference on the target's core: the device's cost signal
    CostValidator(),  # the count at the judged XNNPACK setting, and a cost model's estimate from it
    BoardValidator(),  # latency on the target's board over SSH: device latency
    ClientValidator(),  # the real client library an app uses (MediaPipe Tasks)
    RobustnessValidator(),  # the split as people type it (case, punctuation), in edgeopt's runtime and the client
    GpuValidator(),  # LiteRT's GPU accelerator: partition, numerics against the CPU
)


def measure_artifact(req: MeasureRequest, have: Optional[Mapping] = None,
                     only: Optional[Iterable[str]] = None) -> ArtifactEvidence:
    """Every validator that applies to ``req``, in the table's order. ``have``: records already measured for this
    very file (taken, not measured again); ``only``: the validators to run (the others are skipped)."""
    records = dict(have or {})
    only = set(only) if only is not None else None
    for v in VALIDATORS:
        if v.name in records or (only is not None and v.name not in only) or not v.applies(req):
            continue
        records[v.name] = v.measure(req, records)
    return ArtifactEvidence(req.path, req.label, records, req.against, req.judged_at)


def manifest_sections(ev: ArtifactEvidence) -> dict:
    """Each validator's own section of a build manifest, from the deployed file's evidence: its record under its
    ``section`` key, for the validators that ran and recorded something."""
    out = {}
    for v in VALIDATORS:
        if v.section and ev.get(v.name):
            rec = ev[v.name]
            out[v.section] = list(rec) if isinstance(rec, tuple) else rec
    return out
