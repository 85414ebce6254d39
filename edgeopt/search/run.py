"""`edgeopt tune`: search the target's space for the best artifact under its budgets, then build the pick.

study -> candidates (the conversion-only grid first, then sampled training candidates) -> each measured on the
dev split by the :class:`~edgeopt.tune.evaluate.Evaluator` -> budgets as constraints -> Pareto front -> the pick ->
``build`` of the pick, which alone touches the test split.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .. import urls
from ..console import log
from ..console import progress as progress_bar
from ..errors import ConversionError, ConverterCrash, EdgeOptError, Hopeless, InputError, NoCost, OutputError
from ..tasks import task_for
from . import select as sel
from . import study as st
from .space import Candidate

MARKER = ".edgeopt-tune"


@dataclass
class TuneResult:
    out_dir: Path
    tune_dir: Path
    summary: dict
    rows: list = field(default_factory=list)
    build: Optional[object] = None  # pipeline.BuildResult of the pick

    @property
    def passed(self) -> bool:
        return self.summary.get("pick") is not None and bool(self.build is not None and self.build.passed)


def _check_args(trials, timeout, objective, study_name):
    if objective not in sel.OBJECTIVES:
        raise InputError(f"--objective {objective!r}: choose one of {', '.join(sel.OBJECTIVES)}.")
    if trials < 0:
        raise InputError(f"--trials {trials}: give 0 or more training candidates to sample.")
    if timeout is not None and timeout <= 0:
        raise InputError(f"--timeout {timeout}: give minutes > 0.")
    if study_name is not None and not study_name.strip():
        raise InputError("--study is empty. Fix: give a name, e.g. --study banking77-pixel7.")


def _check_used_as_is(spec, trials: int, space) -> None:
    """A model file used as it is (a Keras 3 custom layer, a subclassed model: ``FileSource.native``) takes no
    training or compression pass, so only the conversion grid can be searched for it: refused before any trial."""
    if spec.model is None or spec.model.path is None or not (trials or space.preset.trains):
        return
    from ..sources import source_for

    why = source_for(spec).native
    if why:
        raise InputError(f"{spec.model.path}: tune's sampled trials train and compress the model, and this model is "
                         f"used as it is ({why}). Fix: --trials 0 (the conversion grid only), or save a functional "
                         f"tf_keras model.")


def _prepare_dir(out: Path, tune_dir: Path, resume: bool, shared: bool) -> None:
    """``out`` holds the pick's build (``out/build``) and the study (``out/tune``). An existing ``out`` must be a
    tune directory edgeopt made; nothing else is ever touched."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory. Fix: choose another --out.")
    if out.is_dir() and any(out.iterdir()) and not (tune_dir / MARKER).is_file():
        raise OutputError(f"{out}: exists and is not an edgeopt tune directory (no tune/{MARKER}); edgeopt does not "
                          f"write into directories it did not make. Fix: choose another --out.")
    if resume and not (tune_dir / MARKER).is_file() and not shared:
        raise InputError(f"--resume: {out} holds no tune to resume. Fix: run without --resume to start one.")
    tune_dir.mkdir(parents=True, exist_ok=True)
    if not (tune_dir / MARKER).is_file():
        (tune_dir / MARKER).write_text(json.dumps({"made_by": "edgeopt tune"}) + "\n")


