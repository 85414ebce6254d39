"""Where a ``.tflite`` file's ops run under LiteRT's GPU accelerator, read from LiteRT's native log.

No Python API of ai-edge-litert 2.3.0 says which ops the GPU takes (TOOLCHAIN section 7), and
``CompiledModel.is_fully_accelerated()`` also counts XNNPACK's nodes as accelerated. What LiteRT writes to file
descriptor 2 when it compiles a model for ``GPU|CPU`` does say it, in lines like::

    ... environment.cc:532] Selected adapter: llvmpipe (LLVM 15.0.6, 256 bits), arch=software, vendor=mesa,
        backend=Vulkan, adapterType=CPU / Software
    ERROR: Following operations are not supported by GPU delegate:
    GATHER: Only support 1D indices
    DEQUANTIZE:
    13 operations will run on the GPU, and the remaining 1 operations will run on the CPU.
    ... delegate_kernel.cc:984] Initializing WebGPU-based API from graph.

Nothing is printed about the partition when every op goes to the GPU, so "fully delegated" is decided from the
absence of that line *and* the presence of the GPU kernel's initialisation (and, by the caller, a GPU-only compile
that succeeds). No library parses this log; the parser is written here and pinned to real output by the tests
(tests/e2e/data/gpu/*.log, captured from this stack).
"""
from __future__ import annotations

import re
from typing import Optional

ADAPTER = re.compile(r"Selected adapter: (?P<name>.+?), arch=(?P<arch>[^,]*), vendor=(?P<vendor>[^,]*), "
                     r"backend=(?P<backend>[^,]*), adapterType=(?P<type>[^\r\n]+)")
UNSUPPORTED = "Following operations are not supported by GPU delegate:"
REFUSED = re.compile(r"^(?P<op>[A-Z][A-Z0-9_]*):(?:\s+(?P<reason>.*))?$")  # the reason may be empty
SPLIT = re.compile(r"(?P<gpu>\d+) operations? will run on the GPU, and the remaining (?P<cpu>\d+) operations? will "
                   r"run on the CPU")
EXCLUDED = re.compile(r"Excluding node (?P<node>\d+) .*from WebGPU delegation")  # LITERT_GPU_DEBUG_EXCLUDE_NODES
GPU_KERNEL = ("Initializing WebGPU-based API from graph", "Created a WebGPU environment")
NO_ADAPTER = re.compile(r"No (?:suitable )?adapters? (?:was )?found|Failed to create (?:a )?WebGPU|"
                        r"Failed to (?:create|initialize) .*GPU environment", re.I)


def adapter(log: str) -> Optional[dict]:
    """The adapter Dawn selected, or None when the log names none."""
    m = None
    for m in ADAPTER.finditer(log):
        pass  # the last selection (one per GPU environment; they repeat when several models compile)
    if m is None:
        return None
    kind = m["type"].strip()
    return {"name": m["name"].strip(), "arch": m["arch"].strip(), "vendor": m["vendor"].strip(),
            "backend": m["backend"].strip(), "type": kind,
            "software": "software" in kind.lower() or m["arch"].strip().lower() == "software"}


def refused(log: str) -> list[dict]:
    """The op types the GPU refused, each with LiteRT's reason (in the order logged, without repeats)."""
    out, seen = [], set()
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if UNSUPPORTED not in line:
            continue
        for nxt in lines[i + 1:]:
            m = REFUSED.match(nxt.strip())
            if not m:
                break
            key = (m["op"], (m["reason"] or "").strip() or "(LiteRT gives no reason)")
            if key not in seen:
                seen.add(key)
                out.append({"op": key[0], "reason": key[1]})
    return out


def parse(log: str, total_ops: Optional[int] = None) -> dict:
    """The partition the log describes: ops on the GPU and on the CPU (counts), the refused op types with their
    reasons, the adapter, and whether the model is fully delegated to the GPU. ``total_ops``: the model's op count
    (from the file), used when the log prints no split (every op on the GPU)."""
    splits = list(SPLIT.finditer(log))
    gpu_kernel = any(k in log for k in GPU_KERNEL)
    ref = refused(log)
    # nodes kept off the GPU on purpose (LiteRT's debug variable): no split line is printed for them
    excluded = sorted({int(m["node"]) for m in EXCLUDED.finditer(log)})
    if splits:
        gpu, cpu = sum(int(m["gpu"]) for m in splits), sum(int(m["cpu"]) for m in splits)
    elif gpu_kernel and not ref:
        cpu = len(excluded)
        gpu = total_ops - cpu if total_ops is not None else None
    else:
        gpu, cpu = (0, total_ops) if not gpu_kernel else (None, None)
    if excluded:
        ref = ref + [{"op": f"node {n}", "reason": "excluded from the GPU (LITERT_GPU_DEBUG_EXCLUDE_NODES)"}
                     for n in excluded]
    return {"adapter": adapter(log), "gpu_ops": gpu, "cpu_ops": cpu, "total_ops": total_ops, "refused": ref,
            "gpu_kernel": gpu_kernel, "fully_delegated": bool(gpu_kernel and cpu == 0 and not ref)}


def no_adapter_reason(log: str) -> Optional[str]:
    """The log's own words when no GPU adapter was found (None when it does not say so)."""
    for line in log.splitlines():
        if NO_ADAPTER.search(line):
            return " ".join(line.split())[-200:]
    return None


LOAD_ERROR = re.compile(r"^ERROR: \[(?P<where>[a-z_]+\.cc):\d+\] (?P<msg>[^\r\n]+)$", re.M)


def load_error(log: str) -> Optional[str]:
    """Why LiteRT refused the file before any partition (e.g. an LSTM's ``Variable tensors not yet supported.``
    from model_load.cc): the first such native error line."""
    for m in LOAD_ERROR.finditer(log):
        msg = m["msg"].strip()
        if msg and not msg.startswith(("Failed to", "└")):
            return f"{msg} ({m['where']})"
    return None
