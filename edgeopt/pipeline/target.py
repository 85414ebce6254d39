"""One target's build: convert, validate on the artifacts, budgets, manifest and report, written to a staging
directory and renamed into place.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..console import log
from ..errors import OutputError
from .._version import __version__
from ..data.tokenizer import GOLDEN, write_golden
from .builder import BuildResult, BuildSession, structure_of
from ..convert.fallback import convert_with_fallbacks
from .outdir import STAGING_MARKER, check_out_dir, clean_stale, dir_lock, failed_destination, replace_dir
from .plan import LATENCY_INPUTS, LatencySettings, Plan, TargetPlan
from ..results import Conversion, Verdict

def build(p: Plan, quiet: bool = False, latency: LatencySettings = LatencySettings()) -> list[BuildResult]:
    b = BuildSession(p, quiet, latency)
    return [_build_target(b, tp) for tp in p.targets]


@dataclass
class _Run:
    """One target's models and converted files, before anything is written."""

    model: object
    records: list
    key: str
    base_model: object
    baseline_bytes: bytes
    deployed_bytes: bytes
    ptq: str  # the deployed quantization (the plan's, or a fallback)
    conversion: Conversion
    keras_logits: np.ndarray
    base_keras_logits: np.ndarray
    metadata: dict | None = None


def _build_target(b: BuildSession, tp: TargetPlan) -> BuildResult:
    """Passes and conversions, then the files written to a staging directory, measured there, described in the
    manifest and report, and renamed into place."""
    from ..manifest import dump_manifest
    from ..report import write_report
    from ..validate import budgets as bud_v

    run = _convert(b, tp)
    out = tp.out_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    # the two model files, the tokenizer's files, manifest and report (the last few MB at most)
    needed = len(run.baseline_bytes) + len(run.deployed_bytes) + (4 << 20)
    free = shutil.disk_usage(out.parent).free
    if free < needed:
        raise _no_space(out, needed, free)
    with dir_lock(out.parent, b.quiet):
        clean_stale(out)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-{os.getpid()}-"))
        (staging / STAGING_MARKER).touch()
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; a build directory is an ordinary directory
        files, side_files = _write_files(b, tp, run, staging)
        base_ev, dep_ev = _measure(b, tp, run, files)
        artifacts, cross = _artifact_records(b, tp, run, files, base_ev, dep_ev, staging)
        verdict = bud_v.check(tp.target.budgets, dep_ev, skipped=dict(tp.skipped), size_hint=_size_hint(b, tp, run))
        manifest = _manifest(b, tp, run, files, base_ev, dep_ev, artifacts, cross, side_files, verdict)
        manifest = dump_manifest(staging / "manifest.json", manifest)
        write_report(staging / "report.md", manifest)
        (staging / STAGING_MARKER).unlink()
        with dir_lock(out.parent, b.quiet):
            check_out_dir(out, tp.force)  # again: it may have changed while this build ran
            if not verdict.passed and out.is_dir() and any(out.iterdir()):
                kept = out  # a failed build never replaces anything: it goes beside it
                out = failed_destination(kept)
                log(b.quiet, f"[edgeopt] {tp.target.name}: the budgets failed, so {kept} is left as it was; this build "
                             f"goes to {out}")
            replace_dir(staging, out)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(out, needed, shutil.disk_usage(out.parent).free) from None
        raise
    dep, base = dep_ev.quality, base_ev.quality
    if dep.entities is not None:
        log(b.quiet, f"[edgeopt] {tp.target.name}: {files['deployed'].name} entity F1 {dep.entity_f1:.4f} (float32 "
                     f"{base.entity_f1:.4f})")
    log(b.quiet, f"[edgeopt] {tp.target.name}: {files['deployed'].name} accuracy {dep.accuracy:.4f} (float32 "
                 f"{base.accuracy:.4f}), {manifest['metrics']['size']['size_bytes']:,} B; budgets "
                 f"{'PASSED' if verdict.passed else 'FAILED'} -> {out}")
    return BuildResult(out, manifest, verdict.passed, bud_v.failures(verdict))


