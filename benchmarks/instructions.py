"""Instructions per inference of the reference models on each emulated arm64 core and on x86 (valgrind).

For each model, builds it for raspberry-pi-4 at each quantization (float32, dynamic, int8, float16; one training,
the conversions from edgeopt's cache) and for jetson-orin-nano-cpu (ONNX Runtime, dynamic), then counts one
inference at batch 1 and 1 thread with edgeopt's own counters (``edgeopt.count_instructions``, what builds, verify
and tune count):

- arm64: qemu-user ``-cpu cortex-a53 / cortex-a72 / cortex-a76`` with edgeopt's TCG plugin, XNNPACK on and off;
- x86: valgrind's callgrind on this machine (``cpu="x86"``), XNNPACK on and off. Valgrind's CPU has AVX2 but not
  AVX-512, so these are the AVX2 kernels' counts.

and repeats one configuration 10 times to show the spread. Instruction counts, never times. Needs
``edgeopt emulator setup`` (with qemu-user) and valgrind. Writes benchmarks/results/instructions.{json,md}.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, write_results  # noqa: E402

QUANTS = ("float32", "dynamic", "int8", "float16")
CPUS = ("cortex-a53", "cortex-a72", "cortex-a76")


def build(model: str, quant: str, out: Path, target: str = "raspberry-pi-4") -> Path:
    d = out / f"{model}-{quant}-{target}"
    p = subprocess.run([sys.executable, "-m", "edgeopt", "build", model, "-t", target, "--ptq", quant, "--no-count",
                        "--out", str(d), "-q", "--json", "--latency-iterations", "20"], capture_output=True, text=True)
    if p.returncode not in (0, 3):
        raise SystemExit(f"build {model} {quant} failed: {p.stderr[-500:]}")
    m = json.loads(p.stdout)
    return d / m["metrics"]["artifact"]


def main() -> None:
    args = parse_args(["banking77-cnn", "banking77-bilstm", "banking77-transformer"], __doc__)
    import edgeopt

    text = "my card still has not arrived, what can I do?"
    out = Path(tempfile.mkdtemp(prefix="edgeopt-ins-"))
    rows = []
    for model in args.models:
        for q, target in [(q, "raspberry-pi-4") for q in QUANTS] + [("dynamic", "jetson-orin-nano-cpu")]:
            art = build(model, q, out, target)
            ort = art.suffix == ".onnx"  # ONNX Runtime: one setting, reported in the "xnnpack on" columns' place
            row = {"model": model, "quantization": q + (" (ONNX Runtime)" if ort else ""), "artifact": art.name,
                   "size_bytes": art.stat().st_size}
            for cpu in CPUS:
                for xnn in (True,) if ort else (True, False):
                    c = edgeopt.count_instructions(art, cpu, xnn, text)
                    row[f"{cpu} xnnpack {'on' if xnn else 'off'}"] = c["instructions"]
                    row.setdefault("seconds_per_count", []).append(c["seconds"])
            for xnn in (True,) if ort else (True, False):
                c = edgeopt.count_instructions(art, "x86", xnn, text)
                row[f"x86 (valgrind, AVX2) xnnpack {'on' if xnn else 'off'}"] = c["instructions"]
                row.setdefault("seconds_per_x86_count", []).append(c["seconds"])
            rows.append(row)
            print(json.dumps(row), flush=True)
    # the spread over 10 repeats of one configuration
    art = build(args.models[0], "int8", out)
    reps = [edgeopt.count_instructions(art, "cortex-a76", True, text)["instructions"] for _ in range(10)]
    rows.append({"model": args.models[0], "quantization": "int8", "repeats_cortex-a76_xnnpack_on": reps,
                 "spread": max(reps) - min(reps)})
    cols = [f"{c} xnnpack {s}" for c in CPUS for s in ("on", "off")] + [
        f"x86 (valgrind, AVX2) xnnpack {s}" for s in ("on", "off")]
    md = ["# Emulated instructions per inference (batch 1, 1 thread): counts, not times", "",
          "ONNX Runtime rows (jetson-orin-nano-cpu's dynamic-range file) have one setting, shown under XNNPACK on.",
          "",
          "| model | quantization | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for row in rows[:-1]:
        md.append(f"| {row['model']} | {row['quantization']} | "
                  + " | ".join(f"{row[c]:,}" if row.get(c) is not None else "-" for c in cols) + " |")
    md += ["", f"10 repeats, {args.models[0]} int8 on cortex-a76 with XNNPACK: {sorted(set(reps))} (spread "
               f"{max(reps) - min(reps)})."]
    write_results(args.out, "instructions", rows, "\n".join(md) + "\n")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
