"""Instructions per inference of the reference models on each emulated arm64 core and on x86 (valgrind).

For each model, builds it for raspberry-pi-4 at each quantization (float32, dynamic, int8, float16; one training,
the conversions from edgeopt's cache), then counts one ``invoke()`` at batch 1 and 1 thread:

- arm64: qemu-user ``-cpu cortex-a53 / cortex-a72 / cortex-a76`` with edgeopt's TCG plugin (emulator/counter.py),
  XNNPACK on and off;
- x86: valgrind's callgrind on this machine, dumping its counters at the same marker syscalls the guest makes
  (``--dump-before=sched_get_priority_max``), XNNPACK on and off. Valgrind's CPU has AVX2 but not AVX-512, so these
  are the AVX2 kernels' counts, and they include the Python binding's call into ``invoke()`` (about 3,000).

and repeats one configuration 10 times to show the spread. Instruction counts, never times. Needs
``edgeopt emulator setup`` (with qemu-user) and valgrind. Writes benchmarks/results/instructions.{json,md}.
"""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, write_results  # noqa: E402

from edgeopt.emulator.counter import EMPTY, MEASURED, WARMUP, mode_of  # noqa: E402  (the same windows as qemu's)

QUANTS = ("float32", "dynamic", "int8", "float16")
CPUS = ("cortex-a53", "cortex-a72", "cortex-a76")


def build(model: str, quant: str, out: Path) -> Path:
    d = out / f"{model}-{quant}"
    p = subprocess.run([sys.executable, "-m", "edgeopt", "build", model, "-t", "raspberry-pi-4", "--ptq", quant,
                        "--out", str(d), "-q", "--json", "--latency-iterations", "20"], capture_output=True, text=True)
    if p.returncode not in (0, 3):
        raise SystemExit(f"build {model} {quant} failed: {p.stderr[-500:]}")
    m = json.loads(p.stdout)
    return d / m["metrics"]["artifact"]


def callgrind(artifact: Path, tokens: np.ndarray, xnnpack: bool) -> dict:
    from edgeopt.emulator.validate import stage_request

    work = Path(tempfile.mkdtemp(prefix="edgeopt-cg-"))
    stage_request(work, artifact, tokens[:1], 1, xnnpack, count={"empty": EMPTY, "invokes": WARMUP + MEASURED})
    env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8",
           "PYTHONPATH": str(work / "pkgs")}
    t0 = time.perf_counter()
    subprocess.run(["valgrind", "--tool=callgrind", "--dump-before=sched_get_priority_max",
                    f"--callgrind-out-file={work / 'cg.out'}", sys.executable, "-m", "edgeopt.emulator.guest",
                    str(work / "request.json")], capture_output=True, text=True, env=env, cwd=work, check=True)
    files = sorted(glob.glob(str(work / "cg.out.*")), key=lambda f: int(f.rsplit(".", 1)[1]))
    totals = [int(re.search(r"^totals: (\d+)", Path(f).read_text(), re.M).group(1)) for f in files]
    windows = totals[1::2]  # a dump at every marker: the odd dumps are the bracketed windows
    empty, measured = windows[:EMPTY], windows[EMPTY + WARMUP:EMPTY + WARMUP + MEASURED]
    res = json.loads((work / "result.json").read_text())
    return {"instructions": mode_of(measured) - mode_of(empty[5:]), "spread": max(measured) - min(measured),
            "delegate_applied": res.get("delegate_applied"), "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    args = parse_args(["banking77-cnn", "banking77-bilstm", "banking77-transformer"], __doc__)
    from edgeopt.data.tokenizer import load_tokenizer
    from edgeopt.emulator import counter, env

    r = env.root()
    counter.setup(r)
    out = Path(tempfile.mkdtemp(prefix="edgeopt-ins-"))
    rows = []
    for model in args.models:
        for q in QUANTS:
            art = build(model, q, out)
            x = load_tokenizer(art.parent).encode_batch(["my card still has not arrived, what can I do?"])
            row = {"model": model, "quantization": q, "artifact": art.name, "size_bytes": art.stat().st_size}
            for cpu in CPUS:
                for xnn in (True, False):
                    c = counter.count(r, art, x, cpu, xnn)
                    row[f"{cpu} xnnpack {'on' if xnn else 'off'}"] = c["instructions"]
                    row.setdefault("seconds_per_count", []).append(c["seconds"])
            for xnn in (True, False):
                row[f"x86 (valgrind, AVX2) xnnpack {'on' if xnn else 'off'}"] = callgrind(art, x, xnn)["instructions"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    # the spread over 10 repeats of one configuration
    art = build(args.models[0], "int8", out)
    x = load_tokenizer(art.parent).encode_batch(["my card still has not arrived, what can I do?"])
    reps = [counter.count(r, art, x, "cortex-a76", True)["instructions"] for _ in range(10)]
    rows.append({"model": args.models[0], "quantization": "int8", "repeats_cortex-a76_xnnpack_on": reps,
                 "spread": max(reps) - min(reps)})
    cols = [f"{c} xnnpack {s}" for c in CPUS for s in ("on", "off")] + [
        f"x86 (valgrind, AVX2) xnnpack {s}" for s in ("on", "off")]
    md = ["# Emulated instructions per inference (batch 1, 1 thread): counts, not times", "",
          "| model | quantization | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for row in rows[:-1]:
        md.append(f"| {row['model']} | {row['quantization']} | "
                  + " | ".join(f"{row[c]:,}" if row.get(c) is not None else "-" for c in cols) + " |")
    md += ["", f"10 repeats, {args.models[0]} int8 on cortex-a76 with XNNPACK: {sorted(set(reps))} (spread "
               f"{max(reps) - min(reps)})."]
    write_results(args.out, "instructions", rows, "\n".join(md) + "\n")
    os.system(f"rm -rf {out}")


if __name__ == "__main__":
    main()
