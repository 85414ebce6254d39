"""The device's cost signal: the one place it is chosen, measured and labelled.

A target's cost is its device's own signal: instructions per inference on the target's emulated core (arm64,
qemu and edgeopt's counter) or under callgrind (x86), a cost model's estimate from that count, or latency
measured on its board over SSH. The build machine's clock is reported as what it is (``host_latency``) and is the
cost only when asked for a device of the build machine's own architecture (``tune --host-cost`` on an x86 target).

- ``count_cpu``: where a build counts instructions (``--count``/``--no-count``, else when the budgets or cost
  model are about instructions);
- ``tune_signal`` / ``counted_on`` / ``signal_label`` / ``cost_value``: what a tune costs candidates by, where it
  is counted, in words, and the value;
- ``CountValidator``: the count itself (from the emulated run on the same CPU when there is one);
- ``device_cost``: the build manifest's ``device_cost`` record (the count at the target's XNNPACK setting, and the
  cost model's estimate, labelled as an estimate).
"""
from __future__ import annotations

from typing import Optional

from ..errors import EdgeOptError, InputError
from .base import MeasureRequest, memoized

def count_cpu(target, count: Optional[bool]) -> Optional[str]:
    """Where a build counts instructions per inference: never with ``count=False`` (--no-count); with
    ``count=True`` (--count), or by default when the target's budgets or cost model are about instructions, on
    device.qemu_cpu (arm64) or under callgrind (x86_64)."""
    b = target.budgets
    wanted = count if count is not None else (b.max_instructions_per_inference is not None
                                              or b.max_estimated_latency_ms is not None
                                              or target.device.cost_model is not None)
    if not wanted:
        return None
    cpu = counted_on(target)
    if cpu is None:
        raise InputError(f"--count: target {target.name} names no emulated CPU. Fix: add device.qemu_cpu to "
                         f"{target.source or target.name}.")
    return cpu


def tune_signal(target, on_device: bool, host_cost: bool = False) -> str:
    """What a tune costs candidates by: latency on the board (``--on-device``), else instructions per inference on
    the target's core (the emulated one for arm64, callgrind's for x86); with ``host_cost`` (``--host-cost``) the
    build machine's p90 latency, only for a device of the build machine's own architecture."""
    if on_device:
        return "device_latency"
    if host_cost:
        from .budgets import host_arch

        if target.device.arch != host_arch():
            raise InputError(f"--host-cost: {target.name}'s device is {target.device.arch} and this machine is "
                             f"{host_arch()}; its latency is not the device's. Fix: drop --host-cost (the cost is "
                             f"then instructions on device.qemu_cpu), or measure on the board with --on-device.")
        return "host_latency"
    return "instructions"


def counted_on(target) -> Optional[str]:
    """Where a target's instructions are counted: its emulated core (arm64; None when it names none), or callgrind
    (x86)."""
    return "x86" if target.device.arch == "x86_64" else target.device.qemu_cpu


def signal_label(signal: str, target) -> str:
    """What the cost is, in words (a count is not a time; the build machine is not the device)."""
    x86 = target.device.arch == "x86_64"
    return {"instructions": ("instructions per inference under valgrind's callgrind (x86: the runtime's AVX2 "
                             "kernels)" if x86 else f"emulated instructions per inference ({target.device.qemu_cpu})"),
            "device_latency": "p90 ms on the board (device latency)",
            "host_latency": "p90 ms on the build machine (host latency; " + (
                "the target is x86)" if x86 else "not the device's)")}[signal]


def cost_value(signal: str, m: dict) -> Optional[float]:
    """The cost signal's value in a tune candidate's measurement."""
    if signal == "instructions":
        return (m.get("instructions") or {}).get("per_inference")
    if signal == "device_latency":
        return (m.get("device_latency") or {}).get("p90_ms")
    return m["host_latency"]["p90_ms"]


def pick_count(ins: dict, xnnpack: bool) -> Optional[int]:
    """The count a budget is judged on: ONNX Runtime's, or LiteRT's at the target's XNNPACK setting."""
    key = "onnxruntime" if "onnxruntime" in ins else ("xnnpack_on" if xnnpack else "xnnpack_off")
    return ins.get(key)