def _lock(tune_dir: Path):
    f = open(tune_dir / ".lock", "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise OutputError(f"{tune_dir}: another edgeopt tune is working in this directory. Fix: wait for it, or give "
                          f"this one another --out (workers share a study through --storage).") from None
    return f


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def tune(model, target, out=None, trials: int = 8, timeout: Optional[float] = None, objective: str = "cost",
         storage: Optional[str] = None, study: Optional[str] = None, resume: bool = False, dry_run: bool = False,
         quiet: bool = False, latency=None, teachers: tuple = (), on_device: bool = False, use_cache: bool = True,
         seed: int = 0, host_cost: bool = False, sizes: bool = False):
    """Search ``target``'s space for ``model``; see the module docstring. Returns a :class:`TuneResult` (a dict
    describing the space and the trial budget with ``dry_run``)."""
    from ..registry import load_model_spec, load_target
    from ..specs import ModelSpec, TargetProfile
    from .space import space_for

    _check_args(trials, timeout, objective, study)
    prof = target if isinstance(target, TargetProfile) else load_target(target)
    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    if not task_for(spec.task).tunable:
        raise InputError(f"{spec.source or spec.name}: tune compares candidates by sentence accuracy; searching for a "
                         f"tagger (by entity F1) is not built yet. Fix: build the tagger with `edgeopt build`.")
    from .space import sizes_for

    space = space_for(prof, tuple(teachers), on_device, host_cost, sizes_for(spec) if sizes else None)
    _check_used_as_is(spec, trials, space)
    if prof.budgets.max_device_latency_p90_ms is not None and not on_device:
        raise InputError(f"{prof.source or prof.name}: budgets.max_device_latency_p90_ms is measured on the board. "
                         f"Fix: add --on-device (the board in device.remote measures every candidate).")
    grid = space.conversion_grid()
    n_total = len(grid) + trials + (1 if space.preset.trains else 0)
    out = Path(out) if out is not None else Path("build") / spec.name / f"{prof.name}-tune"
    name = study or f"{spec.name}@{prof.name}"
    url = st.storage_url(storage, out / "tune", name)  # refused here, --dry-run too, before anything is written
    if dry_run:
        return {"model": spec.name, "target": prof.name, "out": str(out), "study": name,
                "storage": urls.mask(storage) if storage else f"{out / 'tune' / st.STUDY_FILE} (SQLite)",
                "cost_signal": space.signal, "space": space.describe(),
                "grid": [c.label() for c in grid], "trials": {"conversion_only": len(grid),
                                                              "sampled_training": trials + (1 if space.preset.trains
                                                                                            else 0),
                                                              "total": n_total},
                "objective": objective, "constraints": sel.constraint_names(prof),
                "timeout_minutes": timeout}
    shared = storage is not None
    tune_dir = out / "tune"
    created = not out.exists()
    _prepare_dir(out, tune_dir, resume, shared)
    lock = _lock(tune_dir)
    progress = {"searching": False}
    intr = Interrupts()
    old_term, old_int = signal.signal(signal.SIGTERM, intr.handler), signal.signal(signal.SIGINT, intr.handler)
    try:
        return _run(spec, prof, space, grid, n_total, out, tune_dir, url, name, objective, timeout, resume, shared,
                    quiet, latency, teachers, on_device, use_cache, seed, progress, intr, host_cost, sizes)
    except KeyboardInterrupt:
        if progress["searching"]:
            log(False, f"[edgeopt] tune interrupted; finished trials are kept in {tune_dir}. Continue with the "
                        f"same command and --resume.")
        raise
    except EdgeOptError:
        if created and not progress["searching"]:  # refused before any trial: leave nothing behind
            lock.close()
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
        lock.close()


class Interrupts:
    """SIGTERM and Ctrl-C during a tune: raised as KeyboardInterrupt (the CLI's clean stop, exit 130) only inside
    :meth:`interruptible` regions (edgeopt's own work: training the reference, evaluating a candidate, waiting,
    building the pick); anywhere else (Optuna and SQLAlchemy asking, storing and telling a trial) the signal is
    held and raised at the next :meth:`check` or region. An interrupt raised inside Optuna's ``_run_trial``
    post-processing broke it (UnboundLocalError: 'updated_state', exit 1), and one raised between a lock's
    acquire and release can leave the lock held, so that the interpreter's exit waits on it for ever: one CI
    run's tune printed its clean-stop message and then never exited."""

    def __init__(self):
        self.open = False
        self.pending: Optional[int] = None

    def handler(self, signum, frame):
        if self.open:
            self.open = False  # a second signal while this one unwinds is held, not raised inside clean-up
            raise KeyboardInterrupt(f"signal {signum}")
        self.pending = signum

    def check(self) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise KeyboardInterrupt(f"signal {signum}")

    @contextmanager
    def interruptible(self):
        self.check()
        self.open = True
        try:
            yield
        finally:
            self.open = False
        self.check()


