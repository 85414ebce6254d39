"""Named-entity benchmark: the reference taggers on WNUT-17, each artifact judged by entity F1 over the test split.

For wnut17-bilstm and wnut17-cnn, and their -minilm forms (all-MiniLM-L6-v2's word vectors, frozen), on pixel-7
(LiteRT int8, instructions counted on the emulated Cortex-A76) and x86-avx2-server (ONNX Runtime int8): entity F1
(micro, strict spans, and per type) of the float32 and the deployed artifact, size, host latency at the target's
setting, and the device's instruction count. Then compression recipes on the two trained-embedding taggers for
pixel-7 (prune 50% + int8, cluster 16 + CQAT, prune 50%/70% + cluster 16/64 + PCQAT, and prune 70% + cluster 32 +
PCQAT with a 6-epoch prune and every fine-tune self-distilled), against the issue's goal of a recipe 10x smaller (gzip) than float32
within 0.02 F1, and the two recipes near it on wnut17-cnn again from two more training seeds (a retrained tagger
moves by more than the goal's margin). Writes
benchmarks/results/tagging.{json,md}.

    EDGEOPT_DATA_PATH=../shared/data python benchmarks/tagging.py [--models wnut17-cnn ...]

Pass outputs are cached (~/.cache/edgeopt/artifacts), so each tagger is trained once.
"""
from __future__ import annotations

import sys
import tempfile
import time

import edgeopt
from _common import parse_args, write_results
from edgeopt.recipe import ClusterConfig, PruneConfig, QATConfig, SelfDistill

MODELS = ["wnut17-cnn", "wnut17-bilstm", "wnut17-cnn-minilm", "wnut17-bilstm-minilm"]
RECIPE_MODELS = {"wnut17-cnn", "wnut17-bilstm"}  # the -minilm taggers' embedding is frozen pretrained vectors
TARGETS = ["pixel-7", "x86-avx2-server"]
TYPES = ("person", "location", "group", "corporation", "product", "creative-work")
SELF = "prune 70% (6 epochs) + cluster 32 + PCQAT, self-distilled"
# the model, the recipes near the 10x goal, and the training seeds besides the spec's 42: the self-distilled
# recipe's settings were picked on 42, 7 and 2026; 11 and 12 are fresh
SEED_CHECK = ("wnut17-cnn", ("prune 70% + cluster 64 + PCQAT", SELF), (7, 2026, 11, 12))


def recipes():
    p50, p70, q = PruneConfig(sparsity=0.5), PruneConfig(sparsity=0.7), QATConfig()
    c16, c64 = ClusterConfig(clusters=16), ClusterConfig(clusters=64)
    sd = {"self_distill": SelfDistill()}
    return [("prune 50% + int8", {"prune": p50}, "int8"), ("cluster 16 + CQAT", {"cluster": c16, "qat": q}, None),
            ("prune 50% + cluster 16 + PCQAT", {"prune": p50, "cluster": c16, "qat": q}, None),
            ("prune 70% + cluster 16 + PCQAT", {"prune": p70, "cluster": c16, "qat": q}, None),
            ("prune 70% + cluster 64 + PCQAT", {"prune": p70, "cluster": c64, "qat": q}, None),
            (SELF, {"prune": PruneConfig(sparsity=0.7, epochs=6, **sd), "cluster": ClusterConfig(clusters=32, **sd),
                    "qat": QATConfig(**sd)}, None)]


def _row(model: str, target: str, recipe: str, m: dict, seconds: float) -> dict:
    met = m["metrics"]
    row_key = met["latency_budget_row"]
    lat = next(r for r in met["latency"] if (r["threads"], r["xnnpack"]) == (row_key["threads"], row_key["xnnpack"]))
    f32 = next(a for a in m["artifacts"] if a.get("role") in ("baseline",) or a["path"].startswith("model_float32"))
    cost = m.get("device_cost") or {}
    return {"model": model, "target": target, "recipe": recipe, "training_seed": m["seed"], "artifact": met["artifact"],
            "quantization": m["recipe"]["convert"]["quantization"], "passes": m["recipe"]["passes"],
            "entity_f1": met["entity_f1"], "entity_f1_float32": met["baseline_entity_f1"],
            "precision": met["entities"]["micro"]["precision"], "recall": met["entities"]["micro"]["recall"],
            "per_type_f1": {t: met["entities"]["per_type"].get(t, {}).get("f1", 0.0) for t in TYPES},
            "per_type_f1_float32": {t: met["baseline_entities"]["per_type"].get(t, {}).get("f1", 0.0) for t in TYPES},
            "token_accuracy": met["accuracy"], "size_bytes": met["size"]["size_bytes"],
            "gzip_bytes": met["size"]["gzip_bytes"], "float32_gzip_bytes": f32["gzip_bytes"],
            "ratio_gzip_vs_float32": round(f32["gzip_bytes"] / met["size"]["gzip_bytes"], 2),
            "latency": {"threads": lat["threads"], "xnnpack": lat["xnnpack"], "delegate_applied":
                        lat["delegate_applied"], "p50_ms": lat["p50_ms"], "p90_ms": lat["p90_ms"],
                        "runtime": lat["runtime"]},
            "instructions_per_inference": cost.get("instructions_per_inference"), "instructions_cpu": cost.get("cpu"),
            "budgets_passed": m["budgets"]["passed"],
            "failed_budgets": [c["name"] for c in m["budgets"]["checks"] if not c["passed"]],
            "training": m["training"], "truncation": met["truncation"], "seconds": round(seconds, 1),
            "machine": lat["machine"]}


