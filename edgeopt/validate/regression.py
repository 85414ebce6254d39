"""Regression gate: compare a build with a stored baseline, re-measuring the artifact itself.

``verify`` does not trust the build's manifest: it re-hashes the deployed artifact, re-runs it over the test split
(with the shipped tokenizer) and re-times it at the target's budget setting. Then, against the baseline:
accuracy may not fall by more than ``accuracy_abs``; size may not grow by more than ``size_rel``; p50 latency may not
exceed ``baseline * (1 + latency_rel)`` plus a noise margin, the baseline's and this run's p90-p50 spread together
(so noisy machines do not fail builds). Latency is compared only on the machine the baseline was taken on.
With emulator results in the baseline (or ``--emulate``), the artifact is also re-run under qemu on each CPU model:
it must load, take XNNPACK when the baseline did, match the host within the parity bound (int8: 1 quantization
step), and keep its emulated accuracy within ``accuracy_abs``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from ..errors import ArtifactError, InputError

DEFAULT_TOLERANCES = {"accuracy_abs": 0.005, "size_rel": 0.02, "latency_rel": 0.25}
FORMAT_VERSION = 1


def _manifest(build: Path) -> tuple[Path, dict]:
    path = build / "manifest.json" if build.is_dir() else build
    try:
        return path.parent, json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no manifest.json. Fix: give a build directory made by `edgeopt build`.") from None
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: unreadable manifest ({e}). Fix: rebuild.") from None


def built_with_emulator(build: Path) -> bool:
    return "emulator" in _manifest(Path(build))[1]


def measure(build: Path, iterations: int = 300, warmup: int = 50, emulate: bool = False) -> dict:
    """Re-measure a build's deployed artifact: sha256, size, test-split accuracy, latency at the budget setting."""
    import numpy as np

    from .. import runtimes
    from ..data import WordTokenizer, load_dataset
    from ..specs import DataSpec
    from .accuracy import accuracy
    from .size import size_of

    d, m = _manifest(Path(build))
    art = d / m["metrics"]["artifact"]
    if not art.is_file():
        raise ArtifactError(f"{art}: the deployed artifact is missing. Fix: rebuild.")
    size = size_of(art)
    ds = load_dataset(DataSpec.model_validate(m["spec"]["data"]))
    tok = WordTokenizer.load(d)
    row = m["metrics"]["latency_budget_row"]
    sess = runtimes.load(art, runtimes.RuntimeOptions(threads=row["threads"], xnnpack=row["xnnpack"]))
    x = tok.encode_batch(ds.test.texts)
    acc = accuracy(sess.run(x), np.asarray(ds.test.labels))
    st = sess.benchmark(x[:64], warmup=warmup, iterations=iterations)
    emulated = None
    if emulate:
        from ..emulator.validate import cpus_for, validate_for_target
        from ..specs import TargetProfile

        target = TargetProfile.model_validate(m["target_profile"])
        cpus = [c["cpu"] for c in m["emulator"]["cpus"]] if "emulator" in m else cpus_for(target)
        res = validate_for_target(art, x, np.asarray(ds.test.labels), target, m["seed"], cpus=cpus, quiet=True)
        emulated = {"sample": res["sample"], "cpus": [
            {k: c[k] for k in ("cpu", "loaded", "delegate_applied", "accuracy", "parity", "load_error")}
            for c in res["cpus"]]}
    return {"model": m["model"], "target": m["target"], "artifact": art.name, "sha256": size["sha256"],
            "manifest_sha256": next((a["sha256"] for a in m["artifacts"] if a["path"] == art.name), None),
            "accuracy": round(acc, 6), "size_bytes": size["size_bytes"], "gzip_bytes": size["gzip_bytes"],
            "latency": {"threads": st.threads, "xnnpack": st.xnnpack, "delegate_applied": st.delegate_applied,
                        "p50_ms": st.p50_ms, "p90_ms": st.p90_ms, "runtime": st.runtime},
            "machine": {k: st.machine[k] for k in ("arch", "cpu", "cores", "isa_flags")},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **({"emulator": emulated} if emulated else {})}


def make_baseline(current: dict, tolerances: Optional[dict] = None) -> dict:
    return {"format_version": FORMAT_VERSION, **current, "tolerances": {**DEFAULT_TOLERANCES, **(tolerances or {})}}


def load_baseline(path: Path) -> dict:
    try:
        b = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: baseline not found. Fix: create it on purpose with `edgeopt verify BUILD "
                         f"--baseline {path} --update`.") from None
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: unreadable baseline ({e}). Fix: regenerate it with --update.") from None
    missing = [k for k in ("model", "target", "accuracy", "size_bytes", "latency", "tolerances") if k not in b]
    if missing:
        raise InputError(f"{path}: baseline lacks {missing}. Fix: regenerate it with --update.")
    return b


