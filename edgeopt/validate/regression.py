"""Regression gate: compare a build with a stored baseline, re-measuring the artifact itself.

``verify`` does not trust the build's manifest: it re-hashes the deployed artifact, re-runs it over the test split
(with the shipped tokenizer) and re-times it at the target's budget setting. Then, against the baseline:

- **accuracy** is gated by a one-sided significance test, not a fixed tolerance: the baseline stores which test
  examples its artifact got right, so when the examples are the same (their hash matches) the test is the exact
  McNemar test on the pairs that disagree (scipy ``binomtest``: of the examples exactly one of the two artifacts
  gets right, are significantly more the baseline's?). Re-training on another machine flips a few percent of
  examples both ways and is not a regression; losing examples without gaining others is. When the examples
  differ it falls back to Fisher's exact test on the two accuracies. A check fails when p < ``accuracy_alpha``
  (0.001 by default: at most one false alarm in a thousand checks of an unchanged model). The same artifact on the
  same runtime flips no example, so any loss of a dozen examples or more fails.
- **macro-F1** is gated the same way, as a paired test on the same examples: the baseline stores its artifact's
  predicted class per example, and a paired bootstrap over the test examples (4,000 resamples, fixed seed) gives
  the one-sided p-value of "the current macro-F1 is lower"; it fails when p < ``accuracy_alpha``. Macro-F1 moves
  with a rare class that accuracy hardly sees (spam is 13% of SMS). Without a paired record it is reported only.
- **size** may not grow by more than ``size_rel``;
- **p50 latency** may not exceed ``baseline * (1 + latency_rel)`` plus a noise margin, the baseline's and this run's
  p90-p50 spread together; compared only on the machine the baseline was taken on;
- with emulator results in the baseline (or ``--emulate``), the artifact is re-run under qemu on each CPU model:
  it must load, take XNNPACK when the baseline did, match the host within the parity bound (int8: 1 quantization
  step), pass the same accuracy test on the emulated sample, and cost no more emulated instructions per inference
  than the baseline plus ``instructions_rel`` (0.5%: the counts are deterministic, so a noise margin is not
  needed, and a 5% costlier artifact fails);
- a build that counted its target's device cost (``device_cost``: qemu on device.qemu_cpu, or callgrind for x86) is
  counted again the same way and gated with the same ``instructions_rel``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ArtifactError, InputError
from ..manifest import (Baseline, Tolerances, decode_correct, decode_predictions, encode_correct,
                        encode_predictions, examples_sha256, load_baseline)

__all__ = ["measure", "make_baseline", "load_baseline", "compare", "format_table", "accuracy_test",
           "built_with_emulator"]


def _manifest_path(build: Path) -> Path:
    build = Path(build)
    return build / "manifest.json" if build.is_dir() else build


def _checked(build: Path):
    """The build's manifest, every file of its directory checked against it first."""
    from ..builddir import check_build_dir

    return check_build_dir(_manifest_path(build).parent)


def built_with_emulator(build: Path) -> bool:
    return _checked(build).emulator is not None


BOOTSTRAP_RESAMPLES = 4000


