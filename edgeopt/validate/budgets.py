"""Budgets decide the verdict (a frozen ``results.Verdict``): every check has its limit, the measured value and
pass/fail."""
from __future__ import annotations

import math
import platform

from ..results import BudgetCheck, Verdict
from ..writer import pct

DEVICE_SIGNALS = ("max_instructions_per_inference (counted on device.qemu_cpu, emulated), max_estimated_latency_ms "
                  "(device.cost_model's estimate from that count) or max_device_latency_p90_ms (device.remote, a "
                  "board)")


def host_arch() -> str:
    """The build machine's architecture in a target's words (``device.arch``)."""
    m = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(m, m)


def host_latency_problem(target) -> str | None:
    """Why ``budgets.max_latency_p90_ms`` cannot judge ``target`` here (None: it can). It is measured on the build
    machine's clock, so it is a budget only for a device of the build machine's own architecture; another device's
    budgets are its own signals (:data:`DEVICE_SIGNALS`), and host latency is reported, labelled, beside them."""
    if target.budgets.max_latency_p90_ms is None or target.device.arch == host_arch():
        return None
    return (f"{target.source or target.name}: field 'budgets.max_latency_p90_ms' is judged on the build machine's "
            f"clock ({host_arch()}), and {target.name}'s device is {target.device.arch}: host latency is not its "
            f"latency. Fix: remove it and budget the device's own signal: {DEVICE_SIGNALS}.")


NO_COUNT = ("skipped: --no-count was given, so nothing was counted and this budget is not judged (count it by "
            "building without --no-count)")


def _item(name, limit, value, ok, unit, hint: str | None = None) -> BudgetCheck:
    """A judged budget; ``hint`` (what to change) is kept only when it failed."""
    return BudgetCheck(name=name, limit=limit, value=value, unit=unit, passed=bool(ok), hint=None if ok else hint)


def skipped_by(target, count) -> dict:
    """{budget: why it is not judged} for the budgets ``count`` (``--count``/``--no-count``) asked not to
    measure: the instruction budgets of a build with --no-count."""
    if count is not False:
        return {}
    b = target.budgets
    return {n: NO_COUNT for n in ("max_instructions_per_inference", "max_estimated_latency_ms")
            if getattr(b, n) is not None}


def check(budgets, ev=None, skipped: dict | None = None, size_hint: str | None = None, **figures) -> Verdict:
    """Every budget judged on one artifact's evidence (``validate.base.ArtifactEvidence``), with its limit, value
    and verdict; drops are measured against ``ev.against`` (the float32 file a build deploys next to; the float32
    reference a tune candidate is compared with). Not a budget but always checked: every output is finite (a
    diverged model outputs NaN, and argmax over NaN picks class 0, which can pass an accuracy budget).

    Without evidence, the figures themselves (keyword arguments of :func:`judge`): the rules on their own.
    ``skipped`` ({budget: why}, :func:`skipped_by`): budgets not judged because the user asked not to measure them;
    ``size_hint``: what drives the file's size (``size_drivers.describe``), said when the size budget fails."""
    if ev is None:
        return judge(budgets, skipped=skipped, size_hint=size_hint, **figures)
    q, base = ev.quality, ev.against
    finite = {}
    refs = [e.quality.reference_finite for e in (ev, base) if e is not None and e.quality.reference_finite is not None]
    if refs:
        finite["keras model"] = all(refs)
    if base is not None:
        finite[base.label] = base.quality.finite
    finite[ev.label] = q.finite
    chance = {e.label: e.quality.chance for e in (base, ev) if e is not None and e.quality.chance is not None}
    agreement = None
    if base is not None and base.quality.parity is not None:  # the float32 file against the Keras model
        agreement = base.quality.parity["argmax_agreement"]
        agreement = float("nan") if agreement is None else agreement
    from .latency import pick

    lat = ev.get("latency")
    row = pick(lat.rows, *ev.judged_at) if lat is not None else None
    cost = ev.get("cost") or {}
    count = ev.get("count") or {}
    return judge(budgets, accuracy=q.accuracy, accuracy_drop=ev.drop("accuracy") or 0.0, size_bytes=ev.size.size_bytes,
                 latency_p90_ms=row.p90_ms if row else None, export_agreement=agreement, emulated=ev.get("emulated"),
                 finite=finite, macro_f1=q.macro_f1, macro_f1_drop=ev.drop("macro_f1"), clients=ev.get("clients"),
                 entity_f1=q.entity_f1, entity_f1_drop=ev.drop("entity_f1"),
                 instructions=cost.get("instructions_per_inference"), instructions_cpu=cost.get("cpu", count.get("cpu")),
                 estimated_latency_ms=cost.get("estimated_latency_ms"), device_latency=ev.get("board"),
                 gpu=ev.get("gpu"), chance=chance or None, robustness=ev.get("robustness"), skipped=skipped,
                 size_hint=size_hint)


