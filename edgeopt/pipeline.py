"""plan -> train -> convert -> validate on the artifact -> budgets -> build directory (written atomically).

``plan()`` does every check that needs no computation (specs, targets, output locations) so a bad input fails
before training starts. ``build()`` trains once per model and converts/validates once per target.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import __version__
from .errors import OutputError
from .registry import load_model_spec, load_target
from .specs import QUANTIZATIONS, ModelSpec, Recipe, TargetProfile

LATENCY_INPUTS = 64


@dataclass(frozen=True)
class LatencySettings:
    warmup: int = 50
    iterations: int = 500


@dataclass(frozen=True)
class TargetPlan:
    target: TargetProfile
    recipe: Recipe
    out_dir: Path

    def steps(self) -> list[str]:
        r = self.recipe
        s = [f"convert float32 -> model_float32.tflite (baseline)"]
        if r.ptq != "float32":
            extra = f", representative dataset: {r.representative_samples} training texts" if r.ptq == "int8" else ""
            s.append(f"convert {r.ptq} -> model_{r.ptq}.tflite (deployed{extra})")
        thr = sorted({1, self.target.runtime.threads})
        s.append("validate on the artifacts: accuracy over the test split, parity with Keras, size raw/gzip, "
                 f"latency threads {thr} x XNNPACK on/off")
        s.append("budgets: " + (", ".join(f"{k}={v}" for k, v in
                                          self.target.budgets.model_dump(exclude_none=True).items()) or "none"))
        return s


@dataclass(frozen=True)
class Plan:
    spec: ModelSpec
    targets: tuple[TargetPlan, ...]

    def to_dict(self) -> dict:
        s = self.spec
        return {"model": s.name, "source": s.source, "dataset": s.data.dataset or "files",
                "architecture": s.architecture.model_dump(), "tokenizer": s.tokenizer.model_dump(),
                "training": s.training.model_dump(),
                "passes": ["train"],
                "targets": [{"target": t.target.name, "out": str(t.out_dir), "recipe": t.recipe.model_dump(),
                             "steps": t.steps()} for t in self.targets]}

    def describe(self) -> str:
        s = self.spec
        tr = s.training
        lines = [f"plan for model {s.name} ({s.architecture.name}, dataset {s.data.dataset or 'user files'})",
                 f"  1. load data + fit word tokenizer (seq_len {s.tokenizer.seq_len}, max_vocab "
                 f"{s.tokenizer.max_vocab})",
                 f"  2. train: up to {tr.epochs} epochs, batch {tr.batch_size}, lr {tr.learning_rate}, early stop on "
                 f"dev accuracy (patience {tr.patience}), seed {tr.seed}"]
        for t in self.targets:
            lines.append(f"  target {t.target.name}: quantization {t.recipe.ptq}, runtime {t.target.runtime.name} "
                         f"{t.target.runtime.threads} threads, out {t.out_dir}")
            lines += [f"     - {step}" for step in t.steps()]
        return "\n".join(lines)


def _check_writable(out: Path) -> None:
    """Fail before any training if ``out`` cannot be created: probe by really creating a directory there
    (``os.access`` says yes to root even on read-only or special file systems)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory. Fix: choose another --out.")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{out}: cannot create it, {parent} is a file. Fix: choose another --out.")
    try:
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".edgeopt-probe-"))
    except OSError as e:
        raise OutputError(f"{out}: cannot write in {parent} ({e.strerror}). Fix: choose a writable --out.") from None


def plan(model: str | ModelSpec, targets: list[str | TargetProfile], out: Optional[str] = None,
         ptq: Optional[str] = None) -> Plan:
    from .errors import InputError

    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    profiles = [t if isinstance(t, TargetProfile) else load_target(t) for t in targets]
    if not profiles:
        raise InputError("no target given. Fix: add --target NAME (see `edgeopt targets list`).")
    if ptq is not None and ptq not in QUANTIZATIONS:
        raise InputError(f"--ptq {ptq!r} is not a quantization; choose one of {', '.join(QUANTIZATIONS)}.")
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise InputError(f"target given twice: {names}. Fix: name each target once.")
    plans = []
    for p in profiles:
        if out is None:
            d = Path("build") / spec.name / p.name
        else:
            d = Path(out) if len(profiles) == 1 else Path(out) / p.name
        _check_writable(d)
        plans.append(TargetPlan(p, p.recipe(ptq), d))
    return Plan(spec, tuple(plans))


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict
    passed: bool
    failures: list = field(default_factory=list)