def macro_f1_test(base_pred: np.ndarray, cur_pred: np.ndarray, labels: np.ndarray, num_classes: int,
                  alpha: float, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """One-sided paired bootstrap: p = share of resamples of the test examples where the current artifact's
    macro-F1 is not below the baseline's ((1 + count) / (1 + resamples), so p is never 0)."""
    from .classes import macro_f1

    n = len(labels)
    rng = np.random.default_rng(seed)
    not_below = 0
    for start in range(0, resamples, 500):
        for idx in rng.integers(0, n, size=(min(500, resamples - start), n)):
            y = labels[idx]
            not_below += macro_f1(cur_pred[idx], y, num_classes) >= macro_f1(base_pred[idx], y, num_classes)
    p = (1 + not_below) / (1 + resamples)
    fb, fc = macro_f1(base_pred, labels, num_classes), macro_f1(cur_pred, labels, num_classes)
    return {"baseline": round(fb, 6), "current": round(fc, 6), "p_value": p, "passed": bool(p >= alpha),
            "limit": f"p >= {alpha:g}", "note": f"paired bootstrap, {resamples} resamples of {n} examples"}


def accuracy_test(base_correct: Optional[np.ndarray], cur_correct: Optional[np.ndarray], base_acc: float,
                  cur_acc: float, n_base: int, n_cur: int, alpha: float) -> dict:
    """One-sided test that the current artifact is less accurate than the baseline's. Paired (exact McNemar)
    when both per-example records are given for the same examples, else Fisher's exact test."""
    from scipy.stats import binomtest, fisher_exact

    if base_correct is not None and cur_correct is not None and len(base_correct) == len(cur_correct):
        lost = int((base_correct & ~cur_correct).sum())  # right before, wrong now
        gained = int((~base_correct & cur_correct).sum())
        p = binomtest(lost, lost + gained, 0.5, alternative="greater").pvalue if lost + gained else 1.0
        how = f"paired McNemar: {lost} examples lost, {gained} gained"
    else:
        kb, kc = round(base_acc * n_base), round(cur_acc * n_cur)
        p = float(fisher_exact([[kb, n_base - kb], [kc, n_cur - kc]], alternative="greater").pvalue)
        how = f"Fisher exact, unpaired ({n_base} vs {n_cur} examples)"
    return {"p_value": float(p), "passed": bool(p >= alpha), "limit": f"p >= {alpha:g}", "note": how}


def measure(build: Path, iterations: int = 300, warmup: int = 50, emulate: bool = False,
            sample_seed: Optional[int] = None) -> dict:
    """Re-measure a build's deployed artifact: sha256, size, test-split accuracy and per-example correctness,
    latency at the budget setting, and (``emulate``) the emulated runs."""
    from .. import runtimes
    from ..data import load_dataset
    from ..data.tokenizer import load_tokenizer
    from ..specs import DataSpec, TargetProfile
    from ..tasks import task_for
    from .base import LatencyPlan, MeasureRequest, Split
    from .classes import macro_f1
    from .measure import measure_artifact

    mpath = _manifest_path(build)
    m = _checked(build)
    d = mpath.parent
    art = d / m.metrics.artifact
    if not art.is_file():
        raise ArtifactError(f"{art}: the deployed artifact is missing. Fix: rebuild.")
    try:
        data_spec = DataSpec.model_validate(m.spec.get("data"))
    except Exception:
        raise InputError(f"{mpath}: manifest field 'spec.data' is not a data section. Fix: rebuild.") from None
    ds = load_dataset(data_spec)
    if (d / "labels.txt").is_file():  # the build's label order (a model's declared order, when it declared one)
        from ..data.datasets import in_label_order
        from ..files import read_text_capped

        order = tuple(read_text_capped(d / "labels.txt", 16 << 20, "labels file", ArtifactError).splitlines())
        if order != tuple(ds.label_names):
            ds = in_label_order(ds, order, str(d / "labels.txt"))
    tok = load_tokenizer(d)
    row = m.metrics.latency_budget_row
    task = task_for(m.task)
    x = tok.encode_batch(ds.test.texts)
    y = task.labels(ds.test.labels, x.shape[1])
    target = TargetProfile.model_validate(m.target_profile)
    at = runtimes.RuntimeOptions(threads=row.threads, xnnpack=row.xnnpack)
    cpus = n = None
    if emulate:
        from ..emulator.validate import cpus_for

        cpus = tuple(c.cpu for c in m.emulator.cpus) if m.emulator else tuple(cpus_for(target))
        n = m.emulator.sample.examples if m.emulator else None
    # the build's own device count (its target's CPU): from the emulated run on that CPU when there is one, else by
    # a count of its own (a few seconds under qemu, about a minute under callgrind; the same bytes counted before are
    # read from the count cache); the GPU partition compiled again (an op moving back to the CPU fails the gate)
    ev = measure_artifact(MeasureRequest(
        art, target, task, Split("test", x, y, tuple(ds.test.texts), ds.test.labels), tuple(ds.label_names),
        # the baseline's emulated sample (its seed), so that the same examples are compared pairwise
        m.seed if sample_seed is None else sample_seed, quiet=True, origin="given", run=at,
        judged_at=(row.threads, row.xnnpack), latency=LatencyPlan((at,), warmup, iterations, 64), emulate=cpus,
        emulate_sample=n, count=(m.device_cost or {}).get("cpu") or None, gpu="partition" if m.gpu else None),
        only=("size", "quality", "latency", "emulated", "count", "gpu"))
    logits, y_eval = task.rows(ev.quality.logits, y)
    correct = logits.argmax(1) == y_eval
    st = ev["latency"].rows[0]
    emulated = None
    if "emulated" in ev:
        res = ev["emulated"]
        emulated = {"sample": res["sample"], "examples_sha256": res["examples_sha256"], "cpus": [
            {k: c.get(k) for k in ("cpu", "loaded", "delegate_applied", "accuracy", "parity", "load_error", "correct",
                                   "instructions")}
            for c in res["cpus"]]}
    device = None
    if "count" in ev:
        c = ev["count"]
        device = {"cpu": c["cpu"], "error": c["error"]} if "error" in c else {"cpu": c["cpu"], **(c["instructions"] or {
            "error": "the emulated run counted nothing"})}
    gpu, size = ev.get("gpu"), ev.size
    extra = {"entity_f1": ev.quality.entity_f1} if ev.quality.entities is not None else {}
    return {"model": m.model, "target": m.target, "artifact": art.name, "sha256": size.sha256,
            "manifest_sha256": next((a.sha256 for a in m.artifacts if a.path == art.name), None),
            "accuracy": round(float(correct.mean()), 6), "test_examples": int(len(y_eval)),
            "correct": encode_correct(correct), "examples_sha256": examples_sha256(x, y),
            "predictions": encode_predictions(logits.argmax(1)), "labels": encode_predictions(y_eval),
            "num_classes": len(ds.label_names),
            "macro_f1": round(macro_f1(logits.argmax(1), y_eval, len(ds.label_names)), 6), **extra,
            "size_bytes": size.size_bytes, "gzip_bytes": size.gzip_bytes,
            "latency": {"threads": st.threads, "xnnpack": st.xnnpack, "delegate_applied": st.delegate_applied,
                        "p50_ms": st.p50_ms, "p90_ms": st.p90_ms, "runtime": st.runtime},
            "machine": {k: st.machine[k] for k in ("arch", "cpu", "cores", "isa_flags")},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **({"emulator": emulated} if emulated else {}),
            **({"device_instructions": device} if device else {}),
            **({"gpu_partition": gpu} if gpu else {})}


def existing_tolerances(path: Path) -> Optional[Tolerances]:
    """The tolerances of the baseline at ``path`` (so ``--update`` keeps a deliberate choice), None when there is
    none; a file there that is not an edgeopt baseline is refused (edgeopt overwrites only what it wrote)."""
    from ..manifest import read_json

    path = Path(path)
    if not path.exists():
        return None
    fix = "choose another --baseline path."
    data = read_json(path, "baseline", fix)
    if not isinstance(data, dict) or not {"format_version", "model", "target", "tolerances"} <= set(data):
        raise InputError(f"{path}: exists and is not an edgeopt baseline; edgeopt will not overwrite it. Fix: {fix}")
    old = data["tolerances"] if isinstance(data["tolerances"], dict) else {}
    keep = {k: v for k, v in old.items() if k in Tolerances.model_fields}  # format 1's accuracy_abs is gone
    try:
        return Tolerances.model_validate(keep)
    except Exception:
        return None


def make_baseline(current: dict, tolerances: Optional[Tolerances] = None) -> dict:
    keep = {k: v for k, v in current.items() if k != "labels"}  # the labels are the dataset's, not the baseline's
    b = Baseline.model_validate({**keep, "tolerances": (tolerances or Tolerances()).model_dump()})
    return b.model_dump(mode="json")


def compare(current: dict, baseline: Baseline) -> dict:
    tol = baseline.tolerances
    checks = []

    def add(name, base, cur, limit, ok, note=""):
        checks.append({"metric": name, "baseline": base, "current": cur, "limit": limit, "passed": bool(ok),
                       "note": note})

    if (current["model"], current["target"]) != (baseline.model, baseline.target):
        raise InputError(f"baseline is for {baseline.model} on {baseline.target}, the build is "
                         f"{current['model']} on {current['target']}. Fix: give the matching baseline.")
    same = current["examples_sha256"] == baseline.examples_sha256
    try:
        recorded = decode_correct(baseline.correct, baseline.test_examples)
    except ValueError as e:
        raise InputError(f"baseline field 'correct': {e}. Fix: regenerate it with --update.") from None
    if abs(float(recorded.mean()) - baseline.accuracy) > 1e-6:
        raise InputError(f"baseline accuracy {baseline.accuracy} does not match its per-example record "
                         f"({recorded.mean():.6f}): it was edited. Fix: regenerate it with --update.")
    t = accuracy_test(recorded if same else None,
                      decode_correct(current["correct"], current["test_examples"]) if same else None,
                      baseline.accuracy, current["accuracy"], baseline.test_examples, current["test_examples"],
                      tol.accuracy_alpha)
    add("accuracy", baseline.accuracy, current["accuracy"], t["limit"], t["passed"],
        f"{t['note']}; p = {t['p_value']:.3g}")
    if baseline.predictions and current.get("predictions") and same:
        n, k = baseline.test_examples, current["num_classes"]
        try:
            bp = decode_predictions(baseline.predictions, n)
        except ValueError as e:
            raise InputError(f"baseline field 'predictions': {e}. Fix: regenerate it with --update.") from None
        f = macro_f1_test(bp, decode_predictions(current["predictions"], n), decode_predictions(current["labels"], n),
                          k, tol.accuracy_alpha)
        add("macro_f1", f["baseline"], f["current"], f["limit"], f["passed"], f"{f['note']}; p = {f['p_value']:.3g}")
    elif baseline.macro_f1 is not None and current.get("macro_f1") is not None:
        add("macro_f1", baseline.macro_f1, current["macro_f1"], "not gated", True,
            "reported only: the baseline's examples differ (no paired record)")
    if baseline.entity_f1 is not None:  # a tagger: its headline figure, recomputed over the whole test split
        lo = round(baseline.entity_f1 - tol.entity_f1_abs, 6)
        cur = current.get("entity_f1")
        add("entity_f1", baseline.entity_f1, cur, f">= {lo}", cur is not None and cur >= lo - 1e-12,
            "strict spans, micro, whole test split" if cur is not None else "not measured: not a tagger's build")
    hi = int(baseline.size_bytes * (1 + tol.size_rel))
    add("size_bytes", baseline.size_bytes, current["size_bytes"], f"<= {hi}", current["size_bytes"] <= hi)
    bl, cl = baseline.latency, current["latency"]
    same_machine = baseline.machine == current.get("machine")
    same_setting = (bl.threads, bl.xnnpack) == (cl["threads"], cl["xnnpack"])
    if same_machine and same_setting:
        margin = (bl.p90_ms - bl.p50_ms) + (cl["p90_ms"] - cl["p50_ms"])
        allowed = round(bl.p50_ms * (1 + tol.latency_rel) + margin, 5)
        add("latency_p50_ms", bl.p50_ms, cl["p50_ms"], f"<= {allowed}", cl["p50_ms"] <= allowed,
            f"+{tol.latency_rel:.0%} and a noise margin of {margin:.4f} ms (p90-p50 spreads)")
    else:
        why = "another machine" if not same_machine else "another thread/XNNPACK setting"
        add("latency_p50_ms", bl.p50_ms, cl["p50_ms"], "not compared", True,
            f"skipped: the baseline was measured on {why}")
    add("delegate_applied", bl.delegate_applied, cl.get("delegate_applied"), "same",
        bl.delegate_applied == cl.get("delegate_applied") or not same_setting)
    if baseline.device_instructions:
        bd, cd = baseline.device_instructions, current.get("device_instructions") or {}
        where = "x86 (callgrind)" if bd["cpu"] == "x86" else f"{bd['cpu']} (emulated)"
        _gate_instructions(add, f"instructions on {where}", bd, cd if cd.get("cpu") == bd["cpu"] else {},
                           tol.instructions_rel, "instructions per inference, the target's device cost",
                           "not counted: " + (cd.get("error") or "the build counted none")[:200])
    if baseline.gpu_partition and baseline.gpu_partition.get("available"):
        bg, cg = baseline.gpu_partition, current.get("gpu_partition") or {}
        if not cg.get("available"):
            add("gpu partition", f"{bg['gpu_ops']} of {bg['total_ops']} ops on the GPU", "not run", "compiled again",
                False, (cg.get("reason") or "no GPU run")[:200] + " (edgeopt gpu setup)")
        else:
            moved = [r for r in cg["refused"] if r not in bg["refused"]]
            add("gpu partition: ops on the GPU", bg["gpu_ops"], cg["gpu_ops"], f">= {bg['gpu_ops']}",
                cg["gpu_ops"] >= bg["gpu_ops"] and cg["cpu_ops"] <= bg["cpu_ops"],
                ("moved to the CPU: " + "; ".join(f"{r['op']}: {r['reason']}" for r in moved)) if moved else
                f"on {cg['adapter']}")
            add("gpu partition: fully delegated", bg["fully_delegated"], cg["fully_delegated"], "same or better",
                cg["fully_delegated"] or not bg["fully_delegated"])
    if baseline.emulator is not None:
        be = baseline.emulator
        ce = current.get("emulator") or {}
        cur = {c["cpu"]: c for c in ce.get("cpus", [])}
        paired = be.examples_sha256 is not None and be.examples_sha256 == ce.get("examples_sha256")
        n_e = getattr(be.sample, "scored", None) or be.sample.examples  # a tagger's records are per real token
        for bc in be.cpus:
            cc = cur.get(bc.cpu)
            name = f"emulator {bc.cpu}"
            if cc is None:
                add(name, "run", "not run", "re-run under qemu", False, "verify --emulate needs `edgeopt emulator setup`")
                continue
            add(f"{name}: loads, XNNPACK", f"{bc.loaded}, {bc.delegate_applied}",
                f"{cc['loaded']}, {cc['delegate_applied']}", "same",
                (cc["loaded"] or not bc.loaded) and cc["delegate_applied"] == bc.delegate_applied,
                (cc.get("load_error") or "")[:120])
            _gate_instructions(add, f"{name}: instructions", bc.instructions or {}, cc.get("instructions") or {},
                               tol.instructions_rel, "emulated instructions per inference",
                               "not counted (the instruction counter needs edgeopt emulator setup and qemu-user)")
            p = cc["parity"]
            par = p.get("max_steps", p.get("max_abs_diff"))
            bp = bc.parity.get("max_steps", bc.parity.get("max_abs_diff"))
            add(f"{name}: parity with host", bp, par, p.get("limit", "-"), p.get("passed", False),
                "quantization steps" if "max_steps" in p else "max |guest - host|")
            if bc.accuracy is not None:
                if cc.get("accuracy") is None:
                    add(f"{name}: accuracy", bc.accuracy, None, "measured", False, "no emulated result")
                    continue
                pair = paired and bc.correct and cc.get("correct")
                te = accuracy_test(decode_correct(bc.correct, n_e) if pair else None,
                                   decode_correct(cc["correct"], n_e) if pair else None,
                                   bc.accuracy, cc["accuracy"], n_e,
                                   ce.get("sample", {}).get("scored") or ce.get("sample", {}).get("examples", n_e),
                                   tol.accuracy_alpha)
                add(f"{name}: accuracy", bc.accuracy, cc["accuracy"], te["limit"], te["passed"],
                    f"{te['note']}; p = {te['p_value']:.3g}")
    if current["sha256"] != baseline.sha256:  # (the build directory itself was checked against its manifest)
        checks.append({"metric": "artifact_sha256", "baseline": baseline.sha256[:12],
                       "current": current["sha256"][:12], "limit": "info", "passed": True,
                       "note": "another file than the baseline's (re-measured here)"})
    return {"passed": all(c["passed"] for c in checks), "checks": checks}


def _gate_instructions(add, name: str, base: dict, cur: dict, rel: float, counted: str, missing: str) -> None:
    """One check per counted setting (XNNPACK on/off, ONNX Runtime): no more than the baseline plus ``rel``."""
    for key in ("xnnpack_on", "xnnpack_off", "onnxruntime"):
        if base.get(key) is None:
            continue
        hi = int(base[key] * (1 + rel))
        c = cur.get(key)
        add(f"{name} ({key.replace('_', ' ')})", base[key], c, f"<= {hi}", c is not None and c <= hi,
            counted if c is not None else missing)


def format_table(result: dict) -> str:
    rows = [("metric", "baseline", "current", "limit", "result")] + [
        (c["metric"], str(c["baseline"]), str(c["current"]), str(c["limit"]),
         ("pass" if c["passed"] else "FAIL") + (f" ({c['note']})" if c["note"] else "")) for c in result["checks"]]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows)