def judge(budgets, *, accuracy: float, accuracy_drop: float, size_bytes: int, latency_p90_ms,
          export_agreement: float | None = None, emulated: dict | None = None, finite: dict | None = None,
          macro_f1: float | None = None, macro_f1_drop: float | None = None, clients=None,
          instructions: int | None = None, instructions_cpu: str | None = None,
          estimated_latency_ms: float | None = None, device_latency: dict | None = None,
          gpu: dict | None = None, entity_f1: float | None = None, entity_f1_drop: float | None = None,
          chance: dict | None = None, robustness: dict | None = None, skipped: dict | None = None,
          size_hint: str | None = None) -> Verdict:
    """The budget rules on the figures they read (what :func:`check` takes from the evidence)."""
    checks = []
    skipped = skipped or {}

    def add(name, limit, value, ok, unit, hint=None):
        if name in skipped and (value is None or isinstance(value, str) and value.startswith("not counted")):
            checks.append(BudgetCheck(name=name, limit=limit, value=None, unit=unit, passed=True,
                                      skipped=skipped[name]))
            return
        checks.append(_item(name, limit, value, ok, unit, hint))

    if finite is not None:
        bad = [k for k, ok in finite.items() if not ok]
        add("finite_outputs", "all finite", "non-finite (NaN/inf) outputs from " + ", ".join(bad) if bad else
            "all finite", not bad, "")
    if chance is not None:  # not a budget either: a file no better than the majority class never passes
        from .chance import ALPHA, describe

        bad = [describe(k, c) for k, c in chance.items() if not c["passed"]]
        add("better_than_chance", f"above a constant output (exact test, p < {ALPHA:g})",
            "; ".join(bad or [describe(k, c) for k, c in chance.items()]), not bad, "")

    if budgets.max_accuracy_drop is not None:
        add("max_accuracy_drop", budgets.max_accuracy_drop, round(accuracy_drop, 6),
            accuracy_drop <= budgets.max_accuracy_drop + 1e-12, "fraction")
    if budgets.min_accuracy is not None:
        add("min_accuracy", budgets.min_accuracy, round(accuracy, 6), accuracy >= budgets.min_accuracy, "fraction")
    if budgets.max_macro_f1_drop is not None and macro_f1_drop is not None:
        add("max_macro_f1_drop", budgets.max_macro_f1_drop, round(macro_f1_drop, 6),
            macro_f1_drop <= budgets.max_macro_f1_drop + 1e-12, "")
    if budgets.min_macro_f1 is not None and macro_f1 is not None:
        add("min_macro_f1", budgets.min_macro_f1, round(macro_f1, 6), macro_f1 >= budgets.min_macro_f1, "")
    # entity F1 (strict spans, micro) of a tagger; a sentence classifier has none and is not judged on it
    if budgets.max_f1_drop is not None and entity_f1_drop is not None:
        add("max_f1_drop", budgets.max_f1_drop, round(entity_f1_drop, 6), entity_f1_drop <= budgets.max_f1_drop + 1e-12,
            "entity F1")
    if budgets.min_f1 is not None and entity_f1 is not None:
        add("min_f1", budgets.min_f1, round(entity_f1, 6), entity_f1 >= budgets.min_f1, "entity F1")
    if budgets.min_export_agreement is not None and export_agreement is not None:
        compared = math.isfinite(export_agreement)  # NaN: nothing could be compared, which is no pass
        add("min_export_agreement", budgets.min_export_agreement, round(export_agreement, 6) if compared else None,
            compared and export_agreement >= budgets.min_export_agreement, "fraction")
    if budgets.max_size_bytes is not None:
        add("max_size_bytes", budgets.max_size_bytes, size_bytes, size_bytes <= budgets.max_size_bytes, "bytes",
            size_hint)
    if budgets.max_latency_p90_ms is not None:
        ok = latency_p90_ms is not None and latency_p90_ms <= budgets.max_latency_p90_ms
        add("max_latency_p90_ms", budgets.max_latency_p90_ms, latency_p90_ms, ok, "ms (build machine)")
    if budgets.max_robustness_drop is not None and (robustness or {}).get("judged", True):
        # how people type: the worst transform, edgeopt's runtime or the client (a tagger's: reported, not judged)
        if robustness is None:
            add("max_robustness_drop", budgets.max_robustness_drop, "not measured (the split's texts and the "
                "tokenizer are needed)", False, "fraction")
        else:
            w = robustness["worst"]
            add("max_robustness_drop", budgets.max_robustness_drop, w["drop"],
                w["drop"] <= budgets.max_robustness_drop + 1e-12,
                f"fraction ({robustness['figure']}, {w['transform']} vs as typed, {w['measured_in']})")
    if budgets.max_device_latency_p90_ms is not None:  # the board's own p90 (build --on-device), never the host's
        if device_latency is None:
            add("max_device_latency_p90_ms", budgets.max_device_latency_p90_ms,
                "not measured (build --on-device measures it on device.remote)", False, "ms")
        else:
            add("max_device_latency_p90_ms", budgets.max_device_latency_p90_ms, device_latency["p90_ms"],
                device_latency["p90_ms"] <= budgets.max_device_latency_p90_ms, f"ms (on {device_latency['remote']})")
    if budgets.max_instructions_per_inference is not None:
        # the device's own signal: judged when the build counted it (build --emulate), never on host time
        if instructions is None:
            add("max_instructions_per_inference", budgets.max_instructions_per_inference,
                "not counted (a build counts it unless --no-count is given; see the manifest's device_cost for why "
                "not)", False, "instructions")
        else:
            add("max_instructions_per_inference", budgets.max_instructions_per_inference, instructions,
                instructions <= budgets.max_instructions_per_inference, f"instructions ({instructions_cpu})")
    if budgets.max_estimated_latency_ms is not None:
        if estimated_latency_ms is None:
            add("max_estimated_latency_ms", budgets.max_estimated_latency_ms,
                "not counted (a build counts the instructions the estimate is made from unless --no-count is given)",
                False, "ms")
        else:
            add("max_estimated_latency_ms", budgets.max_estimated_latency_ms, round(estimated_latency_ms, 4),
                estimated_latency_ms <= budgets.max_estimated_latency_ms, "ms (estimate)")
    checks += gpu_checks(budgets, gpu)
    if emulated is not None:  # build --emulate: the artifact must load, take XNNPACK and match the host per CPU
        for c in emulated["cpus"]:
            p = c["parity"]
            value = ("did not load: " + (c["load_error"] or "")[:120]) if not c["loaded"] else (
                f"XNNPACK {'applied' if c['delegate_applied'] else 'NOT applied'}, "
                + (f"{p['max_steps']} quantization steps" if "max_steps" in p else f"max |d| {p.get('max_abs_diff')}"))
            add(f"emulator_{c['cpu']}", "loads, delegate as on the host, parity " + p.get("limit", ""), value,
                c["passed"], "")
    for c in clients or []:  # a declared client that ran: same accuracy as edgeopt's, >= 99.9% agreement
        if c.get("ran"):
            add("client_mediapipe", f"accuracy = edgeopt's, agreement >= {pct(c['agreement_min'])}",
                f"accuracy {pct(c['accuracy'])} (edgeopt {pct(c['edgeopt_accuracy'])}), agreement "
                f"{pct(c['agreement'])} "
                f"({c['disagreements']} of {c['examples']} differ, {c['ties_broken_differently']} ties broken "
                f"another way)", c["passed"], "")
    return Verdict(passed=all(c.passed for c in checks), checks=tuple(checks))


