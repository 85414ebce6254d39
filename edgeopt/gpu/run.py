"""GPU runs of a ``.tflite`` file through LiteRT's GPU accelerator, each in a child process with the driver's
environment (env.py): compile and read the partition, run examples, compare with the CPU.

What is reported, and what never is (TOOLCHAIN section 7, the brief's "measure honestly"):

- the adapter Dawn selected, by name, and whether it is software (lavapipe is a CPU pretending to be a GPU);
- the partition from LiteRT's log (partition.py): ops on the GPU and on the CPU, the refused op types with
  LiteRT's reasons, fully delegated or not (decided by the log and a GPU-only compile, not by
  ``is_fully_accelerated()``, which counts XNNPACK's nodes as accelerated);
- no adapter: ``available: false`` with LiteRT's words and the setup command, never CPU figures in GPU fields;
- latency only for a hardware adapter; on a software adapter the time per inference is the CPU's emulation of a
  GPU, so it is kept out of every latency field and reported as what it is.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from . import partition
from . import env
from .env import SETUP_CMD, child_env, root, status, system_icds

TIMEOUT = 1800


def _total_ops(artifact: Path) -> Optional[int]:
    from ..inspect import inspect_tflite

    try:
        return sum(o["count"] for o in inspect_tflite(str(artifact))["ops"])
    except Exception:  # the partition is still read from the log
        return None


def _child(artifact: Path, software: bool, inputs: Optional[np.ndarray] = None, enforce_f32: bool = False,
           gpu_only: bool = False, bench: Optional[dict] = None) -> tuple[dict, str, Optional[np.ndarray]]:
    with tempfile.TemporaryDirectory(prefix="edgeopt-gpu-") as d:
        work = Path(d)
        req = {"artifact": str(Path(artifact).resolve()), "enforce_f32": enforce_f32, "gpu_only": gpu_only,
               "bench": bench}
        if inputs is not None:
            np.save(work / "inputs.npy", np.asarray(inputs, np.int32))
            req["inputs"] = str(work / "inputs.npy")
        (work / "request.json").write_text(json.dumps(req))
        try:
            p = subprocess.run([sys.executable, "-m", "edgeopt.gpu.worker", str(work / "request.json")],
                               capture_output=True, text=True, env=child_env(software), timeout=TIMEOUT)
            log, rc = p.stderr, p.returncode
        except subprocess.TimeoutExpired as e:
            log, rc = (e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr or ""), -9
        res = json.loads((work / "result.json").read_text()) if (work / "result.json").is_file() else {
            "compiled": False, "error": f"the GPU worker exited {rc} without a result (a crash in the driver?)"}
        outs = np.load(work / "outputs.npy") if (work / "outputs.npy").is_file() else None
        return res, log, outs


def compile_only(artifact: Path, software: bool) -> dict:
    """Compile ``artifact`` for ``GPU|CPU`` and report the adapter and the partition (no inference)."""
    res, log, _ = _child(artifact, software)
    return _describe(res, log, _total_ops(artifact))


def _describe(res: dict, log: str, total_ops: Optional[int]) -> dict:
    part = partition.parse(log, total_ops)
    ad = part.pop("adapter")
    out = {"adapter": ad, "compiled": bool(res.get("compiled"))}
    if not res.get("compiled"):
        none = partition.no_adapter_reason(log)
        if none:
            return {**out, "no_adapter": True, "reason": none}
        # the adapter is there; LiteRT refused the file itself (nothing runs through CompiledModel, GPU or CPU)
        why = partition.load_error(log) or res.get("error") or "the GPU accelerator did not start"
        return {**out, "no_adapter": False, "reason": why, "gpu_ops": 0, "cpu_ops": total_ops, "total_ops": total_ops,
                "refused": [{"op": "(the whole file)", "reason": f"LiteRT's CompiledModel does not load it: {why}"}],
                "fully_delegated": False}
    if ad is None:
        return {**out, "no_adapter": True, "reason": partition.no_adapter_reason(log) or "no adapter was selected"}
    out.update(part)
    out["is_fully_accelerated"] = res.get("is_fully_accelerated")  # LiteRT's own flag (XNNPACK counts), for reference
    return out


PARTITION_KEYS = ("gpu_ops", "cpu_ops", "total_ops", "refused", "fully_delegated")


def _driver_label(software: bool) -> str:
    return "software (edgeopt gpu setup)" if software else "system"


def _unloadable(d: dict, software: bool) -> dict:
    """The evidence for a file the adapter never saw (LiteRT refused it): the adapter that would run it, and the
    whole file on the CPU with the reason."""
    sel = list_adapters(software_only=software).get("selected")
    ad = {k: sel[k] for k in ("name", "arch", "vendor", "backend", "type", "software")} if sel else None
    return {"available": True, "compiled": False, "adapter": ad, "software": bool(ad and ad["software"]),
            "driver": _driver_label(software), "reason": d["reason"],
            "partition": {k: d[k] for k in PARTITION_KEYS}, "gpu_only_compiles": False, "is_fully_accelerated": None}


def _evidence(artifact: Path, software: bool, res: dict, log: str) -> dict:
    """The adapter and the partition from a GPU|CPU compile's result and log, with a GPU-only compile deciding full
    delegation; or ``available: false`` (no adapter), or the file LiteRT refused (``compiled: false``)."""
    d = _describe(res, log, _total_ops(artifact))
    if d.get("no_adapter"):
        return {"available": False, "reason": d.get("reason"), "setup": SETUP_CMD}
    if not d["compiled"]:
        return _unloadable(d, software)
    gonly, _, _ = _child(artifact, software, gpu_only=True)
    pt = {k: d[k] for k in PARTITION_KEYS}
    pt["fully_delegated"] = bool(pt["fully_delegated"] and gonly.get("compiled"))
    return {"available": True, "compiled": True, "adapter": d["adapter"], "software": d["adapter"]["software"],
            "driver": _driver_label(software), "partition": pt, "gpu_only_compiles": bool(gonly.get("compiled")),
            "is_fully_accelerated": d.get("is_fully_accelerated")}


def partition_of(artifact) -> dict:
    """``inspect --gpu``: the adapter and the partition of one ``.tflite`` (compiled for ``GPU|CPU`` and for the GPU
    alone), or ``available: false`` with the reason."""
    software, why = _driver()
    if why:
        return {"available": False, "reason": why, "setup": SETUP_CMD}
    res, log, _ = _child(Path(artifact), software)
    return _evidence(Path(artifact), software, res, log)


def bench(artifact, inputs: np.ndarray, warmup: int, iterations: int) -> dict:
    """``bench --accelerator gpu``: the partition, and p50/p90/p99 on a hardware adapter; on a software adapter no
    latency, with the reason (its time is a CPU emulating a GPU)."""
    out = partition_of(artifact)
    if not out["available"]:
        return {**out, "latency_ms": None}
    if not out.get("compiled", True):
        return {**out, "latency": None, "latency_note": "nothing ran on the GPU: " + out["reason"]}
    if out["software"]:
        return {**out, "latency": None, "latency_note": f"no latency: {out['adapter']['name']} is a software adapter "
                                                        f"(a CPU emulating a GPU); its time says nothing of a device's "
                                                        f"GPU"}
    res, _, _ = _child(Path(artifact), False, inputs, bench={"warmup": warmup, "iterations": iterations})
    return {**out, "latency": res.get("latency"), "error": res.get("error"),
            "latency_note": "wall time of one call including the read-back of its output (the GPU's result), batch 1"}


def _driver() -> tuple[bool, Optional[str]]:
    """Which driver a GPU run uses: (software, why not available). A system driver when one is installed and its
    adapter is hardware; else the software driver when it is set up."""
    if system_icds():
        sel = list_adapters().get("selected")
        if sel and sel["driver"] == "system" and not sel["software"]:
            return False, None
    if status()["ready"]:
        return True, None
    return True, f"no GPU adapter: no hardware Vulkan driver and the software driver is not set up. Fix: {SETUP_CMD}"


def check(artifact, inputs: np.ndarray, cpu_outputs: Optional[np.ndarray] = None, labels=None) -> dict:
    """The GPU evidence for one ``.tflite`` file: partition (GPU with CPU fallback), whether a GPU-only compile
    works, outputs over ``inputs`` at the GPU's default precision (fp16) and with ``enforce_f32``, their deviation
    from ``cpu_outputs`` (the CPU interpreter's, same inputs) and, with ``labels``, the accuracy through the GPU."""
    artifact = Path(artifact)
    software, why = _driver()
    if why:
        return {"available": False, "reason": why, "setup": SETUP_CMD, "latency_ms": None}
    res, log, y16 = _child(artifact, software, inputs, enforce_f32=False)
    out = _evidence(artifact, software, res, log)
    if not out["available"]:
        return {**out, "latency_ms": None}
    if not out["compiled"]:
        return {**out, "examples": int(len(inputs)), "latency_ms": None,
                "fp16": {"ran": False, "error": out["reason"]}, "fp32": {"ran": False, "error": out["reason"]},
                "latency_note": "nothing ran on the GPU"}
    out["examples"] = int(len(inputs))
    res32, _, y32 = _child(artifact, software, inputs, enforce_f32=True)
    for name, y, r in (("fp16", y16, res), ("fp32", y32, res32)):
        out[name] = _numerics(y, cpu_outputs, labels, r)
    sec = res.get("seconds_per_example")
    if out["software"]:
        out["latency_ms"] = None
        out["latency_note"] = (f"software adapter ({out['adapter']['name']}): its time per inference "
                               f"({sec * 1e3:.2f} ms) is a CPU emulating a GPU, not a device latency"
                               if sec else "software adapter: no latency")
    else:
        out["latency_ms"] = round(sec * 1e3, 4) if sec else None
        out["latency_note"] = "median wall time of one inference including the wait for the GPU's result"
    return out


def _numerics(y: Optional[np.ndarray], cpu: Optional[np.ndarray], labels, res: dict) -> dict:
    if y is None:
        return {"ran": False, "error": res.get("error")}
    o: dict = {"ran": True, "finite": bool(np.isfinite(y).all())}
    if cpu is not None:
        diff = np.abs(y.astype(np.float64) - np.asarray(cpu, np.float64).reshape(y.shape))
        o["max_abs_deviation"] = float(diff.max()) if diff.size else 0.0
        o["argmax_agreement"] = float((y.argmax(-1) == np.asarray(cpu).reshape(y.shape).argmax(-1)).mean())
    if labels is not None:
        o["accuracy"] = float((y.argmax(-1) == np.asarray(labels)).mean())
    return o


def _probe_model() -> Path:
    """A tiny ``.tflite`` (a MUL and an ADD on a float vector), converted once into the GPU directory: enough for
    Dawn to select an adapter."""
    p = root() / "probe.tflite"
    if not p.is_file():
        from ..tf import tf as _tf

        tf = _tf()

        @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
        def f(x):
            return x * 2.0 + 1.0

        m = tf.Module()
        m.f = f
        data = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], m).convert()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".probe.{os.getpid()}.tflite")
        tmp.write_bytes(data)
        os.replace(tmp, p)
    return p


def list_adapters(software_only: bool = False) -> dict:
    """The adapter Dawn selects with the system's Vulkan drivers and with the software driver, and which one edgeopt
    uses (a hardware adapter when there is one, else the software one)."""
    from . import run

    out: dict = {}
    if not software_only:
        out["system"] = run.compile_only(_probe_model(), software=False) if system_icds() else {
            "adapter": None, "reason": "no Vulkan driver installed (no ICD manifest in " + ", ".join(env.SYSTEM_ICD_DIRS) + ")"}
    sw_ready = (root() / "lvp_icd.json").is_file()
    out["software"] = run.compile_only(_probe_model(), software=True) if sw_ready else {
        "adapter": None, "reason": f"not set up ({SETUP_CMD})"}
    sysa = (out.get("system") or {}).get("adapter")
    if sysa and not sysa["software"]:
        out["selected"] = {"driver": "system", **sysa}
    elif out["software"].get("adapter"):
        out["selected"] = {"driver": "software (edgeopt gpu setup)", **out["software"]["adapter"]}
    elif sysa:
        out["selected"] = {"driver": "system", **sysa}
    else:
        out["selected"] = None
    return out
