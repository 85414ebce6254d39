"""Tune against the preset: for each reference Banking77 model on pixel-7, raspberry-pi-zero-2w and x86-avx2-server,
the target's preset artifact (``edgeopt build``) next to ``edgeopt tune``'s pick, through the public API only.

Per case: test accuracy, size and cost of both (cost: emulated instructions per inference on the target's qemu CPU
for the arm64 targets, the build machine's p90 latency for x86, from the tune's dev-split measurement, the same
procedure for both); the conversion-only grid, which tune evaluates exhaustively before it samples training
candidates, is the ground truth: is the pick on the grid's Pareto front (not dominated by any grid candidate that
meets the budgets), never worse than the preset on the objective, within the budgets; trials and wall time.
Writes benchmarks/results/tune.{json,md}.

    EDGEOPT_DATA_PATH=../shared/data python benchmarks/tune.py [--models ...] [--targets ...] [--trials N]

Pass outputs are cached (~/.cache/edgeopt/artifacts): each reference model is trained once.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import edgeopt
from _common import RESULTS, write_results

MODELS = ["banking77-cnn", "banking77-bilstm", "banking77-transformer"]
TARGETS = ["pixel-7", "raspberry-pi-zero-2w", "x86-avx2-server"]
LATENCY = edgeopt.LatencySettings(warmup=20, iterations=200)


def dominated(r: dict, by: dict) -> bool:
    a = (-by["accuracy"], by["cost"], by["size_bytes"])
    b = (-r["accuracy"], r["cost"], r["size_bytes"])
    return all(x <= y for x, y in zip(a, b)) and a != b


def run_case(model: str, target: str, trials: int, d: Path) -> dict:
    t0 = time.perf_counter()
    res = edgeopt.tune(model, target, out=str(d / f"{model}-{target}"), trials=trials, quiet=True, latency=LATENCY)
    wall = time.perf_counter() - t0
    s = res.summary
    rows = [r for r in res.rows if r["state"] == "complete" and r["duplicate_of"] is None]
    grid = [r for r in rows if not r["trains"]]
    grid_ok = [r for r in grid if r["feasible"]]
    pick = s["pick"]
    preset = s["preset"]
    preset_build = edgeopt.build(model, [target], out=str(d / f"{model}-{target}-preset"), quiet=True,
                                 latency=LATENCY)[0]
    pm = preset_build.manifest["metrics"]
    out = {"model": model, "target": target, "objective": s["objective"], "cost_label": s["cost_label"],
           "trials": s["trials"], "grid_size": len(grid), "sampled_training": len([r for r in rows if r["trains"]]),
           "stopped_early": len([r for r in res.rows if r["state"] == "pruned"]),
           "failed": len([r for r in res.rows if r["state"] == "fail"]),
           "tune_seconds": round(wall, 1),
           "preset": {"label": preset["label"] if preset else None, "test_accuracy": pm["accuracy"],
                      "size_bytes": pm["size"]["size_bytes"], "cost": preset["cost"] if preset else None,
                      "dev_accuracy": preset["accuracy"] if preset else None,
                      "meets_budgets_dev": preset["feasible"] if preset else None,
                      "build_passed": preset_build.passed},
           "grid": [{k: g[k] for k in ("label", "accuracy", "cost", "size_bytes", "feasible", "failed_budgets")}
                    for g in grid],
           "not_evaluated": [{"label": r["label"], "state": r["state"], "outcome": r["outcome"]} for r in res.rows
                             if r["state"] != "complete"]}
    if pick is None:
        out["pick"] = None
        out["closest"] = s.get("closest")
        return out
    pb = s["pick_build"]
    out["pick"] = {"label": pick["label"], "test_accuracy": pb["test_accuracy"], "size_bytes": pb["size_bytes"],
                   "cost": pick["cost"], "dev_accuracy": pick["accuracy"], "build_passed": pb["budgets_passed"]}
    out["pick_on_grid_front"] = not any(dominated(pick, g) for g in grid_ok)
    out["grid_front"] = [g["label"] for g in grid_ok if not any(dominated(g, o) for o in grid_ok if o is not g)]
    out["cost_ratio_preset_over_pick"] = round(preset["cost"] / pick["cost"], 2) if preset and pick["cost"] else None
    out["not_worse_than_preset"] = preset is None or not preset["feasible"] or pick["cost"] <= preset["cost"]
    return out


def fmt(v) -> str:
    return "-" if v is None else f"{v:,.0f}" if v >= 1000 else f"{v:.4f}"


def markdown(rows: list[dict]) -> str:
    lines = ["| model | target | preset | pick | test acc preset / pick | bytes preset / pick | cost preset / pick "
             "| preset/pick | on grid front | trials (grid + sampled) | tune s |", "|" + "---|" * 11]
    for r in rows:
        p, k = r["preset"], r["pick"]
        if k is None:
            lines.append(f"| {r['model']} | {r['target']} | {p['label']} | none meets the budgets | "
                         f"{p['test_accuracy']:.4f} / - | {p['size_bytes']:,} / - | {fmt(p['cost'])} / - | - | - | "
                         f"{r['grid_size']} + {r['sampled_training']} | {r['tune_seconds']} |")
            continue
        lines.append(f"| {r['model']} | {r['target']} | {p['label']} | {k['label']} | {p['test_accuracy']:.4f} / "
                     f"{k['test_accuracy']:.4f} | {p['size_bytes']:,} / {k['size_bytes']:,} | {fmt(p['cost'])} / "
                     f"{fmt(k['cost'])} | {r['cost_ratio_preset_over_pick']}x | "
                     f"{'yes' if r['pick_on_grid_front'] else 'NO'} | {r['grid_size']} + {r['sampled_training']}"
                     f"{' (' + str(r['stopped_early']) + ' stopped early)' if r['stopped_early'] else ''} | "
                     f"{r['tune_seconds']} |")
    skipped = [f"- {r['model']} on {r['target']}: {n['label']}: {n['state']}, {n['outcome'][:160]}"
               for r in rows for n in r.get("not_evaluated", [])]
    if skipped:
        lines += ["", "Candidates that did not finish (a conversion the converter refuses, a pass that fails, a "
                      "candidate stopped early):", *skipped]
    m = edgeopt.machine_info()
    labels = sorted({r["cost_label"] for r in rows})
    lines += ["", "Cost: " + "; ".join(labels) + ". Cost and dev accuracy are the tune's own measurements on the dev "
              "split (the same procedure for the preset and the pick); test accuracy and bytes come from the builds "
              "of both, the only time the test split is used. Objective: cost. Instruction counts are not times; "
              f"host latency is this machine's: {m['arch']} {m['cpu']} ({m['cores']} cores), not a device."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--targets", nargs="+", default=TARGETS)
    ap.add_argument("--trials", type=int, default=2, help="training candidates sampled per tune")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for model in args.models:
            for target in args.targets:
                r = run_case(model, target, args.trials, Path(d))
                rows.append(r)
                k = r["pick"]
                print(f"{model:<22} {target:<22} preset {r['preset']['cost']} pick "
                      f"{k['label'] + ' ' + str(k['cost']) if k else 'none'} ({r['tune_seconds']} s)",
                      file=sys.stderr, flush=True)
    write_results(args.out, "tune", rows, markdown(rows))


if __name__ == "__main__":
    main()