def _no_space(out: Path, needed: int, free: int) -> OutputError:
    return OutputError(f"{out.parent}: no space left for the build ({needed:,} bytes needed, {free:,} free); nothing "
                       f"was written. Fix: free space there, or choose another --out.")


def _size_hint(b: BuildSession, tp: TargetPlan, run: _Run):
    """What drives the deployed file's size, when it is over the size budget (None otherwise)."""
    limit = tp.target.budgets.max_size_bytes
    if limit is None or len(run.deployed_bytes) <= limit:
        return None
    from ..validate.size_drivers import describe

    return describe(run.model, run.ptq, b.tok.vocab_size, b.source.kind)


def _convert(b: BuildSession, tp: TargetPlan) -> _Run:
    """Run (or fetch) the passes, convert the uncompressed model (the float32 baseline) and the final one (the
    deployed file, with fallbacks), and the Keras outputs both are compared with."""
    model, records, k, base_key = b.run_steps(tp.steps)
    base_model = b.memo[base_key][0]
    baseline_bytes = b.convert(base_key, base_model, "float32", 0, tp.target)
    deployed_bytes, ptq, conversion = convert_with_fallbacks(b, tp, k, model)
    keras_logits = model.predict(b.x_test, batch_size=256, verbose=0)
    base_keras_logits = keras_logits if base_model is model else base_model.predict(b.x_test, batch_size=256,
                                                                                    verbose=0)
    return _Run(model, records, k, base_model, baseline_bytes, deployed_bytes, ptq, conversion, keras_logits,
                base_keras_logits)


def _write_files(b: BuildSession, tp: TargetPlan, run: _Run, staging: Path) -> tuple[dict, list]:
    """({baseline, deployed}: model file paths, the tokenizer and labels files) written into ``staging``."""
    fmt = tp.target.runtime.format
    files = {"baseline": staging / f"model_float32.{fmt}"}
    files["baseline"].write_bytes(run.baseline_bytes)
    if run.ptq != "float32" or len(tp.steps) > 1:
        name = f"model_{run.ptq}.{fmt}" if run.ptq != "float32" else f"model_compressed_float32.{fmt}"
        files["deployed"] = staging / name
        files["deployed"].write_bytes(run.deployed_bytes)
    else:
        files["deployed"] = files["baseline"]
    side = b.tok.save(staging)
    (staging / "labels.txt").write_text("\n".join(b.ds.label_names) + "\n", encoding="utf-8")
    side.append(staging / "labels.txt")
    golden = staging / GOLDEN
    write_golden(golden, b.tok, b.ds)
    side.append(golden)
    if fmt == "tflite" and b.task.clients:  # MediaPipe's writer describes a text classifier's one score row
        run.metadata = _write_metadata(b, tp, sorted(set(files.values())))
    return files, side


def _write_metadata(b: BuildSession, tp: TargetPlan, paths: list) -> dict:
    """TFLite model metadata in every .tflite of the build (MediaPipe's writer, its own environment)."""
    from ..clients import mediapipe as mp

    spec, t = b.p.spec, tp.target
    log(b.quiet, f"[edgeopt] {t.name}: writing model metadata (labels, tokenizer) into "
                  f"{', '.join(p.name for p in paths)}")
    md = mp.write_metadata(paths, b.tok, b.ds.label_names, name=spec.name, version=f"edgeopt {__version__}",
                           description=spec.description or spec.name, quiet=b.quiet)
    sub = md["subgraph_metadata"][0]
    units = (sub["input_tensor_metadata"][0].get("process_units") or []) + (sub.get("input_process_units") or [])
    holders = [*sub["input_tensor_metadata"], *sub["output_tensor_metadata"], *units]
    return {"writer": "mediapipe 0.10.21 metadata_writers (environment mediapipe-writer)",
            "name": md.get("name"), "version": md.get("version"), "min_parser_version": md.get("min_parser_version"),
            "input_tokenizer": units[0]["options_type"] if units else "none: token ids (see tokenizer.json)",
            "associated_files": sorted({f["name"] for h in holders
                                        for f in (h.get("associated_files") or []) + (h.get("options", {}).get(
                                            "vocab_file") or [])}),
            "client_ready": mp.client_compatible(b.tok), "client_gap": mp.client_gap(b.tok)}


