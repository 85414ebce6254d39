"""The ``emulated`` validator: the artifact on emulated arm64 CPUs (qemu-user) through the same runtime session
the host uses, compared with the host per CPU (emulator/validate.py): it loads, XNNPACK applies as on the host, the
outputs match within tolerance, and (when the counter is set up) instructions per inference on each CPU."""
from __future__ import annotations

from .base import MeasureRequest


class EmulatedValidator:
    name = "emulated"
    section = "emulator"  # a build manifest's key for its record: the emulated arm64 runs

    def applies(self, req: MeasureRequest) -> bool:
        return req.emulate is not None

    def measure(self, req: MeasureRequest, so_far) -> dict:
        from ..emulator.validate import validate_for_target

        return validate_for_target(req.path, req.split.x, req.split.y, req.target, req.seed, cpus=list(req.emulate) or None,
                                   sample=req.emulate_sample, quiet=req.quiet)