def build(p: Plan, quiet: bool = False, latency: LatencySettings = LatencySettings()) -> list[BuildResult]:
    from .convert.tflite import convert
    from .data import WordTokenizer, load_dataset
    from .passes.train import train
    from .tf import versions

    spec = p.spec
    t_start = time.perf_counter()
    _log(quiet, f"[edgeopt] loading dataset for {spec.name}")
    ds = load_dataset(spec.data)
    tk = spec.tokenizer
    tok = WordTokenizer.fit(ds.train.texts, seq_len=tk.seq_len, max_vocab=tk.max_vocab, min_freq=tk.min_freq,
                            lowercase=tk.lowercase)
    _log(quiet, f"[edgeopt] {ds.name}: train {len(ds.train)} / dev {len(ds.dev)} / test {len(ds.test)}, "
                f"{ds.num_classes} labels, vocab {tok.vocab_size}")
    _log(quiet, f"[edgeopt] training {spec.architecture.name}")
    tr = train(spec, ds, tok, quiet=quiet)
    _log(quiet, f"[edgeopt] trained {tr.epochs_run} epochs in {tr.seconds:.1f}s; best dev accuracy "
                f"{tr.best_dev_accuracy:.4f} (epoch {tr.best_epoch})")
    x_test, y_test = tok.encode_batch(ds.test.texts), np.asarray(ds.test.labels)
    keras_logits = tr.model.predict(x_test, batch_size=256, verbose=0)
    rng = np.random.default_rng(spec.training.seed)
    x_train = tok.encode_batch(ds.train.texts)
    converted: dict[str, bytes] = {}

    def tflite(mode: str, n_rep: int) -> bytes:
        if mode not in converted:
            _log(quiet, f"[edgeopt] converting to TFLite {mode}")
            rep = x_train[rng.permutation(len(x_train))[:n_rep]] if mode == "int8" else None
            converted[mode] = convert(tr.model, mode, rep)
        return converted[mode]

    results = []
    for tp in p.targets:
        tflite("float32", 0)
        tflite(tp.recipe.ptq, tp.recipe.representative_samples)
        ctx = dict(spec=spec, tp=tp, ds=ds, tok=tok, tr=tr, x_test=x_test, y_test=y_test, keras_logits=keras_logits,
                   converted=converted, versions=versions(), t_start=t_start, latency=latency)
        results.append(_build_target(ctx, quiet))
    return results