def _run(spec, prof, space, grid, n_total, out, tune_dir, url, name, objective, timeout, resume, shared, quiet,
         latency, teachers, on_device, use_cache, seed, progress, intr, host_cost=False, sizes=False):
    import optuna

    from .evaluate import Evaluator, hopeless_floor

    t_start = time.perf_counter()
    storage = st.open_storage(url)  # before anything else: a study that cannot be reached stops the tune here
    ev = Evaluator(spec, prof, quiet=quiet, use_cache=use_cache, latency=latency, on_device=on_device,
                   teachers=tuple(teachers), host_cost=host_cost, sizes=sizes)
    log(quiet, f"[edgeopt] tune {spec.name} on {prof.name}: {len(grid)} conversion-only candidates, then "
                f"{n_total - len(grid)} sampled with training; cost: {space.signal}; study {name} in "
                f"{urls.mask(url)}")
    # budgets reach the sampler as each trial's constraints (trial.set_constraint)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(4, min(10, n_total // 3)))
    identity = {"model": spec.name, "target": prof.name, "space": space.describe()}
    study = st.open_study(storage, name, identity, sampler, resume, shared)
    requeued = st.requeue_interrupted(study, single_worker=not shared) if (resume or shared) else 0
    if requeued:
        log(quiet, f"[edgeopt] tune: {requeued} interrupted trial(s) queued again")
    if not study.user_attrs.get("grid_enqueued"):
        for c in ([space.preset] if space.preset.trains else []) + grid:
            study.enqueue_trial(c.to_params(space), user_attrs={"training": c.trains}, skip_if_exists=True)
        study.set_user_attr("grid_enqueued", True)
    with intr.interruptible():
        ref = ev.reference()
    floor = hopeless_floor(prof, ref["accuracy"])
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective_fn(trial):
        return _objective(trial, study, ev, space, prof, floor, worker, quiet, intr)


    deadline = None if timeout is None else time.monotonic() + timeout * 60
    progress["searching"] = True
    with progress_bar(n_total, "tune trials", quiet) as bar:
        done = st.finished(study)
        while True:
            intr.check()
            # one trial at a time, each started only while the budget has room for it: finished trials and those
            # running on other workers count (Optuna's own stopping callbacks overshoot by one trial per worker)
            if len(study.get_trials(deepcopy=False)) >= 3 * n_total + 20:
                log(quiet, "[edgeopt] tune: the sampler keeps proposing candidates already tried (the space is "
                            "exhausted); picking from what finished")
                break
            if _no_room(study, n_total):
                if not shared:
                    break
                _wait_for_others(study, quiet, intr)  # a dead worker's trial goes stale and is re-queued: room again
                if _no_room(study, n_total):
                    break
                continue
            study.optimize(objective_fn, n_trials=1, catch=(ConversionError, ConverterCrash, NoCost),
                           gc_after_trial=False)
            now = st.finished(study)
            bar.update(max(0, min(now, n_total) - min(done, n_total)))
            done = now
            intr.check()
            if deadline is not None and time.monotonic() >= deadline:  # checked after a trial, as Optuna's timeout
                log(quiet, f"[edgeopt] tune: --timeout reached; picking from the {st.finished(study)} finished "
                           f"trials")
                break
    if shared:
        _wait_for_others(study, quiet, intr)  # the pick is made over every worker's trials
    rows = _rows(study, space, prof)
    return _finish(spec, prof, space, rows, out, tune_dir, url, name, objective, ev, ref, t_start, quiet, latency,
                   on_device, study, n_total, intr)


def _no_room(study, n_total: int) -> bool:
    from optuna.trial import TrialState

    return st.finished(study) + len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))) >= n_total


def _same_candidate(study, trial, cand: Candidate, intr: "Interrupts"):
    """Another trial of the same candidate: finished (its result is reused), or running on another worker (waited
    for), so that no candidate is evaluated twice."""
    from optuna.trial import TrialState

    want = cand.to_dict()
    while True:
        twin = None
        for t in study.get_trials(deepcopy=False):
            if t.number == trial.number or t.user_attrs.get("candidate") != want:
                continue
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (t.state == TrialState.FAIL
                                                                        and st.OUTCOME in t.user_attrs):
                return t
            if t.state == TrialState.RUNNING and t.number < trial.number:
                twin = t
        if twin is None:
            return None
        with intr.interruptible():
            time.sleep(2)
        from optuna.storages import fail_stale_trials

        fail_stale_trials(study)


