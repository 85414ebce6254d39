"""The reference Banking77 models on the GPU profiles (pixel-7-gpu, android-gpu) through LiteRT's GPU accelerator.

For each model and profile: a build as the profile asks (embedding lookups with 1-D ids), and a build of the same
model for the same profile exporting the lookup as it is ("before"). Reported for both: ops on the GPU and on
the CPU with LiteRT's reasons, fully delegated or not, accuracy through the GPU at fp16 (its default) and with
enforce_f32 against the CPU artifact's, the largest |GPU - CPU| output, over the whole test split. Also the setup
of the software driver (time, size). Uses the public API (``edgeopt.build``) and the CLI (``edgeopt gpu setup``).

On this machine the adapter is Mesa's lavapipe, a software Vulkan device: function, partition and numerics;
no latency is reported, by design. Writes benchmarks/results/gpu.{json,md}.

    EDGEOPT_DATA_PATH=../shared/data python benchmarks/gpu.py [--models ...]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import edgeopt
from _common import parse_args, write_results

MODELS = ["banking77-cnn", "banking77-bilstm", "banking77-transformer"]
TARGETS = ["pixel-7-gpu", "android-gpu"]
LATENCY = edgeopt.LatencySettings(warmup=10, iterations=50)  # the CPU path's host latency is not what is measured


def setup_record() -> dict:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "edgeopt", "gpu", "setup", "--json"], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"edgeopt gpu setup failed: {p.stderr[-400:]}")
    st = json.loads(p.stdout)
    info = st["info"]
    return {"changed": st["changed"], "seconds_this_call": round(time.perf_counter() - t0, 1),
            "setup_seconds": info["setup_seconds"], "size_bytes": info["size_bytes"],
            "packages": info["packages"], "adapter": info["adapter"]}


def as_is(target: str, d: Path) -> Path:
    t = edgeopt.load_target(target).model_dump(mode="json", exclude_none=True)
    t["name"] = f"{target}-lookup-as-is"
    t["gpu"] = {**t.get("gpu", {}), "flat_lookup": False}
    p = d / f"{t['name']}.yaml"
    p.write_text(yaml.safe_dump(t))
    return p


def row(model: str, target: str, export: str, m: dict) -> dict:
    g = m["gpu"]
    r = {"model": model, "target": target, "export": export, "artifact": m["metrics"]["artifact"],
         "size_bytes": m["metrics"]["size"]["size_bytes"], "cpu_accuracy": m["metrics"]["accuracy"],
         "available": g["available"]}
    if not g["available"]:
        return {**r, "reason": g["reason"]}
    pt = g["partition"]
    r["compiled"] = g.get("compiled", True)
    if not r["compiled"]:
        r["reason"] = g["reason"]
    return {**r, "adapter": g["adapter"]["name"], "software": g["software"], "gpu_ops": pt["gpu_ops"],
            "cpu_ops": pt["cpu_ops"], "total_ops": pt["total_ops"], "refused": pt["refused"],
            "fully_delegated": pt["fully_delegated"], "gpu_only_compiles": g["gpu_only_compiles"],
            "examples": g["examples"], "gpu_accuracy_fp16": g["fp16"].get("accuracy"),
            "gpu_accuracy_fp32": g["fp32"].get("accuracy"), "max_dev_fp16": g["fp16"].get("max_abs_deviation"),
            "max_dev_fp32": g["fp32"].get("max_abs_deviation"), "argmax_agreement_fp16": g["fp16"].get(
                "argmax_agreement"), "gpu_seconds_note": g["latency_note"],
            "budgets_passed": m["budgets"]["passed"],
            "failed": [c["name"] for c in m["budgets"]["checks"] if not c["passed"]]}


def main() -> None:
    args = parse_args(MODELS, __doc__)
    setup = setup_record()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeopt-gpu-bench-") as d:
        d = Path(d)
        for model in args.models:
            for target in TARGETS:
                for export, tgt in (("1-D lookup", target), ("as is", str(as_is(target, d)))):
                    t0 = time.perf_counter()
                    res = edgeopt.build(model, [tgt], out=str(d / f"{model}-{Path(tgt).stem}"), quiet=True,
                                        latency=LATENCY)[0]
                    r = row(model, target, export, res.manifest)
                    r["seconds"] = round(time.perf_counter() - t0, 1)
                    rows.append(r)
                    print(json.dumps({k: r.get(k) for k in ("model", "target", "export", "gpu_ops", "cpu_ops",
                                                            "fully_delegated", "gpu_accuracy_fp16", "cpu_accuracy",
                                                            "max_dev_fp16", "seconds")}), flush=True)
    md = ["# The reference models through LiteRT's GPU accelerator", "",
          f"Adapter: {setup['adapter']['name']} ({setup['adapter']['type']}): **software** (Mesa lavapipe "
          f"{setup['packages'].get('mesa-vulkan-drivers')}), so function, partition and numerics only, no latency. "
          f"`edgeopt gpu setup`: {setup['setup_seconds']} s, {setup['size_bytes'] / 1e6:.1f} MB in the cache.", "",
          "| model | target | export | ops GPU / CPU | fully delegated | refused | accuracy GPU fp16 / fp32 / CPU | "
          "max abs dev fp16 / fp32 | argmax agreement fp16 | budgets |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r["available"]:
            md.append(f"| {r['model']} | {r['target']} | {r['export']} | no GPU adapter: {r['reason']} | | | | | | |")
            continue
        if not r["compiled"]:
            md.append(f"| {r['model']} | {r['target']} | {r['export']} | 0 / {r['total_ops']} | no | LiteRT's "
                      f"CompiledModel does not load the file: {r['reason']} | - / - / {r['cpu_accuracy']:.4f} | - | - | "
                      f"{'passed' if r['budgets_passed'] else 'failed: ' + ', '.join(r['failed'])} |")
            continue
        refused = "; ".join(f"{x['op']}: {x['reason']}" for x in r["refused"]) or "-"
        md.append(f"| {r['model']} | {r['target']} | {r['export']} | {r['gpu_ops']} / {r['cpu_ops']} | "
                  f"{'yes' if r['fully_delegated'] else 'no'} | {refused} | {r['gpu_accuracy_fp16']:.4f} / "
                  f"{r['gpu_accuracy_fp32']:.4f} / {r['cpu_accuracy']:.4f} | {r['max_dev_fp16']:.3g} / "
                  f"{r['max_dev_fp32']:.3g} | {r['argmax_agreement_fp16']:.4f} | "
                  f"{'passed' if r['budgets_passed'] else 'failed: ' + ', '.join(r['failed'])} |")
    md += ["", f"Whole Banking77 test split ({rows[0].get('examples', '?')} examples) through the GPU at each "
               "precision; CPU accuracy is the same float32 file on LiteRT's CPU interpreter. Machine: "
               f"{edgeopt.machine_info()['cpu']} ({edgeopt.machine_info()['cores']} cores), no GPU."]
    write_results(args.out, "gpu", [{"setup": setup}] + rows, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