def compare(current: dict, baseline: dict) -> dict:
    tol = {**DEFAULT_TOLERANCES, **baseline["tolerances"]}
    checks = []

    def add(name, base, cur, limit, ok, note=""):
        checks.append({"metric": name, "baseline": base, "current": cur, "limit": limit, "passed": bool(ok),
                       "note": note})

    if (current["model"], current["target"]) != (baseline["model"], baseline["target"]):
        raise InputError(f"baseline is for {baseline['model']} on {baseline['target']}, the build is "
                         f"{current['model']} on {current['target']}. Fix: give the matching baseline.")
    lo = round(baseline["accuracy"] - tol["accuracy_abs"], 6)
    add("accuracy", baseline["accuracy"], current["accuracy"], f">= {lo}", current["accuracy"] >= lo)
    hi = int(baseline["size_bytes"] * (1 + tol["size_rel"]))
    add("size_bytes", baseline["size_bytes"], current["size_bytes"], f"<= {hi}", current["size_bytes"] <= hi)
    bl, cl = baseline["latency"], current["latency"]
    same_machine = baseline.get("machine") == current.get("machine")
    same_setting = (bl["threads"], bl["xnnpack"]) == (cl["threads"], cl["xnnpack"])
    if same_machine and same_setting:
        margin = (bl["p90_ms"] - bl["p50_ms"]) + (cl["p90_ms"] - cl["p50_ms"])
        allowed = round(bl["p50_ms"] * (1 + tol["latency_rel"]) + margin, 5)
        add("latency_p50_ms", bl["p50_ms"], cl["p50_ms"], f"<= {allowed}", cl["p50_ms"] <= allowed,
            f"+{tol['latency_rel']:.0%} and a noise margin of {margin:.4f} ms (p90-p50 spreads)")
    else:
        why = "another machine" if not same_machine else "another thread/XNNPACK setting"
        add("latency_p50_ms", bl["p50_ms"], cl["p50_ms"], "not compared", True,
            f"skipped: the baseline was measured on {why}")
    add("delegate_applied", bl.get("delegate_applied"), cl.get("delegate_applied"), "same",
        bl.get("delegate_applied") == cl.get("delegate_applied") or not same_setting)
    if "emulator" in baseline:
        cur = {c["cpu"]: c for c in (current.get("emulator") or {}).get("cpus", [])}
        for bc in baseline["emulator"]["cpus"]:
            cc = cur.get(bc["cpu"])
            name = f"emulator {bc['cpu']}"
            if cc is None:
                add(name, "run", "not run", "re-run under qemu", False, "verify --emulate needs `edgeopt emulator setup`")
                continue
            add(f"{name}: loads, XNNPACK", f"{bc['loaded']}, {bc['delegate_applied']}",
                f"{cc['loaded']}, {cc['delegate_applied']}", "same",
                (cc["loaded"] or not bc["loaded"]) and cc["delegate_applied"] == bc["delegate_applied"],
                (cc.get("load_error") or "")[:120])
            p = cc["parity"]
            par = p.get("max_steps", p.get("max_abs_diff"))
            bp = bc["parity"].get("max_steps", bc["parity"].get("max_abs_diff"))
            add(f"{name}: parity with host", bp, par, p.get("limit", "-"), p.get("passed", False),
                "quantization steps" if "max_steps" in p else "max |guest - host|")
            if bc.get("accuracy") is not None:
                lo_e = round(bc["accuracy"] - tol["accuracy_abs"], 6)
                add(f"{name}: accuracy", bc["accuracy"], cc.get("accuracy"), f">= {lo_e}",
                    cc.get("accuracy") is not None and cc["accuracy"] >= lo_e)
    if current.get("manifest_sha256") and current["sha256"] != current["manifest_sha256"]:
        checks.append({"metric": "artifact_sha256", "baseline": current["manifest_sha256"][:12],
                       "current": current["sha256"][:12], "limit": "info", "passed": True,
                       "note": "the artifact differs from the one its manifest describes (re-measured here)"})
    return {"passed": all(c["passed"] for c in checks), "checks": checks}


def format_table(result: dict) -> str:
    rows = [("metric", "baseline", "current", "limit", "result")] + [
        (c["metric"], str(c["baseline"]), str(c["current"]), str(c["limit"]),
         ("pass" if c["passed"] else "FAIL") + (f" ({c['note']})" if c["note"] else "")) for c in result["checks"]]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows)