def _objective(trial, study, ev, space, prof, floor, worker, quiet, intr):
    import optuna
    from optuna.trial import TrialState

    from .evaluate import stop_when_hopeless

    cand = space.suggest(trial, training=trial.user_attrs.get("training", True))
    trial.set_user_attr("candidate", cand.to_dict())
    trial.set_user_attr("worker", worker)
    twin = _same_candidate(study, trial, cand, intr)
    if twin is not None:
        trial.set_user_attr("duplicate_of", twin.number)
        for k in ("metrics", "constraints", "feasible", "failed_budgets"):
            if k in twin.user_attrs:
                trial.set_user_attr(k, twin.user_attrs[k])
        for cname, cval in twin.constraints.items():
            trial.set_constraint(cname, cval)
        trial.set_user_attr(st.OUTCOME, f"same candidate as trial {twin.number} (not evaluated again)")
        if twin.state == TrialState.COMPLETE:
            return tuple(twin.values)
        if twin.state == TrialState.PRUNED:
            raise optuna.TrialPruned(twin.user_attrs.get(st.OUTCOME, "stopped early"))
        raise NoCost(twin.user_attrs.get(st.OUTCOME, "failed"))
    log(quiet, f"[edgeopt] tune trial {trial.number}: {cand.label()}")
    try:
        with intr.interruptible():  # Optuna records an interrupted trial as failed; --resume runs it again
            m = ev.evaluate(cand, "dev", on_epoch=stop_when_hopeless(floor) if cand.trains else None)
    except Hopeless as e:
        trial.set_user_attr(st.OUTCOME, f"stopped early: {e}")
        log(quiet, f"[edgeopt] tune trial {trial.number}: stopped early ({e})")
        raise optuna.TrialPruned(str(e)) from None
    except (ConversionError, ConverterCrash) as e:
        msg = getattr(e, "what", None) or str(e)
        trial.set_user_attr(st.OUTCOME, f"conversion failed: {msg}")
        log(quiet, f"[edgeopt] tune trial {trial.number}: conversion failed ({msg[:160]})")
        raise
    except EdgeOptError as e:  # the planner refuses this candidate (e.g. 2:4 on a model without Dense layers)
        msg = e.what
        trial.set_user_attr(st.OUTCOME, f"refused: {msg}")
        log(quiet, f"[edgeopt] tune trial {trial.number}: refused ({msg[:160]})")
        raise NoCost(msg) from None
    except Exception as e:  # a pass that fails on this candidate (a TFMOT limit, a diverged fine-tune): recorded
        msg = " ".join(str(e).split())[:300] or type(e).__name__
        trial.set_user_attr(st.OUTCOME, f"failed: {type(e).__name__}: {msg}")
        log(quiet, f"[edgeopt] tune trial {trial.number}: failed ({type(e).__name__}: {msg[:160]})")
        raise NoCost(msg) from e
    if m["cost"] is None:
        why = ((m.get("instructions") or {}).get("counts") or {}).get("error", "the cost signal was not measured")
        trial.set_user_attr("metrics", m)
        trial.set_user_attr(st.OUTCOME, f"no cost: {why}")
        raise NoCost(why)
    v = m["budgets"]  # the target's budgets judged on the candidate's evidence (Evaluator.evaluate)
    cons = sel.constraints(prof, v)
    trial.set_user_attr("metrics", m)
    trial.set_user_attr("constraints", cons)
    for cname, cval in zip(sel.constraint_names(prof), cons):
        trial.set_constraint(cname, cval)
    trial.set_user_attr("feasible", all(c == 0 for c in cons))
    trial.set_user_attr("failed_budgets", sel.failed_budgets(prof, v))
    trial.set_user_attr(st.OUTCOME, "evaluated")
    log(quiet, f"[edgeopt] tune trial {trial.number}: dev accuracy {m['accuracy']:.4f}, {m['size_bytes']:,} B, "
                f"cost {m['cost']:,} ({m['cost_label']}){'' if all(c == 0 for c in cons) else ' - misses ' + '; '.join(sel.failed_budgets(prof, v))}")
    return m["accuracy"], float(m["cost"]), float(m["size_bytes"])


