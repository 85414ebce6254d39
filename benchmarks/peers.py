"""Side-by-side: what a user would otherwise run, against edgeopt's artifacts, in one process.

For each reference Banking77 model, on the same test inputs and one thread: Keras float32 (``model(x)`` per
example, and batched ``predict``), LiteRT float32 and int8 with XNNPACK, LiteRT int8 without XNNPACK, ONNX Runtime
float32 and its best quantized form (dynamic / static QDQ / static QOperator: the fastest whose accuracy is within
0.01 of float32), and edgeopt's preset artifact for pixel-7 and for x86-avx2-server. Uses the public API only
(``edgeopt.Evaluator``: the same passes, conversions and runtimes `build` and `tune` use). Writes
benchmarks/results/peers.{json,md}; latency ratios are to edgeopt's x86-avx2-server artifact (this machine is x86).

    EDGEOPT_DATA_PATH=../shared/data python benchmarks/peers.py [--models ...]
"""
from __future__ import annotations

import sys
import time

import numpy as np

import edgeopt
from _common import parse_args, write_results

MODELS = ["banking77-cnn", "banking77-bilstm", "banking77-transformer"]
WARMUP, ITERS, N_INPUTS = 50, 500, 64
LATENCY = edgeopt.LatencySettings(warmup=WARMUP, iterations=ITERS)


def pct(t):
    return {"p50_ms": round(float(np.percentile(t, 50)), 5), "p90_ms": round(float(np.percentile(t, 90)), 5)}


def row(m: dict) -> dict:
    """A row from ``edgeopt.evaluate``'s measurement of a candidate on the test split."""
    h = m["host_latency"]
    return {"accuracy": round(m["accuracy"], 4), "size_bytes": m["size_bytes"], "p50_ms": h["p50_ms"],
            "p90_ms": h["p90_ms"], "runtime": h["runtime"], "delegate_applied": h["delegate_applied"]}


def onnx_variant(label: str, mode: str, quant: dict):
    """x86-avx2-server with another ONNX Runtime quantization preset (a TargetProfile is data)."""
    t = edgeopt.load_target("x86-avx2-server")
    d = t.model_dump(mode="json")
    d["name"], d["quantization"] = f"x86-{label.replace(' ', '-')}", mode
    d["onnx"]["quant"] = {**d["onnx"]["quant"], **quant}
    return type(t).model_validate(d)


