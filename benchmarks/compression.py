"""Compression benchmark: every recipe on every reference Banking77 model, measured on the exported artifact.

For each model: float32, PTQ int8, prune 50% + int8, prune 75% + PQAT, cluster 16 + CQAT, prune 75% + cluster 16
+ PCQAT, and a distilled student (banking77-cnn-small taught by that model) with the best recipe, next to the
same student trained without the teacher. ``all-MiniLM-L6-v2`` (the frozen sentence encoder + a linear head) is a
teacher too: its rows are the student in float32, the student + PCQAT, and the student distilled from it + PCQAT.
Writes benchmarks/results/compression.{json,md}.

    EDGEOPT_DATA_PATH=../shared/data python benchmarks/compression.py [--models banking77-cnn ...] [--quick]

Pass outputs are cached (~/.cache/edgeopt/artifacts), so each model is trained once.
"""
from __future__ import annotations

import sys
import tempfile
import time

import edgeopt
from _common import parse_args, write_results
from edgeopt.recipe import ClusterConfig, DistillConfig, PruneConfig, QATConfig

MINILM = "all-MiniLM-L6-v2"
MODELS = ["banking77-cnn", "banking77-bilstm", "banking77-transformer", MINILM]
STUDENT = "banking77-cnn-small"
TARGET = "pixel-7"


def recipes(teacher: str):
    p75 = PruneConfig(sparsity=0.75)
    c16 = ClusterConfig(clusters=16)
    pcqat = {"prune": p75, "cluster": c16, "qat": QATConfig()}
    if teacher == MINILM:  # not a .tflite model itself: ratios are against the student's float32
        return [
            ("student float32", STUDENT, {}, "float32"),
            ("student (no teacher) + PCQAT", STUDENT, pcqat, None),
            (f"student distilled from {teacher} + PCQAT", STUDENT, {"distill": DistillConfig(teacher=teacher), **pcqat},
             None),
        ]
    return [
        ("float32", teacher, {}, "float32"),
        ("PTQ int8", teacher, {}, "int8"),
        ("prune 50% + int8", teacher, {"prune": PruneConfig(sparsity=0.5)}, "int8"),
        ("prune 75% + PQAT", teacher, {"prune": p75, "qat": QATConfig()}, None),
        ("cluster 16 + CQAT", teacher, {"cluster": c16, "qat": QATConfig()}, None),
        ("prune 75% + cluster 16 + PCQAT", teacher, {"prune": p75, "cluster": c16, "qat": QATConfig()}, None),
        ("student (no teacher) + PCQAT", STUDENT, {"prune": p75, "cluster": c16, "qat": QATConfig()}, None),
        (f"student distilled from {teacher} + PCQAT", STUDENT,
         {"distill": DistillConfig(teacher=teacher), "prune": p75, "cluster": c16, "qat": QATConfig()}, None),
    ]


def run(models, latency) -> list[dict]:
    rows = []
    for teacher in models:
        f32_gzip = None
        for label, model, passes, ptq in recipes(teacher):
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                plan = edgeopt.plan(model, [TARGET], out=out, ptq=ptq, passes=passes)
                m = edgeopt.build(plan, quiet=True, latency=latency)[0].manifest
            met = m["metrics"]
            lat = next(r for r in met["latency"] if r["threads"] == 1 and r["xnnpack"])
            if label in ("float32", "student float32"):
                f32_gzip, f32_raw = met["size"]["gzip_bytes"], met["size"]["size_bytes"]
            teach = next((r.get("teacher") for r in m["passes"] if r["step"] == "distill"), None)
            row = {"model": teacher, "recipe": label, "built": model, "passes": m["recipe"]["passes"],
                   "quantization": m["recipe"]["convert"]["quantization"], "accuracy": met["accuracy"],
                   "float32_accuracy_same_model": met["baseline"]["accuracy"],
                   "size_bytes": met["size"]["size_bytes"], "gzip_bytes": met["size"]["gzip_bytes"],
                   "ratio_raw_vs_float32": round(f32_raw / met["size"]["size_bytes"], 2),
                   "ratio_gzip_vs_float32": round(f32_gzip / met["size"]["gzip_bytes"], 2),
                   "p50_ms_1thread_xnnpack": lat["p50_ms"], "delegate_applied": lat["delegate_applied"],
                   "weights": next((r["weights"] for r in reversed(m["passes"]) if "weights" in r), None),
                   "teacher": teach, "seconds": round(time.perf_counter() - t0, 1), "machine": lat["machine"]}
            rows.append(row)
            print(f"{teacher:<22} {label:<48} acc {row['accuracy']:.4f} gzip {row['gzip_bytes']:>9,} "
                  f"x{row['ratio_gzip_vs_float32']:<6} p50 {row['p50_ms_1thread_xnnpack']:.4f} ms "
                  f"({row['seconds']} s)", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | recipe | accuracy (artifact) | Δ vs float32 | bytes | gzip bytes | x raw | x gzip | "
             "zeros | unique (median) | p50 ms (1 thr, XNNPACK) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    base = {}
    for r in rows:
        if r["recipe"] in ("float32", "student float32"):
            base[r["model"]] = r["accuracy"]
        w = r["weights"] or {}
        lines.append(f"| {r['model']} | {r['recipe']} | {r['accuracy']:.4f} | {r['accuracy'] - base[r['model']]:+.4f} | "
                     f"{r['size_bytes']:,} | {r['gzip_bytes']:,} | {r['ratio_raw_vs_float32']} | "
                     f"{r['ratio_gzip_vs_float32']} | {w.get('zero_fraction', 0):.1%} | "
                     f"{w.get('unique_values_median', '')} | {r['p50_ms_1thread_xnnpack']:.4f} |")
    m = rows[0]["machine"]
    lines += ["", f"Accuracy: each .tflite over the Banking77 test split (3,080). Ratios: float32 .tflite of the same "
                  f"reference model / this artifact. Latency: batch 1, measured on {m['arch']} {m['cpu']} "
                  f"({m['cores']} cores), not on a device."]
    for r in rows:
        t = r["teacher"] or {}
        if t.get("name") == MINILM:
            lines += ["", f"{MINILM} teacher (frozen encoder + linear head, Keras, on the raw test texts): accuracy "
                          f"{t['accuracy_test']:.4f}; {t.get('encoded_sentences', '?')} sentences encoded at "
                          f"{t.get('sentences_per_second', '?')}/s on this machine (cached after the first run). "
                          f"Its rows' ratios are against the student's float32 .tflite."]
    return "\n".join(lines) + "\n"


def main():
    args = parse_args(MODELS, __doc__)
    rows = run(args.models, edgeopt.LatencySettings(warmup=20, iterations=200))
    write_results(args.out, "compression", rows, markdown(rows))


if __name__ == "__main__":
    main()