class CountValidator:
    """Instructions per inference on the request's CPU (batch 1, one thread; XNNPACK on and off where the runtime
    has it). Taken from the emulated run on the same CPU when it counted, else counted on its own (a few seconds
    under qemu, about a minute under callgrind), unless the request takes the emulated run's alone. The record:
    cpu, counter, instructions (None when nothing was counted), note; or cpu and error when a given artifact's
    count failed (the regression gate records it, and fails)."""

    name = "count"
    section = None  # the build composes it into the manifest's metrics

    def applies(self, req: MeasureRequest) -> bool:
        return req.count is not None

    def measure(self, req: MeasureRequest, so_far) -> dict:
        from ..emulator import counter

        cpu = req.count
        row = next((c for c in (so_far.get("emulated") or {}).get("cpus", []) if c["cpu"] == cpu), None)
        if (row is not None and row.get("instructions") is not None) or req.count_source == "emulated_only":
            return {"cpu": cpu, "counter": counter.QEMU_COUNTER,
                    "instructions": row.get("instructions") if row is not None else None, "note": counter.QEMU_NOTE}
        return memoized(req, self.name, so_far, lambda: self._count(req))

    def _count(self, req: MeasureRequest) -> dict:
        from ..emulator.validate import count_for_target

        if req.origin == "given":  # the regression gate: a count that fails is recorded, and fails the gate
            try:
                return count_for_target(req.path, req.split.x, req.count, quiet=True)
            except EdgeOptError as e:
                return {"cpu": req.count, "error": str(e)}
        return count_for_target(req.path, req.split.x, req.count, req.quiet)


class CostValidator:
    """The ``cost`` record: the count at the XNNPACK setting the artifact is judged at (see :func:`device_cost`)."""

    name = "cost"
    section = "device_cost"  # a build manifest's key for its record: instructions per inference, an estimate

    def applies(self, req: MeasureRequest) -> bool:
        return req.count is not None

    def measure(self, req: MeasureRequest, so_far) -> Optional[dict]:
        return device_cost(req.target, so_far.get("count"), req.judged_at[1])


def device_cost(target, count: Optional[dict], xnnpack: Optional[bool] = None) -> Optional[dict]:
    """The device's own cost signal: instructions per inference at the XNNPACK setting (default: the target's),
    on the counted CPU (device.qemu_cpu, or x86 under callgrind), and, where the target declares a cost model, the
    estimated latency it gives (an estimate, with its source, in fields of its own)."""
    from ..emulator import counter

    if count is None or count.get("instructions") is None:
        return None
    t, cpu, counts = target, count["cpu"], count["instructions"]
    xnn = "xnnpack" in t.runtime.delegates if xnnpack is None else xnnpack
    ins = pick_count(counts, xnn)
    x86 = cpu == "x86"
    out = {"cpu": cpu, "counter": counter.X86_COUNTER if x86 else counter.QEMU_COUNTER,
           "xnnpack": xnn if t.runtime.name == "litert" else None, "instructions_per_inference": ins, "counts": counts,
           "label": ("x86 instructions per inference (valgrind callgrind, AVX2)" if x86 else
                     f"emulated instructions per inference ({cpu})"),
           "note": counter.X86_NOTE if x86 else counter.QEMU_NOTE}
    if counts.get("error"):
        out["error"] = counts["error"]
    cm = t.device.cost_model
    if cm is not None and ins is not None:
        out.update(estimated_latency_ms=round(cm.estimate_ms(ins), 4), estimate_rate_instructions_per_ns=cm.rate_per_ns,
                   estimate_source=cm.source, estimate_note="an ESTIMATE: instructions / the cost model's rate; not "
                                                            "measured on the device")
    return out


def instructions_of(count: dict, xnnpack: bool) -> dict:
    """A tune candidate's ``instructions`` entry: the count at the candidate's XNNPACK setting, and the counts."""
    return {"cpu": count["cpu"], "counter": count["counter"], "per_inference": pick_count(count["instructions"],
                                                                                          xnnpack),
            "counts": {k: v for k, v in count["instructions"].items() if k in ("xnnpack_on", "xnnpack_off",
                                                                                "onnxruntime", "error")}}
