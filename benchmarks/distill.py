"""Accuracy at size: the reference text CNN trained on the labels, distilled from all-MiniLM-L6-v2 on the training
texts, with a transfer set of augmented copies, and with a teacher fine-tuned end to end, each also with its
Embedding started from MiniLM's word vectors; at several sizes; each deployed int8 on pixel-7 and judged on the
test split (selection on the dev split only: early stopping).

Each row is one `edgeopt build SPEC --target pixel-7 --json` run as a user runs it (a subprocess): the spec is the
dataset's reference spec with the size's tokenizer/architecture settings, the seed and the variant's
``embeddings_init``, the variant's flags (`--distill all-MiniLM-L6-v2`, `--augment N`, `--fine-tune-teacher`).
Teachers and transfer sets are cached like
any pass output (EDGEOPT_CACHE_DIR), so a variant's teacher is trained once per dataset. Writes
benchmarks/results/distill.{json,md}: per row accuracy, macro-F1, size, instructions per inference on the
emulated Cortex-A76, the teacher's test accuracy; the table gives the mean and spread over the seeds run.

    python benchmarks/distill.py --grid               # each data set's 3 sizes x 4 variants (GRID) x 3 seeds: 72 builds
    python benchmarks/distill.py                      # everything: 2 data sets x 6 sizes x 8 variants x 3 seeds
    python benchmarks/distill.py --datasets banking77 --sizes reference --variants plain init+distill --seeds 42 43
    python benchmarks/distill.py ... --append         # add rows to the results file
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = {"banking77": "banking77-cnn", "sst2": "sst2-cnn"}
# (tokenizer, architecture params) changes from the reference spec, per size
SIZES = {
    "micro": ({}, {"embed_dim": 16, "filters": 32}),
    "tiny": ({}, {"embed_dim": 32, "filters": 64}),
    "small": ({}, {"embed_dim": 64, "filters": 64}),
    "narrow": ({}, {"embed_dim": 48}),
    "reference": ({}, {}),
    "large": ({}, {"filters": 256}),
}
SST2_SIZES = {  # SST-2's reference (14k words x 128) does not fit 1 MB: its sizes are cut in the vocabulary
    "micro": ({"max_vocab": 4000}, {"embed_dim": 16, "filters": 32}),
    "tiny": ({"max_vocab": 4000}, {"embed_dim": 32, "filters": 64}),
    "small": ({"max_vocab": 4000}, {"embed_dim": 64, "filters": 64}),
    "narrow": ({"max_vocab": 12000}, {"embed_dim": 48}),  # every word seen twice (7,201) at half the width: 693 KB
    "reference": ({"max_vocab": 6000}, {"embed_dim": 96}),
    "large": ({"max_vocab": 6000}, {"embed_dim": 96, "filters": 256}),
}
MINILM = ["--distill", "all-MiniLM-L6-v2"]
INIT = {"embeddings_init": "all-MiniLM-L6-v2"}
# name -> (architecture params, flags): the student trained on the labels; distilled on the training texts; with a
# transfer set; with a transfer set and a fine-tuned teacher; its Embedding started from MiniLM's vectors
VARIANTS = {
    "plain": ({}, []),
    "distill": ({}, MINILM),
    "augment": ({}, [*MINILM, "--augment", "{copies}"]),
    "augment+fine-tuned": ({}, [*MINILM, "--augment", "{copies}", "--fine-tune-teacher"]),
    "init": (INIT, []),
    "init+distill": (INIT, MINILM),
    "init+augment": (INIT, [*MINILM, "--augment", "{copies}"]),
    "init+augment+fine-tuned": (INIT, [*MINILM, "--augment", "{copies}", "--fine-tune-teacher"]),
}

# the grid benchmarks/results/distill.md reports for each data set: three sizes under 1 MB, the student on the labels,
# distilled on the training texts, with a transfer set, with a transfer set and a fine-tuned teacher (the distilled
# students' Embedding started from MiniLM's vectors), at the copies chosen on dev (Banking77: one; SST-2: ten)
GRID = {"banking77": (["tiny", "small", "reference"], 1), "sst2": (["tiny", "narrow", "reference"], 10)}
GRID_VARIANTS = ["plain", "init+distill", "init+augment", "init+augment+fine-tuned"]


def spec_for(dataset: str, size: str, seed: int, extra: dict) -> dict:
    from edgeopt.registry import load_model_spec

    spec = load_model_spec(REFERENCE[dataset]).model_dump(mode="json", exclude_none=True)
    tok, params = (SST2_SIZES if dataset == "sst2" else SIZES)[size]
    spec["name"] = f"{REFERENCE[dataset]}-{size}-s{seed}"
    spec["tokenizer"].update(tok)
    spec["architecture"]["params"].update({**params, **extra})
    spec["training"]["seed"] = seed
    spec.pop("recipe", None)
    return spec


def run(spec: dict, flags: list[str], work: Path) -> dict:
    path = work / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = work / "out" / spec["name"]
    cmd = [sys.executable, "-m", "edgeopt", "build", str(path), "--target", "pixel-7", "--out", str(out), "--force",
           "--json", "-q", *flags]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr[-3000:]}")
    m = json.loads(r.stdout)
    deployed = next(a for a in m["artifacts"] if a.get("role") == "deployed")
    teacher = m["passes"][0].get("teacher", {}) if m["passes"] and m["passes"][0]["step"] == "distill" else {}
    transfer = m["passes"][0].get("transfer", {}) if teacher else {}
    return {"exit": r.returncode, "accuracy": m["metrics"]["accuracy"], "macro_f1": m["metrics"]["macro_f1"],
            "dev_accuracy": m["passes"][0].get("best_dev_accuracy") if m["passes"] else None,
            "copies": transfer.get("copies_per_text", 0) if transfer else 0,
            "float32_accuracy": m["metrics"].get("keras_accuracy"), "size_bytes": deployed["size_bytes"],
            "quantization": deployed["quantization"],
            "instructions_a76": (m.get("device_cost") or {}).get("instructions_per_inference"),
            "teacher_accuracy": teacher.get("accuracy_keras"), "teacher": teacher.get("architecture"),
            "teacher_seconds": teacher.get("fine_tune_seconds") or teacher.get("encode_seconds"),
            "transfer_texts": (transfer.get("augmented", 0) + transfer.get("unlabeled", 0)) if transfer else 0,
            "transfer_teacher_seconds": (transfer.get("teacher_outputs") or {}).get("teacher_seconds"),
            "distill_seconds": m["passes"][0].get("seconds") if m["passes"] else None,
            "wall_seconds": round(wall, 1)}


def table(rows: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        var = r["variant"] + (f" ({r['copies']} {'copy' if r['copies'] == 1 else 'copies'})" if r.get("copies") else "")
        groups.setdefault((r["dataset"], r["size"], var), []).append(r)

    def ms(vals, fmt="{:.4f}"):
        vals = [v for v in vals if v is not None]
        if not vals:
            return "-"
        s = fmt.format(statistics.mean(vals))
        return s + (" ± " + fmt.format(statistics.stdev(vals)) if len(vals) > 1 else "")

    sizes, variants = list(SIZES), list(VARIANTS)
    groups = dict(sorted(groups.items(), key=lambda kv: (  # data set, size (smallest first), variant, copies
        kv[0][0], sizes.index(kv[0][1]) if kv[0][1] in sizes else len(sizes),
        variants.index(kv[1][0]["variant"]) if kv[1][0]["variant"] in variants else len(variants),
        kv[1][0].get("copies", 0))))
    lines = ["| data set | size | variant | seeds | accuracy | macro-F1 | dev accuracy | size (KB) | instructions (A76) "
             "| teacher |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (ds, size, var), rs in groups.items():
        lines.append(f"| {ds} | {size} | {var} | {len(rs)} | {ms([r['accuracy'] for r in rs])} | "
                     f"{ms([r['macro_f1'] for r in rs])} | {ms([r.get('dev_accuracy') for r in rs])} | "
                     f"{statistics.mean(r['size_bytes'] for r in rs) / 1000:.0f} | "
                     f"{ms([r['instructions_a76'] for r in rs], '{:,.0f}')} | "
                     f"{ms([r['teacher_accuracy'] for r in rs])} |")
    return ("# Distillation: accuracy at size (deployed int8 on pixel-7, test split)\n\n"
            "Produced by `python benchmarks/distill.py` (see its docstring); mean ± standard deviation over the "
            "seeds run. Teacher: all-MiniLM-L6-v2 (a linear head on the frozen encoder, or fine-tuned end to end); "
            "its test accuracy in the last column.\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["banking77", "sst2"], choices=sorted(REFERENCE))
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    ap.add_argument("--copies", type=int, default=2, help="augmented copies per training text")
    ap.add_argument("--append", action="store_true", help="add to the results file instead of replacing it")
    ap.add_argument("--grid", action="store_true", help="each data set's GRID sizes and copies, the GRID_VARIANTS "
                                                        "(--datasets and --seeds still apply)")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args()
    rows = []
    prev = Path(a.out) / "distill.json"
    if a.append and prev.is_file():
        rows = json.loads(prev.read_text())
    with tempfile.TemporaryDirectory(prefix="edgeopt-distill-bench-") as tmp:
        for ds in a.datasets:
            sizes, copies = GRID[ds] if a.grid else (a.sizes, a.copies)
            for size in sizes:
                for var in GRID_VARIANTS if a.grid else a.variants:
                    for seed in a.seeds:
                        extra, flags = VARIANTS[var]
                        flags = [f.format(copies=copies) for f in flags]
                        row = {"dataset": ds, "size": size, "variant": var, "seed": seed,
                               **run(spec_for(ds, size, seed, extra), flags, Path(tmp))}
                        print(json.dumps(row), flush=True)
                        same = (ds, size, var, seed, row["copies"])  # a rerun replaces its earlier row
                        rows = [r for r in rows if (r["dataset"], r["size"], r["variant"], r["seed"],
                                                    r.get("copies", 0)) != same]
                        rows.append(row)
                        write_results(a.out, "distill", rows, table(rows))


if __name__ == "__main__":
    main()