def _measure(b: BuildSession, tp: TargetPlan, run: _Run, files: dict):
    """The evidence of the float32 baseline (quality, parity with its Keras model, latency) and of the deployed file
    (the same, and every validator the target and the plan ask for), through the one evidence path."""
    from ..runtimes import RuntimeOptions
    from ..validate import latency as lat_v
    from ..validate.base import LatencyPlan, MeasureRequest
    from ..validate.measure import measure_artifact

    target = tp.target
    rt = target.runtime
    xnn = "xnnpack" in rt.delegates
    log(b.quiet, f"[edgeopt] {target.name}: validating {files['deployed'].name} on {len(b.ds.test)} test examples")
    common = dict(target=target, task=b.task, split=b.test_split, label_names=tuple(b.ds.label_names),
                  seed=b.p.spec.training.seed, quiet=b.quiet, run=RuntimeOptions(threads=1, xnnpack=xnn),
                  judged_at=(rt.threads, xnn), latency=LatencyPlan(tuple(lat_v.grid(rt.threads, rt.delegates)),
                                                                   b.latency.warmup, b.latency.iterations,
                                                                   LATENCY_INPUTS))
    base_ev = measure_artifact(MeasureRequest(files["baseline"], reference=run.base_keras_logits, **common),
                               only=("size", "quality", "latency"))
    same = files["deployed"] == files["baseline"]
    dep_req = MeasureRequest(
        files["deployed"], reference=run.keras_logits, against=base_ev, emulate=tuple(tp.emulate) or None,
        # the device's cost: counted where the plan says, else taken from the emulated run of the target's own CPU
        count=tp.count or (target.device.qemu_cpu if tp.emulate else None),
        count_source="prefer_emulated" if tp.count else "emulated_only", board=tp.remote,
        clients=tuple(target.clients), tokenizer=b.tok, robustness=True, gpu="check" if target.uses_gpu else None,
        gpu_sample=target.gpu.sample, gpu_export={"flat_lookup": target.flat_lookup}, **common)
    return base_ev, measure_artifact(dep_req, have=base_ev.records if same else None)


def _artifact_records(b: BuildSession, tp: TargetPlan, run: _Run, files: dict, base_ev, dep_ev,
                      staging: Path) -> tuple[list, dict | None]:
    """The model files' records (sizes and hashes, as their evidence measured them), the cross-format export's
    when asked; appends the convert step's record (the deployed file's accuracy and structure, read back) to the
    passes."""
    fmt = tp.target.runtime.format
    artifacts = []
    for role, path in files.items():
        if role == "deployed" and path == files["baseline"]:
            artifacts[0]["role"] = "deployed"
            continue
        artifacts.append({"path": path.name, "format": fmt,
                          "quantization": "float32" if role == "baseline" else run.ptq, "role": role,
                          **(base_ev if role == "baseline" else dep_ev).size.to_dict()})
    dep_art = next(a for a in artifacts if a["role"] == "deployed")
    if len(tp.steps) > 1 or fmt == "onnx":
        run.records.append({"step": "convert", "note": f"{run.ptq} .{fmt} (deployed)",
                            "accuracy": dep_ev.quality.accuracy, "size_bytes": dep_art["size_bytes"],
                            **({"entity_f1": dep_ev.quality.entity_f1} if dep_ev.quality.entities is not None else {}),
                            "gzip_bytes": dep_art["gzip_bytes"], **structure_of(files["deployed"])})
    cross = None
    if tp.cross_format:
        cross = _cross_format(b, tp, run.key, run.model, staging, dep_ev.quality.logits)
        artifacts.append({"path": cross["artifact"], "format": cross["format"], "quantization": cross["quantization"],
                          "role": "cross_format",
                          **{k: cross[k] for k in ("sha256", "size_bytes", "gzip_bytes")}})
    return artifacts, cross