def _wait_for_others(study, quiet: bool, intr: "Interrupts", limit_s: float = 6 * 3600) -> None:
    """Shared study: the pick is made over every trial, so wait until the other workers' running trials end (a
    dead worker's trial goes stale after its heartbeat stops and is failed)."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    t0 = time.monotonic()
    said = False
    while time.monotonic() - t0 < limit_s:
        fail_stale_trials(study)
        running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        if not running:
            return
        if not said:
            log(quiet, f"[edgeopt] tune: waiting for other workers' trials {running}")
            said = True
        with intr.interruptible():
            time.sleep(2)


def _rows(study, space, prof) -> list[dict]:
    """One row per trial that finished by edgeopt's hand (a duplicate points at the trial it reused)."""
    from optuna.trial import TrialState

    preset = space.preset.to_dict()
    rows = []
    for t in study.get_trials(deepcopy=False):
        if not (t.state in (TrialState.COMPLETE, TrialState.PRUNED) or st.OUTCOME in t.user_attrs):
            continue
        m = t.user_attrs.get("metrics") or {}
        cand = t.user_attrs.get("candidate") or {}
        ok = t.state == TrialState.COMPLETE
        rows.append({
            "trial": t.number, "state": t.state.name.lower(), "outcome": t.user_attrs.get(st.OUTCOME, ""),
            "duplicate_of": t.user_attrs.get("duplicate_of"), "candidate": cand, "label": cand.get("label", ""),
            "trains": bool(cand.get("compression", "none") != "none" or cand.get("qat") or cand.get("teacher")),
            "preset": cand == preset, "worker": t.user_attrs.get("worker"),
            "accuracy": m.get("accuracy") if ok else None, "macro_f1": m.get("macro_f1") if ok else None,
            "accuracy_drop": m.get("accuracy_drop") if ok else None,
            "cost": m.get("cost") if ok else None, "cost_label": m.get("cost_label"),
            "size_bytes": m.get("size_bytes") if ok else None, "gzip_bytes": m.get("gzip_bytes") if ok else None,
            "host_p90_ms": (m.get("host_latency") or {}).get("p90_ms") if ok else None,
            "deployed_quantization": m.get("deployed_quantization"),
            "feasible": bool(ok and t.user_attrs.get("feasible")),
            "constraints": t.user_attrs.get("constraints") or [],
            "failed_budgets": t.user_attrs.get("failed_budgets") or [],
            "seconds": m.get("seconds"),
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
        })
    return rows


def _finish(spec, prof, space, rows, out, tune_dir, url, name, objective, ev, ref, t_start, quiet, latency,
            on_device, study, n_total, intr):
    unique = [r for r in rows if r["state"] == "complete" and r["duplicate_of"] is None]
    feasible = [r for r in unique if r["feasible"]]
    front = sel.pareto(feasible)
    for r in rows:
        r["pareto"] = any(r is f for f in front)
    tie = sel.COST_TIE[space.signal]
    chosen = sel.pick(unique, objective, cost_tie=tie)
    preset = next((r for r in unique if r["preset"]), None)
    summary = {
        "model": spec.name, "target": prof.name, "study": name, "storage": urls.mask(url), "objective": objective,
        "cost_signal": space.signal, "cost_label": ev.cost_label, "cost_tie": tie,
        "selection": "candidates compared on the dev split; the test split is touched once, by the final build of "
                     "the pick (out/build), exactly as `edgeopt build` measures it",
        "reference": {k: ref[k] for k in ("artifact", "accuracy", "macro_f1", "examples")},
        "space": space.describe(), "trial_budget": n_total, "trials": len(rows),
        "evaluated": len(unique), "feasible": len(feasible),
        "pareto": [r["trial"] for r in front], "preset": _brief(preset), "pick": _brief(chosen),
        "why": _explain(chosen, preset, objective, prof, tie), "constraints": sel.constraint_names(prof),
        "search_seconds": round(time.perf_counter() - t_start, 1),
    }
    result = TuneResult(out, tune_dir, summary, rows)
    if chosen is None:
        summary["closest"] = [_brief(r) | {"misses": r["failed_budgets"]} for r in sel.closest(unique)]
        _write_outputs(tune_dir, summary, rows, front)
        return result
    with intr.interruptible():  # the build's own clean-up leaves nothing half-written
        build = _build_pick(spec, prof, chosen, out, quiet, latency, on_device)
    result.build = build
    m = build.record["metrics"]
    summary["pick_build"] = {"out": str(build.out_dir), "artifact": m["artifact"], "test_accuracy": m["accuracy"],
                             "test_accuracy_float32": m["baseline"]["accuracy"], "test_macro_f1": m["macro_f1"],
                             "size_bytes": m["size"]["size_bytes"], "budgets_passed": build.passed,
                             "failed_budgets": build.failures,
                             "device_cost": (build.record.get("device_cost") or {}).get("instructions_per_inference")}
    summary["total_seconds"] = round(time.perf_counter() - t_start, 1)
    _write_outputs(tune_dir, summary, rows, front)
    return result


