"""Runs INSIDE the emulated arm64 Python (qemu-user): loads one artifact with edgeopt's own runtime session (the
same protocol as on the host: LiteRT interpreter with XNNPACK on/off and N threads, or ONNX Runtime's CPU EP),
runs the given token ids, and writes the outputs and what it saw. Imports only numpy, the runtimes and
edgeopt.runtimes / edgeopt.inspect / edgeopt.errors (no TensorFlow, no pydantic: the guest has neither).

    python3.11 -m edgeopt.emulator.guest REQUEST.json

REQUEST: {"artifact", "runtime": "litert"|"onnxruntime", "threads", "xnnpack", "inputs": .npy, "outputs": .npy,
"result": .json, "count": {"empty", "invokes"} (optional: marker windows for the instruction counter instead of
running the inputs), "bench": {"warmup", "iterations"} (optional: time the inputs at batch 1 instead, as
``edgeopt bench`` does on the host; on a real board over SSH, edgeopt/remote.py)}
"""
from __future__ import annotations

import json
import platform
import re
import sys
import time


def _rejected_ops(message: str) -> list[str]:
    """Op names a runtime's load error says it has no kernel for."""
    ops = re.findall(r"(?:builtin opcode|custom op(?:eration)?)\s*'?([A-Za-z0-9_]+)'?", message)
    ops += re.findall(r"Could not find an implementation for (\w+)\(\d+\)", message)
    return sorted(set(ops))


MARK_START, MARK_STOP = 0x6564676F, 0x6564676E  # the instruction counter's markers (emulator/count.c)


def _mark(value: int) -> None:
    import os

    try:
        os.sched_get_priority_max(value)  # EINVAL for this policy number: only the counting plugin sees it
    except OSError:
        pass


def _count_windows(req: dict, sess, x) -> None:
    """Marker-bracketed windows for the counting plugin: ``empty`` around a no-op call (the markers' own cost),
    then ``invokes`` around one inference each (batch 1, the same input)."""
    c = req["count"]

    def noop():
        return None

    for _ in range(int(c["empty"])):
        _mark(MARK_START)
        noop()
        _mark(MARK_STOP)
    reset = None
    if req["runtime"] == "litert":
        sess.it.set_tensor(sess._in["index"], sess._quant_in(x[:1]))
        call = sess.it.invoke
        reset = sess.it.reset_all_variables if sess.variable_tensors else None
    else:
        feed = {sess._in.name: x[:1]}
        names = [o.name for o in sess.sess.get_outputs()]
        run = sess.sess._sess.run  # the binding's run: the Python wrapper's input checks are not the model's cost

        def call():
            return run(names, feed, None)
    import gc

    gc.collect()
    gc.disable()  # a collection inside a window is the interpreter's cost, not the model's
    for _ in range(int(c["invokes"])):
        if reset is not None:
            reset()
        _mark(MARK_START)
        call()
        _mark(MARK_STOP)


def _board_identity() -> dict:
    """What a board says it is: its model (device tree), hostname, kernel, and each core's CPU part (arm64's
    /proc/cpuinfo has no model name)."""
    import os

    out = {"hostname": platform.node(), "kernel": platform.release()}
    try:
        out["model"] = open("/proc/device-tree/model", "rb").read().rstrip(b"\0").decode("utf-8", "replace")
    except OSError:
        pass
    try:
        parts = re.findall(r"^CPU part\s*:\s*(0x[0-9a-fA-F]+)", open("/proc/cpuinfo").read(), re.M)
        if parts:
            out["cpu_parts"] = {p: parts.count(p) for p in sorted(set(parts))}
    except OSError:
        pass
    out["cores_online"] = os.cpu_count()
    return out


def main(request_path: str) -> int:
    import numpy as np

    from edgeopt.runtimes.base import RuntimeOptions

    req = json.loads(open(request_path).read())
    res = {"machine": platform.machine(), "python": platform.python_version(), "loaded": False,
           "load_error": None, "rejected_ops": [], "delegate_applied": False, "delegate_error": None}
    opts = RuntimeOptions(threads=int(req["threads"]), xnnpack=bool(req["xnnpack"]))
    t0 = time.perf_counter()
    try:
        if req["runtime"] == "litert":
            from edgeopt.runtimes.litert import LiteRTSession as Session
        else:
            from edgeopt.runtimes.onnxrt import OnnxRuntimeSession as Session
        sess = Session(req["artifact"], opts)
    except Exception as e:  # what the runtime said, for the host to report
        res["load_error"] = " ".join(str(e).split())[:500]
        res["rejected_ops"] = _rejected_ops(str(e))
        open(req["result"], "w").write(json.dumps(res))
        return 0
    res["loaded"] = True
    res["runtime_version"] = sess.version
    res["delegate_applied"] = bool(sess.delegate_applied)
    res["delegate_error"] = sess.delegate_error
    if req["runtime"] == "litert":
        ops = [op["op_name"] for op in sess.it._get_ops_details()]
        res["ops_after_delegation"] = {name: ops.count(name) for name in sorted(set(ops))}
        res["output_quantization"] = [float(v) for v in sess._out["quantization"]]
    else:
        res["providers"] = sess.sess.get_providers()
    res["load_seconds"] = round(time.perf_counter() - t0, 2)
    x = np.load(req["inputs"])
    if req.get("count"):
        _count_windows(req, sess, x)
        open(req["result"], "w").write(json.dumps(res))
        return 0
    if req.get("bench"):
        from edgeopt.runtimes.base import machine_info

        st = sess.benchmark(x, warmup=int(req["bench"]["warmup"]), iterations=int(req["bench"]["iterations"]))
        res["latency"] = st.to_dict()
        res["board"] = {**machine_info(), **_board_identity(), "kind": "remote device"}
        open(req["result"], "w").write(json.dumps(res))
        return 0
    t1 = time.perf_counter()
    y = sess.run(x)
    res["emulated_wall_seconds"] = round(time.perf_counter() - t1, 2)  # qemu time: NOT device latency
    res["examples"] = int(len(x))
    np.save(req["outputs"], y.astype(np.float32))
    open(req["result"], "w").write(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