def _manifest(b: BuildSession, tp: TargetPlan, run: _Run, files: dict, base_ev, dep_ev, artifacts: list, cross,
              side_files: list, verdict: Verdict) -> dict:
    """The manifest: what was built and how, and every validator's record of the deployed file (and the float32
    baseline's quality and latency)."""
    from ..manifest import encode_correct, encode_predictions, examples_sha256
    from ..validate import accuracy as acc_v
    from ..validate.measure import manifest_sections
    from ..validate.size import size_of_bytes

    spec, ds, target, ptq = b.p.spec, b.ds, tp.target, run.ptq
    fmt = target.runtime.format
    base, dep = base_ev.quality, dep_ev.quality
    dep_art = next(a for a in artifacts if a["role"] == "deployed")
    train_rec = next(r for r in run.records if r["step"] in ("train", "distill", "load"))
    dep_rows, y_rows = b.real(dep.logits, b.y_test)  # a tagger's real tokens
    base_rows = b.real(base.logits, b.y_test)[0]
    return {
        "model": spec.name, "target": target.name, "edgeopt_version": __version__, "versions": b.versions,
        "seed": spec.training.seed,
        "model_source": {"kind": b.source.kind, "description": b.source.describe(), **b.p.facts,
                         **({"layers": _layer_rows(b, tp, ptq)} if b.source.kind != "architecture" else {})},
        "conversion": run.conversion,
        "recipe": {"passes": tp.pass_names, "steps": [st.describe() for st in tp.steps],
                   "convert": {"format": fmt, "quantization": ptq, "batch": 1 if fmt == "tflite" else "dynamic",
                               "representative_samples": tp.representative_samples if ptq in ("int8", "int16x8") else 0,
                               **({"opset": target.onnx_settings.opset,
                                   "ort_quantization": target.onnx_settings.quant.model_dump()}
                                  if fmt == "onnx" else {})}},
        "passes": run.records,
        "spec": spec.model_dump(mode="json"), "target_profile": target.model_dump(mode="json"),
        "data": {"dataset": ds.name, "labels": len(ds.label_names), **ds.provenance},
        "tokenizer": b.tok.config(),
        "task": ds.task,
        "training": {k: train_rec.get(k) for k in ("epochs_run", "best_epoch", "best_dev_accuracy", "seconds",
                                                   *b.task.training_keys)},
        "artifacts": artifacts + [{"path": f.name, "format": f.suffix.lstrip("."), **size_of_bytes(f.read_bytes())}
                                  for f in side_files],
        "metrics": {
            "keras_accuracy": round(acc_v.accuracy(*b.real(run.keras_logits, b.y_test)), 6),
            # after a recipe the float32 baseline is exported from the model before it: its own Keras figure
            **({"baseline_keras_accuracy": round(acc_v.accuracy(*b.real(run.base_keras_logits, b.y_test)), 6)}
               if run.base_model is not run.model else {}),
            **(_entity_metrics(b, base_ev, dep_ev) if dep.entities is not None else {}),
            "baseline": {"artifact": files["baseline"].name, "accuracy": base.accuracy,
                         "parity_vs_keras": base.parity,
                         "latency": [s.to_dict() for s in base_ev["latency"].rows]},
            "artifact": files["deployed"].name, "accuracy": dep.accuracy,
            "accuracy_drop": round(dep_ev.drop("accuracy"), 6),
            "macro_f1": dep.macro_f1, "baseline_macro_f1": base.macro_f1,
            "macro_f1_drop": round(dep_ev.drop("macro_f1"), 6),
            "per_class": dep.per_class, "baseline_per_class": base.per_class,
            "test_examples": len(ds.test),
            "finite_outputs": all(c.passed for c in verdict.checks if c.name == "finite_outputs"),
            "correct": encode_correct(dep_rows.argmax(1) == y_rows),
            "predictions": encode_predictions(dep_rows.argmax(1)),
            "examples_sha256": examples_sha256(b.x_test, b.y_test),
            "variable_tensors": dep.variable_tensors,
            "parity_vs_keras": dep.parity,
            "parity_vs_baseline": acc_v.parity(base_rows, dep_rows),
            "scores": acc_v.scores_record(base_rows, dep_rows),
            "size": {k: dep_art[k] for k in ("size_bytes", "gzip_bytes")},
            "size_ratio_vs_float32": {"raw": round(artifacts[0]["size_bytes"] / dep_art["size_bytes"], 3),
                                      "gzip": round(artifacts[0]["gzip_bytes"] / dep_art["gzip_bytes"], 3)},
            "latency": [s.to_dict() for s in dep_ev["latency"].rows],
            "latency_budget_row": {"threads": target.runtime.threads, "xnnpack": "xnnpack" in target.runtime.delegates},
            "latency_note": "measured on the build machine (see 'machine'), not on the target device",
            **({"cross_format": cross} if cross else {}),
        },
        **manifest_sections(dep_ev),  # emulator, device_cost, device_latency, clients, gpu: each validator's own
        **({"metadata": run.metadata} if run.metadata else {}),
        "budgets": verdict,
        "build_seconds": round(time.perf_counter() - b.t_start, 1),
    }