def run_model(name: str) -> list[dict]:
    C = edgeopt.Candidate
    ev = edgeopt.Evaluator(name, "pixel-7", quiet=True, latency=LATENCY)
    model = ev.keras_model(C("litert", "float32", True, 1))  # cached after the first run
    x, y = ev.data("test")
    rows = []
    import tensorflow as tf  # imported by the Evaluator already (as tf_keras's TensorFlow)

    x1 = [x[i:i + 1] for i in range(N_INPUTS)]
    for i in range(10):
        model(x1[i % N_INPUTS], training=False)
    t = []
    for i in range(200):
        t0 = time.perf_counter()
        model(x1[i % N_INPUTS], training=False)
        t.append((time.perf_counter() - t0) * 1000)
    acc = float((model.predict(x, batch_size=256, verbose=0).argmax(1) == y).mean())
    rows.append({"name": "Keras float32, model(x) per example", "accuracy": round(acc, 4), "size_bytes": None,
                 **pct(np.array(t)), "runtime": f"tf_keras {tf.__version__}"})
    per = []
    for _ in range(5):
        t0 = time.perf_counter()
        model.predict(x, batch_size=256, verbose=0)
        per.append((time.perf_counter() - t0) * 1000 / len(x))
    rows.append({"name": "Keras float32, predict(batch 256), per example", "accuracy": rows[0]["accuracy"],
                 "size_bytes": None, **pct(np.array(per)), "runtime": f"tf_keras {tf.__version__}"})
    for label, c in (("LiteRT float32, XNNPACK", C("litert", "float32", True, 1)),
                     ("LiteRT int8, XNNPACK", C("litert", "int8", True, 1)),
                     ("LiteRT int8, no XNNPACK", C("litert", "int8", False, 1)),
                     ("ONNX Runtime float32", C("onnxruntime", "float32", False, 1))):
        rows.append({"name": label, **row(ev.evaluate(c, split="test"))})
    ort_f32 = rows[-1]
    ev.close()
    cands = []
    for label, mode, quant in (("dynamic QInt8", "dynamic", {"weight_type": "QInt8", "reduce_range": False}),
                               ("static QDQ u8s8", "int8", {"format": "QDQ", "reduce_range": False}),
                               ("static QOperator u8s8", "int8", {"format": "QOperator", "reduce_range": False})):
        e2 = edgeopt.Evaluator(name, onnx_variant(label, mode, quant), quiet=True, latency=LATENCY)
        cands.append({"name": f"ONNX Runtime {label}",
                      **row(e2.evaluate(C("onnxruntime", mode, False, 1), split="test"))})
        e2.close()
    ok = [c for c in cands if c["accuracy"] >= ort_f32["accuracy"] - 0.01] or cands
    best = min(ok, key=lambda c: c["p50_ms"])
    rows.append({**best, "name": best["name"] + " (best quantized)",
                 "others": [{k2: c[k2] for k2 in ("name", "accuracy", "p50_ms")} for c in cands]})
    for target in ("pixel-7", "x86-avx2-server"):  # the preset, as `edgeopt build` deploys it (1-thread row)
        p = edgeopt.load_target(target)
        xnn = "xnnpack" in p.runtime.delegates
        preset = C(p.runtime.name, p.quantization, xnn, 1)
        e3 = edgeopt.Evaluator(name, p, quiet=True, latency=LATENCY)
        m = e3.evaluate(preset, split="test")
        e3.close()
        rows.append({"name": f"edgeopt {target} preset: {m['deployed_quantization']} .{preset.format}", **row(m)})
    ref = rows[-1]["p50_ms"]
    for r in rows:
        r["model"] = name
        r["p50_ratio_to_edgeopt_x86"] = round(r["p50_ms"] / ref, 2)
    return rows


def markdown(rows) -> str:
    lines = ["| model | runtime / form | accuracy | bytes | p50 ms | p90 ms | p50 / edgeopt x86 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        size = f"{r['size_bytes']:,}" if r["size_bytes"] else "(Keras)"
        lines.append(f"| {r['model']} | {r['name']} | {r['accuracy']:.4f} | {size} | {r['p50_ms']:.4f} | "
                     f"{r['p90_ms']:.4f} | {r['p50_ratio_to_edgeopt_x86']} |")
    m = edgeopt.machine_info()
    lines += ["", f"One thread, batch 1 (except the batched Keras row), the first {N_INPUTS} Banking77 test inputs "
                  f"cycled, {WARMUP} warm-up + {ITERS} timed calls; accuracy over all 3,080 test examples. Machine: "
                  f"{m['arch']} {m['cpu']} ({m['cores']} cores, {m['isa_flags']}), not a device."]
    return "\n".join(lines) + "\n"


def main():
    args = parse_args(MODELS, __doc__)
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # as edgeopt runs it (tf_keras)
    import tensorflow as T  # one thread for Keras too, set before TensorFlow initializes

    T.config.threading.set_intra_op_parallelism_threads(1)
    T.config.threading.set_inter_op_parallelism_threads(1)
    rows = []
    for name in args.models:
        got = run_model(name)
        rows += got
        for r in got:
            print(f"{name:<22} {r['name']:<48} acc {r['accuracy']:.4f} p50 {r['p50_ms']:.4f} ms",
                  file=sys.stderr, flush=True)
    write_results(args.out, "peers", rows, markdown(rows))


if __name__ == "__main__":
    main()
