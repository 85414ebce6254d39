"""Runs in a child process (``python -m edgeopt.gpu.worker REQUEST.json``) with the Vulkan driver's environment
(``VK_ICD_FILENAMES``, ``LD_LIBRARY_PATH``: the loader reads them when it is first loaded, so they cannot be set
from inside edgeopt's own process). It compiles a ``.tflite`` file with LiteRT's GPU accelerator
(``CompiledModel``, ``GPU|CPU``, or ``GPU`` alone), runs the given token ids through it one example at a time and
writes ``result.json`` and ``outputs.npy`` beside the request. LiteRT's native log goes to this process's stderr,
which the parent captures and parses (partition.py). Without an adapter ``GPU|CPU`` raises instead of falling
back to the CPU (TOOLCHAIN section 7): that is reported, never replaced by CPU figures.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

MARK = "[edgeopt-gpu]"


def main(request_path: str) -> int:
    import numpy as np

    req = json.loads(Path(request_path).read_text())
    work = Path(request_path).parent
    res: dict = {"compiled": False}
    try:
        from ai_edge_litert import options as O
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator as HW

        hw = HW.GPU if req.get("gpu_only") else HW.GPU | HW.CPU
        opts = O.Options(hardware_accelerators=hw, gpu_options=O.GpuOptions(enforce_f32=bool(req.get("enforce_f32"))))
        print(f"{MARK} compile", file=sys.stderr, flush=True)
        try:
            cm = CompiledModel.from_file(req["artifact"], options=opts)
        except RuntimeError as e:
            res["error"] = " ".join(str(e).split())[-300:]
            return 0
        print(f"{MARK} compiled", file=sys.stderr, flush=True)
        res["compiled"] = True
        res["is_fully_accelerated"] = bool(cm.is_fully_accelerated())
        sig = list(cm.get_signature_list())[0]
        out_det = list(cm.get_output_tensor_details(sig).values())[0]
        n_out = int(np.prod(out_det["shape"]))
        res["output_shape"], res["output_dtype"] = out_det["shape"], out_det["dtype"]
        if req.get("inputs"):
            x = np.load(req["inputs"])
            ins, outs = cm.create_input_buffers(0), cm.create_output_buffers(0)
            ys, times = [], []
            for row in x:
                ins[0].write(np.ascontiguousarray(row[None, :], dtype=np.int32))
                t0 = time.perf_counter()
                cm.run_by_index(0, ins, outs)
                y = outs[0].read(n_out, np.dtype(out_det["dtype"]))
                times.append(time.perf_counter() - t0)
                ys.append(np.asarray(y).reshape(out_det["shape"])[0])
            np.save(work / "outputs.npy", np.stack(ys))
            res["examples"] = len(ys)
            res["seconds_per_example"] = float(np.median(times)) if times else None
            b = req.get("bench")
            if b:  # warm-up, then timed calls cycling through the inputs, each read back (waits for the GPU)
                times = []
                for i in range(b["warmup"] + b["iterations"]):
                    ins[0].write(np.ascontiguousarray(x[i % len(x)][None, :], dtype=np.int32))
                    t0 = time.perf_counter()
                    cm.run_by_index(0, ins, outs)
                    outs[0].read(n_out, np.dtype(out_det["dtype"]))
                    if i >= b["warmup"]:
                        times.append(time.perf_counter() - t0)
                ms = np.asarray(times) * 1e3
                res["latency"] = {f"p{q}_ms": round(float(np.percentile(ms, q)), 5) for q in (50, 90, 99)}
                res["latency"].update(mean_ms=round(float(ms.mean()), 5), warmup=b["warmup"], iterations=b["iterations"])
    except Exception as e:  # reported to the parent as what it is, with the log
        res["error"] = f"{type(e).__name__}: {' '.join(str(e).split())[-300:]}"
    finally:
        (work / "result.json").write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
