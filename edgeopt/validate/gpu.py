"""The ``gpu`` validator: GPU targets' artifact through LiteRT's GPU accelerator (gpu/run.py, a child process with
the Vulkan driver's environment): the adapter, the partition, and the accuracy and deviation from the CPU run at
fp16 and fp32 on a seeded sample of the split; or (``gpu="partition"``, the regression gate) the partition alone."""
from __future__ import annotations

from ..console import log, working
from .base import MeasureRequest, memoized


class GpuValidator:
    name = "gpu"
    section = "gpu"  # a build manifest's key for its record: the GPU accelerator's partition and numerics

    def applies(self, req: MeasureRequest) -> bool:
        return req.gpu is not None

    def measure(self, req: MeasureRequest, so_far) -> dict:
        if req.gpu == "partition":
            from ..gpu.run import PARTITION_KEYS, partition_of

            g = partition_of(req.path)
            return {"available": g["available"], "reason": g.get("reason")} if not g["available"] else {
                "available": True, "adapter": g["adapter"]["name"], "software": g["software"],
                **{k: g["partition"][k] for k in PARTITION_KEYS}}
        return memoized(req, self.name, so_far, lambda: self._check(req, so_far))

    def _check(self, req: MeasureRequest, so_far) -> dict:
        from ..emulator.validate import sample_indices
        from ..gpu import run as gpu_run

        x, y, logits = req.split.x, req.split.y, so_far["quality"].logits
        idx = sample_indices(len(x), req.gpu_sample, req.seed)
        t = req.target
        log(req.quiet, f"[edgeopt] {t.name}: running {req.label} through LiteRT's GPU accelerator on {len(idx)} "
                       f"{req.split.name} examples")
        with working(f"{t.name}: GPU pass ({len(idx):,} examples, fp16 and enforce_f32)", req.quiet):
            res = gpu_run.check(req.path, x[idx], logits[idx], y[idx])
        if req.gpu_export is not None:
            res["export"] = dict(req.gpu_export)
        if res["available"]:
            res["cpu_accuracy"] = round(float((logits[idx].argmax(1) == y[idx]).mean()), 6)
            pt = res["partition"]
            log(req.quiet, f"[edgeopt] {t.name}: GPU {res['adapter']['name']}{' (software)' if res['software'] else ''}"
                           f": {pt['gpu_ops']} of {pt['total_ops']} ops on the GPU"
                           + (", fully delegated" if pt["fully_delegated"] else
                              f", refused: {'; '.join(r['op'] + ': ' + r['reason'] for r in pt['refused']) or 'none'}")
                           + f"; accuracy through the GPU {res['fp16'].get('accuracy')} (CPU {res['cpu_accuracy']})")
        else:
            log(req.quiet, f"[edgeopt] {t.name}: GPU not run: {res['reason']}")
        return res