def run(models, latency) -> list[dict]:
    rows = []
    jobs = [(mo, t, "as the target deploys", {}, None) for mo in models for t in TARGETS]
    jobs += [(mo, "pixel-7", label, passes, ptq) for mo in models if mo in RECIPE_MODELS
             for label, passes, ptq in recipes()]
    seed_model, seed_recipes, seeds = SEED_CHECK
    if seed_model in models:
        for label, passes, ptq in (r for r in recipes() if r[0] in seed_recipes):
            jobs += [(seed_model, "pixel-7", f"{label}, training seed {s}", passes, ptq, s) for s in seeds]
    for model, target, label, passes, ptq, *seed in jobs:
        t0 = time.perf_counter()
        spec = edgeopt.load_model_spec(model)
        if seed:  # the same spec trained from another seed (the pass cache keys on it)
            spec = spec.model_copy(update={"training": spec.training.model_copy(update={"seed": seed[0]})})
        with tempfile.TemporaryDirectory() as out:
            plan = edgeopt.plan(spec, [target], out=out, ptq=ptq, passes=passes)
            m = edgeopt.build(plan, quiet=True, latency=latency)[0].manifest
        r = _row(model, target, label, m, time.perf_counter() - t0)
        rows.append(r)
        print(f"{model:<14} {target:<16} {label:<32} F1 {r['entity_f1']:.4f} (float32 {r['entity_f1_float32']:.4f}) "
              f"gzip {r['gzip_bytes']:>9,} x{r['ratio_gzip_vs_float32']:<5} p50 {r['latency']['p50_ms']:.4f} ms "
              f"instr {r['instructions_per_inference']} ({r['seconds']} s)", file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | target | recipe | artifact | entity F1 | F1 float32 | P / R | gzip bytes | x gzip | "
             "p50 / p90 ms (host) | instructions | budgets |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lat = r["latency"]
        ins = f"{r['instructions_per_inference']:,} ({r['instructions_cpu']})" if r["instructions_per_inference"] \
            else "-"
        lines.append(f"| {r['model']} | {r['target']} | {r['recipe']} | `{r['artifact']}` | {r['entity_f1']:.4f} | "
                     f"{r['entity_f1_float32']:.4f} | {r['precision']:.3f} / {r['recall']:.3f} | "
                     f"{r['gzip_bytes']:,} | {r['ratio_gzip_vs_float32']} | {lat['p50_ms']:.4f} / {lat['p90_ms']:.4f} "
                     f"({lat['threads']} thr, XNNPACK {'on' if lat['xnnpack'] else 'off'}) | {ins} | "
                     f"{'pass' if r['budgets_passed'] else 'FAIL: ' + ', '.join(r['failed_budgets'])} |")
    lines += ["", "Entity F1 per type (deployed / float32 artifact):", "",
              "| model | target | recipe | " + " | ".join(TYPES) + " |", "|---|---|---|" + "---|" * len(TYPES)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['target']} | {r['recipe']} | " + " | ".join(
            f"{r['per_type_f1'][t]:.3f} / {r['per_type_f1_float32'][t]:.3f}" for t in TYPES) + " |")
    model, seed_recipes, _ = SEED_CHECK
    for recipe in seed_recipes:
        again = [r for r in rows if r["model"] == model and r["recipe"].split(", training seed")[0] == recipe]
        if len(again) > 1:
            lines += ["", f"Training seeds, {model} with {recipe} (entity F1 of the file against its own float32 "
                          f"file):", ""] + [
                f"- seed {r['training_seed']}: {r['entity_f1']:.4f} vs {r['entity_f1_float32']:.4f} "
                f"({r['entity_f1'] - r['entity_f1_float32']:+.4f}), {r['ratio_gzip_vs_float32']}x gzip" for r in again]
    m, tr = rows[0]["machine"], rows[0]["truncation"]
    lines += ["", f"Entity F1: exact spans, strict BIO, over all {tr['test']['of']:,} WNUT-17 test sentences (each "
                  f"artifact run over them; {tr['test']['entities_cut']} gold entities lie past seq_len "
                  f"{tr['seq_len']} and count as missed). Ratios: the float32 file of the same tagger / this file. "
                  f"Latency: batch 1 at the target's threads and delegate, measured on {m['arch']} {m['cpu']} "
                  f"({m['cores']} cores), not on a device; instructions: per inference on the emulated CPU, not a "
                  f"time."]
    return "\n".join(lines) + "\n"


def main():
    args = parse_args(MODELS, __doc__)
    rows = run(args.models, edgeopt.LatencySettings(warmup=20, iterations=200))
    write_results(args.out, "tagging", rows, markdown(rows))


if __name__ == "__main__":
    main()