def _brief(r: Optional[dict]) -> Optional[dict]:
    if r is None:
        return None
    return {k: r[k] for k in ("trial", "label", "candidate", "accuracy", "macro_f1", "accuracy_drop", "cost",
                              "size_bytes", "gzip_bytes", "host_p90_ms", "feasible", "failed_budgets")}


def _num(x) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def _explain(chosen, preset, objective, prof, tie=0.0) -> str:
    if chosen is None:
        return "no candidate met every budget on the dev split"
    what = {"cost": f"the most accurate of the cheapest (costs within {tie:.1%} of the lowest are tied)",
            "size": "the smallest file", "accuracy": "the highest dev accuracy"}[objective]
    s = f"{chosen['label']}: {what} among the candidates that meet every budget of {prof.name}"
    if preset is None:
        return s + "; the preset was not evaluated"
    if chosen["trial"] == preset["trial"] or chosen["candidate"] == preset["candidate"]:
        return s + "; it is the target's preset"
    ratio = preset["cost"] / chosen["cost"] if chosen["cost"] else float("inf")
    s += (f". Against the preset ({preset['label']}): cost {_num(chosen['cost'])} vs {_num(preset['cost'])} "
          f"({ratio:.2f}x {'cheaper' if ratio >= 1 else 'dearer'}), dev accuracy {chosen['accuracy']:.4f} vs "
          f"{preset['accuracy']:.4f}, size {chosen['size_bytes']:,} B vs {preset['size_bytes']:,} B")
    if not preset["feasible"]:
        s += f"; the preset misses {', '.join(preset['failed_budgets'])}"
    return s


def _build_pick(spec, prof, chosen, out, quiet, latency, on_device):
    from .. import pipeline
    from .space import Candidate

    c = Candidate.from_dict(chosen["candidate"])
    log(quiet, f"[edgeopt] tune: building the pick ({c.label()}) into {out / 'build'}; the test split is used "
                f"here, once")
    p = pipeline.plan(c.spec_for(spec), [c.profile(prof)], out=str(out / "build"), passes=c.passes(),
                      ptq=c.quantization,
                      on_device=on_device)
    return pipeline.build(p, quiet=quiet, latency=latency or pipeline.LatencySettings())[0]


def _write_outputs(tune_dir: Path, summary: dict, rows: list, front: list) -> None:
    from . import report

    _write_atomic(tune_dir / "trials.json", json.dumps(rows, indent=2, default=str) + "\n")
    _write_atomic(tune_dir / "trials.csv", report.csv_text(rows))
    _write_atomic(tune_dir / "pareto.json", json.dumps([r for r in rows if r.get("pareto")], indent=2,
                                                       default=str) + "\n")
    _write_atomic(tune_dir / "tune.json", json.dumps(summary, indent=2, default=str) + "\n")
    _write_atomic(tune_dir / "report.html", report.html(summary, rows))