def _build_target(c: dict, quiet: bool) -> BuildResult:
    from .report import write_report
    from .validate import accuracy as acc_v
    from .validate import budgets as bud_v
    from .validate import latency as lat_v
    from .validate.size import size_of_bytes
    from . import runtimes

    tp, spec, ds = c["tp"], c["spec"], c["ds"]
    target, recipe, out = tp.target, tp.recipe, tp.out_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; a build directory is an ordinary directory
        files = {"float32": staging / "model_float32.tflite"}
        files["float32"].write_bytes(c["converted"]["float32"])
        if recipe.ptq != "float32":
            files[recipe.ptq] = staging / f"model_{recipe.ptq}.tflite"
            files[recipe.ptq].write_bytes(c["converted"][recipe.ptq])
        deployed = files[recipe.ptq]
        tok_files = c["tok"].save(staging)
        (staging / "labels.txt").write_text("\n".join(ds.label_names) + "\n", encoding="utf-8")

        _log(quiet, f"[edgeopt] {target.name}: validating {deployed.name} on {len(ds.test)} test examples")
        measured = {}
        bench_x = c["x_test"][:LATENCY_INPUTS]
        opts = lat_v.grid(target.runtime.threads, target.runtime.delegates)
        for mode, path in files.items():
            sess = runtimes.load(path, runtimes.RuntimeOptions(threads=1, xnnpack="xnnpack" in target.runtime.delegates))
            logits = sess.run(c["x_test"])
            stateful = sess.variable_tensors
            measured[mode] = {
                "accuracy": round(acc_v.accuracy(logits, c["y_test"]), 6),
                "parity_vs_keras": acc_v.parity(c["keras_logits"], logits),
                "logits": logits,
                "latency": lat_v.measure(path, bench_x, opts, c["latency"].warmup, c["latency"].iterations,
                                         quiet),
            }
        base, dep = measured["float32"], measured[recipe.ptq]
        drop = base["accuracy"] - dep["accuracy"]
        row = lat_v.pick(dep["latency"], target.runtime.threads,
                         "xnnpack" in target.runtime.delegates)
        artifacts = []
        for mode, path in files.items():
            s = size_of_bytes(path.read_bytes())
            artifacts.append({"path": path.name, "format": "tflite", "quantization": mode,
                              "role": "deployed" if path == deployed else "baseline", **s})
        dep_size = next(a for a in artifacts if a["path"] == deployed.name)
        verdict = bud_v.check(target.budgets, accuracy=dep["accuracy"], accuracy_drop=drop,
                              size_bytes=dep_size["size_bytes"], latency_p90_ms=row.p90_ms if row else None,
                              export_agreement=base["parity_vs_keras"]["argmax_agreement"])
        tr = c["tr"]
        manifest = {
            "model": spec.name, "target": target.name, "edgeopt_version": __version__, "versions": c["versions"],
            "seed": spec.training.seed,
            "recipe": {"passes": list(recipe.passes), "convert": {"format": "tflite", "quantization": recipe.ptq,
                       "representative_samples": recipe.representative_samples if recipe.ptq == "int8" else 0,
                       "batch": 1}},
            "spec": spec.model_dump(mode="json"), "target_profile": target.model_dump(mode="json"),
            "data": {"dataset": ds.name, "labels": len(ds.label_names), **ds.provenance},
            "tokenizer": c["tok"].config(),
            "training": {"epochs_run": tr.epochs_run, "best_epoch": tr.best_epoch, "seconds": round(tr.seconds, 1),
                         "best_dev_accuracy": round(tr.best_dev_accuracy, 6)},
            "artifacts": artifacts + [{"path": f.name, "format": f.suffix.lstrip("."), **size_of_bytes(f.read_bytes())}
                                      for f in tok_files + [staging / "labels.txt"]],
            "metrics": {
                "keras_accuracy": round(acc_v.accuracy(c["keras_logits"], c["y_test"]), 6),
                "baseline": {"artifact": files["float32"].name, "accuracy": base["accuracy"],
                             "parity_vs_keras": base["parity_vs_keras"],
                             "latency": [s.to_dict() for s in base["latency"]]},
                "artifact": deployed.name, "accuracy": dep["accuracy"], "accuracy_drop": round(drop, 6),
                "test_examples": len(ds.test),
                "variable_tensors": stateful,
                "parity_vs_keras": dep["parity_vs_keras"],
                "parity_vs_baseline": acc_v.parity(base["logits"], dep["logits"]),
                "size": {k: dep_size[k] for k in ("size_bytes", "gzip_bytes")},
                "latency": [s.to_dict() for s in dep["latency"]],
                "latency_budget_row": {"threads": target.runtime.threads,
                                       "xnnpack": "xnnpack" in target.runtime.delegates},
                "latency_note": "measured on the build machine (see 'machine'), not on the target device",
            },
            "budgets": verdict,
            "build_seconds": round(time.perf_counter() - c["t_start"], 1),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        write_report(staging / "report.md", manifest)
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fails = bud_v.failures(verdict)
    _log(quiet, f"[edgeopt] {target.name}: {deployed.name} accuracy {dep['accuracy']:.4f} (float32 "
                f"{base['accuracy']:.4f}), {dep_size['size_bytes']:,} B; budgets "
                f"{'PASSED' if verdict['passed'] else 'FAILED'} -> {out}")
    return BuildResult(out, manifest, verdict["passed"], fails)


def _replace_dir(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out`` by rename; an existing build is moved aside first and removed after."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        try:
            os.rename(staging, out)
        except OSError:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, out)
