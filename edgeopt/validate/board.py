"""The ``board`` validator: the artifact's latency measured on the target's board over SSH (remote.py), the only
figures edgeopt reports as device latency."""
from __future__ import annotations

from ..console import log
from .base import MeasureRequest


class BoardValidator:
    name = "board"
    section = "device_latency"  # a build manifest's key for its record: p50/p90/p99 on the board over SSH

    def applies(self, req: MeasureRequest) -> bool:
        return req.board is not None and req.latency is not None

    def measure(self, req: MeasureRequest, so_far) -> dict:
        from .. import remote

        t, plan = req.target, req.latency
        threads, xnn = req.judged_at
        log(req.quiet, f"[edgeopt] {t.name}: measuring {req.label} on the board {req.board.url}")
        return remote.bench(req.board, req.path, req.split.x[:plan.inputs], threads, xnn, plan.warmup,
                            plan.iterations, arch=t.device.arch, where=f"{t.source or t.name}: device.remote")