def gpu_checks(budgets, gpu: dict | None) -> list[BudgetCheck]:
    """The GPU budgets (require_full_delegation, max_gpu_deviation) on a GPU run's evidence (gpu/run.py ``check``):
    what ``build`` judges and ``validate --gpu`` reports."""
    checks = []

    def add(name, limit, value, ok, unit):
        checks.append(_item(name, limit, value, ok, unit))

    if budgets.require_full_delegation:  # GPU targets: the partition read from LiteRT's log (gpu/partition.py)
        if not gpu or not gpu.get("available"):
            add("require_full_delegation", "every op on the GPU", "not run: " + ((gpu or {}).get("reason") or
                "no GPU run") + " (edgeopt gpu setup)", False, "")
        else:
            pt = gpu["partition"]
            refused = "; ".join(f"{r['op']}: {r['reason']}" for r in pt["refused"])
            add("require_full_delegation", "every op on the GPU",
                f"{pt['gpu_ops']} of {pt['total_ops']} ops on the GPU" + (f", refused {refused}" if refused else ""),
                pt["fully_delegated"], "")
    if budgets.max_gpu_deviation is not None:
        dev = ((gpu or {}).get("fp16") or {}).get("max_abs_deviation") if (gpu or {}).get("available") else None
        if dev is None:
            add("max_gpu_deviation", budgets.max_gpu_deviation, "not measured: " + ((gpu or {}).get("reason") or
                "no GPU run") + " (edgeopt gpu setup)", False, "")
        else:
            add("max_gpu_deviation", budgets.max_gpu_deviation, round(dev, 6), dev <= budgets.max_gpu_deviation,
                "max |GPU fp16 - CPU| output")
    return checks


def failures(verdict: Verdict) -> list[str]:
    """The failed checks, one line each (what the console and the exit status report)."""
    return [f"{c['name']}: {c['value']} (needs: {c['limit']})" if c["name"].startswith(
                ("emulator_", "finite", "client_", "require_"))
            else f"{c['name']}: {c['value']}" if c["name"] == "better_than_chance" or isinstance(
                c["value"], str) and c["value"].startswith(("not counted", "not measured"))
            else f"{c['name']}: nothing was compared (non-finite outputs)" if c["value"] is None
            else f"{c['name']}: measured {c['value']} {c['unit']} > limit {c['limit']}"
            + (f"; {c['hint']}" if c.get("hint") else "") if c["name"].startswith("max")
            else f"{c['name']}: measured {c['value']} {c['unit']} < limit {c['limit']}"
            for c in verdict["checks"] if not c["passed"]]