def _entity_metrics(b: BuildSession, base_ev, dep_ev) -> dict:
    """A tagger's headline figures: entity precision, recall and F1 (strict spans, micro and per type) of the
    deployed and the float32 artifact over the whole test split; accuracy, per-class figures and parity are per
    real token and secondary."""
    base, dep = base_ev.quality, dep_ev.quality
    return {"entity_f1": dep.entity_f1, "baseline_entity_f1": base.entity_f1,
            "entity_f1_drop": round(dep_ev.drop("entity_f1"), 6),
            "entities": dep.entities, "baseline_entities": base.entities, "truncation": b.truncation(),
            "accuracy_unit": "real tokens (padding excluded); entity_f1 is the headline"}


def _layer_rows(b: BuildSession, tp: TargetPlan, ptq: str) -> list[dict]:
    from .layer_table import layer_rows

    return layer_rows(b.source.model, tp.steps, ptq, tp.target, getattr(b.source, "vectorizer", None))


def _cross_format(b: BuildSession, tp: TargetPlan, k: str, model, staging: Path, deployed_logits) -> dict:
    """Export the other format from the same weights (same quantization where it exists there) and compare."""
    from .. import runtimes
    from ..specs import OnnxSpec, RuntimeSpec
    from ..validate.base import LatencyPlan, MeasureRequest
    from ..validate.measure import measure_artifact

    t = tp.target
    if t.runtime.format == "tflite":
        other = t.model_copy(update={"runtime": RuntimeSpec(name="onnxruntime", format="onnx", threads=1, delegates=()),
                                     "onnx": OnnxSpec()})
        mode = "float32" if tp.ptq in ("float16", "int16x8") else tp.ptq  # no ONNX counterpart here
    else:
        other, mode = None, tp.ptq
    fmt = "onnx" if other is not None else "tflite"
    data = b.convert(k, model, mode, tp.representative_samples, other)
    path = staging / f"model_{mode}.{fmt}"
    path.write_bytes(data)
    one = runtimes.RuntimeOptions(threads=1, xnnpack=True)
    ev = measure_artifact(MeasureRequest(path, t, b.task, b.test_split, tuple(b.ds.label_names), b.p.spec.training.seed,
                                         quiet=True, run=one, reference=deployed_logits, judged_at=(1, True),
                                         latency=LatencyPlan((one,), b.latency.warmup, b.latency.iterations,
                                                             LATENCY_INPUTS)),
                          only=("size", "quality", "latency"))
    q, lat = ev.quality, ev["latency"].rows[0]
    return {"artifact": path.name, "format": fmt, "quantization": mode,
            "accuracy": q.accuracy, **ev.size.to_dict(),
            **({"entity_f1": q.entity_f1} if q.entities is not None else {}),
            "agreement_with_deployed": q.parity,
            "latency_1_thread": {"runtime": lat.runtime, "p50_ms": lat.p50_ms, "p90_ms": lat.p90_ms,
                                 "delegate_applied": lat.delegate_applied}}
