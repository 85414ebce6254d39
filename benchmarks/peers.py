"""Side-by-side: what a user would otherwise run, against edgeopt's artifacts, in one process.

For each reference Banking77 model, on the same test inputs and one thread: Keras float32 (``model(x)`` per
example, and batched ``predict``), LiteRT float32 and int8 with XNNPACK, LiteRT int8 without XNNPACK, ONNX Runtime
float32 and its best quantized form (dynamic / static QDQ / static QOperator: the fastest whose accuracy is within
0.01 of float32), and edgeopt's built artifact for pixel-7 and for x86-avx2-server. Writes
benchmarks/results/peers.{json,md}; latency ratios are to edgeopt's x86-avx2-server artifact (this machine is x86).

    EDGEOPT_DATA_PATH=../shared/data python benchmarks/peers.py [--models ...]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import edgeopt
from _common import parse_args, write_results
from edgeopt import runtimes
from edgeopt.convert import onnx as ox
from edgeopt.pipeline import LatencySettings, Plan, _Builder
from edgeopt.recipe import Step
from edgeopt.runtimes.base import machine_info, time_calls
from edgeopt.specs import OnnxQuant
from edgeopt.validate.accuracy import accuracy

MODELS = ["banking77-cnn", "banking77-bilstm", "banking77-transformer"]
WARMUP, ITERS, N_INPUTS = 50, 500, 64


def pct(t):
    return {"p50_ms": round(float(np.percentile(t, 50)), 5), "p90_ms": round(float(np.percentile(t, 90)), 5)}


def measure_file(path, b, xnnpack=True):
    s = runtimes.load(path, runtimes.RuntimeOptions(threads=1, xnnpack=xnnpack))
    acc = accuracy(s.run(b.x_test), b.y_test)
    st = s.benchmark(b.x_test[:N_INPUTS], warmup=WARMUP, iterations=ITERS)
    return {"accuracy": round(acc, 4), "size_bytes": Path(path).stat().st_size, "p50_ms": st.p50_ms,
            "p90_ms": st.p90_ms, "runtime": st.runtime, "delegate_applied": st.delegate_applied}


def run_model(name: str, d: Path) -> list[dict]:
    spec = edgeopt.load_model_spec(name)
    b = _Builder(Plan(spec, (), True), quiet=True, latency=LatencySettings())
    model, *_ = b.run_steps([Step("train")])  # cached after the first run
    k = b.root_key
    rows = []
    x1 = [b.x_test[i:i + 1] for i in range(N_INPUTS)]
    from edgeopt.tf import tf as _tf

    tf = _tf()
    call = lambda i: model(x1[i], training=False)  # noqa: E731
    t = time_calls(call, N_INPUTS, 10, 200)
    rows.append({"name": "Keras float32, model(x) per example", "accuracy": round(accuracy(
        model.predict(b.x_test, batch_size=256, verbose=0), b.y_test), 4), "size_bytes": None, **pct(t),
        "runtime": f"tf_keras {tf.__version__}"})
    per = []
    for _ in range(5):
        t0 = time.perf_counter()
        model.predict(b.x_test, batch_size=256, verbose=0)
        per.append((time.perf_counter() - t0) * 1000 / len(b.x_test))
    rows.append({"name": "Keras float32, predict(batch 256), per example", "accuracy": rows[0]["accuracy"],
                 "size_bytes": None, **pct(np.array(per)), "runtime": f"tf_keras {tf.__version__}"})
    files = {}
    for mode in ("float32", "int8"):
        files[mode] = d / f"{name}.{mode}.tflite"
        files[mode].write_bytes(b.convert(k, model, mode, 200))
    rows.append({"name": "LiteRT float32, XNNPACK", **measure_file(files["float32"], b)})
    rows.append({"name": "LiteRT int8, XNNPACK", **measure_file(files["int8"], b)})
    rows.append({"name": "LiteRT int8, no XNNPACK", **measure_file(files["int8"], b, xnnpack=False)})
    f32 = ox.to_onnx(model, 17)
    (d / f"{name}.f32.onnx").write_bytes(f32)
    ort_f32 = {"name": "ONNX Runtime float32", **measure_file(d / f"{name}.f32.onnx", b)}
    rows.append(ort_f32)
    calib = b.representative(200)
    cands = []
    for label, mode, preset in (("dynamic QInt8", "dynamic", OnnxQuant(weight_type="QInt8")),
                                ("static QDQ u8s8", "int8", OnnxQuant(format="QDQ")),
                                ("static QOperator u8s8", "int8", OnnxQuant(format="QOperator"))):
        p = d / f"{name}.{label.replace(' ', '_')}.onnx"
        p.write_bytes(ox.quantize(f32, mode, preset, calib))
        cands.append({"name": f"ONNX Runtime {label}", **measure_file(p, b)})
    ok = [c for c in cands if c["accuracy"] >= ort_f32["accuracy"] - 0.01] or cands
    best = min(ok, key=lambda c: c["p50_ms"])
    rows.append({**best, "name": best["name"] + " (best quantized)",
                 "others": [{k2: c[k2] for k2 in ("name", "accuracy", "p50_ms")} for c in cands]})
    for target in ("pixel-7", "x86-avx2-server"):
        out = d / f"{name}-{target}"
        m = edgeopt.build(name, [target], out=str(out), quiet=True,
                          latency=LatencySettings(warmup=10, iterations=50))[0].manifest
        art = out / m["metrics"]["artifact"]
        rows.append({"name": f"edgeopt {target}: {art.name}", **measure_file(art, b)})
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
    m = machine_info()
    lines += ["", f"One thread, batch 1 (except the batched Keras row), the first {N_INPUTS} Banking77 test inputs "
                  f"cycled, {WARMUP} warm-up + {ITERS} timed calls; accuracy over all 3,080 test examples. Machine: "
                  f"{m['arch']} {m['cpu']} ({m['cores']} cores, {m['isa_flags']}), not a device."]
    return "\n".join(lines) + "\n"


def main():
    args = parse_args(MODELS, __doc__)
    from edgeopt.tf import tf

    T = tf()  # one thread for Keras too, set before TensorFlow initializes
    T.config.threading.set_intra_op_parallelism_threads(1)
    T.config.threading.set_inter_op_parallelism_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name in args.models:
            got = run_model(name, Path(d))
            rows += got
            for r in got:
                print(f"{name:<22} {r['name']:<48} acc {r['accuracy']:.4f} p50 {r['p50_ms']:.4f} ms",
                      file=sys.stderr, flush=True)
    write_results(args.out, "peers", rows, markdown(rows))


if __name__ == "__main__":
    main()
