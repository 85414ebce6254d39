"""Judging trials: the target's budgets as constraints (the same checks `build` applies, on the dev split), the
Pareto front over (dev accuracy, cost, size), the pick by the objective, and the candidates closest to the budgets
when none meets them.
"""
from __future__ import annotations

import math
from typing import Optional

from ..specs import TargetProfile

OBJECTIVES = ("cost", "size", "accuracy")
NOT_JUDGED = ("min_export_agreement",)  # judged by the final build (it needs the Keras model's outputs)


def constraint_names(target: TargetProfile) -> list[str]:
    """The budgets a tune judges candidates on, in a fixed order (Optuna wants one length for every trial)."""
    names = [k for k, v in target.budgets.model_dump().items() if v is not None and k not in NOT_JUDGED]
    return ["finite_outputs", "better_than_chance", *names]


def _violation(check: dict) -> float:
    """How far a failed check is from its limit, relative to the limit (0 when it passes)."""
    if check["passed"]:
        return 0.0
    v, lim = check.get("value"), check.get("limit")
    if isinstance(v, (int, float)) and isinstance(lim, (int, float)) and not isinstance(v, bool):
        return max(abs(v - lim) / max(abs(lim), 1e-9), 1e-6)
    return 1.0  # not measured, not finite


def constraints(target: TargetProfile, verdict_: dict) -> list[float]:
    """One value per :func:`constraint_names`: 0 when met, the relative violation (> 0) when not."""
    by = {c["name"]: c for c in verdict_["checks"]}
    return [_violation(by[n]) if n in by else 0.0 for n in constraint_names(target)]


def failed_budgets(target: TargetProfile, verdict_: dict) -> list[str]:
    keep = set(constraint_names(target))
    return [f"{c['name']} {c['value']} (limit {c['limit']})" for c in verdict_["checks"]
            if not c["passed"] and c["name"] in keep]


def _objective_key(row: dict, objective: str):
    """Sort key, smaller is better: the objective first, then the other two."""
    acc, cost, size = -row["accuracy"], row["cost"], row["size_bytes"]
    return {"cost": (cost, acc, size), "size": (size, cost, acc), "accuracy": (acc, cost, size)}[objective]


def dominates(a: dict, b: dict) -> bool:
    ka = (-a["accuracy"], a["cost"], a["size_bytes"])
    kb = (-b["accuracy"], b["cost"], b["size_bytes"])
    return all(x <= y for x, y in zip(ka, kb)) and ka != kb


def pareto(rows: list[dict]) -> list[dict]:
    """The non-dominated rows over (dev accuracy up, cost down, size down)."""
    return [r for r in rows if not any(dominates(o, r) for o in rows if o is not r)]


# Relative cost differences a tune does not tell apart, by cost signal. Emulated instruction counts repeat to about
# 0.01% for ONNX Runtime (its thread pool spins) and exactly for LiteRT; 0.5% is the regression gate's own
# instructions tolerance (manifest.Tolerances.instructions_rel). Host p90s do not repeat as well: six `edgeopt bench`
# runs of one file each (idle 2-core Xeon, 1 thread, 50 warm-up + 500 runs) spread 2.5% (CNN float32 .tflite), 3.6%
# (CNN int8 .tflite) and 6.6% (BiLSTM dynamic .onnx) from fastest to slowest; 5% ties most of that noise and no more.
COST_TIE = {"instructions": 0.005, "host_latency": 0.05, "device_latency": 0.05}


def pick(rows: list[dict], objective: str, cost_tie: float = 0.0) -> Optional[dict]:
    """The best feasible row by the objective (ties: the other two), or None when no row meets every budget.

    With ``objective="cost"``, costs within ``cost_tie`` (relative) of the cheapest are tied, so noise in the
    cost signal does not outrank a real difference in dev accuracy or size: among the tied rows the most accurate
    wins, then the smallest, then the cheapest. The pick stays on the Pareto front (a row that dominated it would
    be in the same band and sort before it).
    """
    ok = [r for r in rows if r["feasible"]]
    if not ok:
        return None
    if objective == "cost" and cost_tie > 0:
        floor = min(r["cost"] for r in ok)
        ok = [r for r in ok if r["cost"] <= floor * (1 + cost_tie)]
        return min(ok, key=lambda r: (-r["accuracy"], r["size_bytes"], r["cost"]))
    return min(ok, key=lambda r: _objective_key(r, objective))


def closest(rows: list[dict], k: int = 3) -> list[dict]:
    """The rows nearest to meeting every budget (smallest summed relative violation)."""
    return sorted(rows, key=lambda r: (sum(r["constraints"]), r["cost"] if r["cost"] is not None else math.inf))[:k]
