"""One target's build: convert, validate on the artifacts, budgets, manifest and report, written to a staging
directory and renamed into place.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import __version__
from .builder import BuildResult, _Builder, structure_of
from .outdir import STAGING_MARKER, _replace_dir, check_out_dir, clean_stale, dir_lock
from .plan import LATENCY_INPUTS, LatencySettings, Plan, TargetPlan, _log

def build(p: Plan, quiet: bool = False, latency: LatencySettings = LatencySettings()) -> list[BuildResult]:
    b = _Builder(p, quiet, latency)
    return [_build_target(b, tp) for tp in p.targets]


def _build_target(b: _Builder, tp: TargetPlan) -> BuildResult:
    from .. import runtimes
    from ..report import write_report
    from ..validate import accuracy as acc_v
    from ..validate import budgets as bud_v
    from ..validate import latency as lat_v
    from ..validate.size import size_of_bytes

    from ..manifest import encode_correct, examples_sha256

    spec, ds, target, out = b.p.spec, b.ds, tp.target, tp.out_dir
    fmt = target.runtime.format
    model, records, k, base_key = b.run_steps(tp.steps)
    base_model = b.memo[base_key][0]
    baseline_bytes = b.convert(base_key, base_model, "float32", 0, target)
    compressed = len(tp.steps) > 1
    deployed_bytes, ptq, conversion = _convert_deployed(b, tp, k, model)
    keras_logits = model.predict(b.x_test, batch_size=256, verbose=0)
    base_keras_logits = keras_logits if base_model is model else base_model.predict(b.x_test, batch_size=256,
                                                                                    verbose=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    with dir_lock(out.parent, b.quiet):
        clean_stale(out)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-{os.getpid()}-"))
        (staging / STAGING_MARKER).touch()
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; a build directory is an ordinary directory
        files = {"baseline": staging / f"model_float32.{fmt}"}
        files["baseline"].write_bytes(baseline_bytes)
        if ptq != "float32" or compressed:
            name = f"model_{ptq}.{fmt}" if ptq != "float32" else f"model_compressed_float32.{fmt}"
            files["deployed"] = staging / name
            files["deployed"].write_bytes(deployed_bytes)
        else:
            files["deployed"] = files["baseline"]
        tok_files = b.tok.save(staging)
        (staging / "labels.txt").write_text("\n".join(ds.label_names) + "\n", encoding="utf-8")

        _log(b.quiet, f"[edgeopt] {target.name}: validating {files['deployed'].name} on {len(ds.test)} test examples")
        measured = {}
        bench_x = b.x_test[:LATENCY_INPUTS]
        opts = lat_v.grid(target.runtime.threads, target.runtime.delegates)
        for role, path in files.items():
            if role == "deployed" and path == files["baseline"]:
                measured[role] = measured["baseline"]
                continue
            sess = runtimes.load(path, runtimes.RuntimeOptions(threads=1,
                                                               xnnpack="xnnpack" in target.runtime.delegates))
            logits = sess.run(b.x_test)
            ref = base_keras_logits if role == "baseline" else keras_logits
            if logits.ndim != 2 or logits.shape[1] != ds.num_classes:
                from ..errors import ConversionError

                raise ConversionError(f"{path.name}: the exported model outputs {logits.shape[1:]} per example, not "
                                      f"{ds.num_classes} class scores. Fix: check the model's output layer.")
            measured[role] = {
                "finite": bool(np.isfinite(logits).all()),
                "accuracy": round(acc_v.accuracy(logits, b.y_test), 6),
                "parity_vs_keras": acc_v.parity(ref, logits), "logits": logits,
                "variable_tensors": sess.variable_tensors,
                "latency": lat_v.measure(path, bench_x, opts, b.latency.warmup, b.latency.iterations, b.quiet),
            }
        base, dep = measured["baseline"], measured["deployed"]
        drop = base["accuracy"] - dep["accuracy"]
        row = lat_v.pick(dep["latency"], target.runtime.threads, "xnnpack" in target.runtime.delegates)
        artifacts = []
        for role, path in files.items():
            if role == "deployed" and path == files["baseline"]:
                artifacts[0]["role"] = "deployed"
                continue
            artifacts.append({"path": path.name, "format": fmt,
                              "quantization": "float32" if role == "baseline" else ptq, "role": role,
                              **size_of_bytes(path.read_bytes())})
        dep_art = next(a for a in artifacts if a["role"] == "deployed")
        if compressed or fmt == "onnx":  # the convert step's record: the deployed file, measured above, and its
            records.append({"step": "convert", "note": f"{ptq} .{fmt} (deployed)",  # structure read back
                            "accuracy": dep["accuracy"], "size_bytes": dep_art["size_bytes"],
                            "gzip_bytes": dep_art["gzip_bytes"], **structure_of(files["deployed"])})
        cross = _cross_format(b, tp, k, model, staging, dep["logits"]) if tp.cross_format else None
        if cross:
            artifacts.append({"path": cross["artifact"], "format": cross["format"], "quantization": cross["quantization"],
                              "role": "cross_format", **{k2: cross[k2] for k2 in ("sha256", "size_bytes", "gzip_bytes")}})
        emulated = None
        if tp.emulate:
            from ..emulator.validate import validate_for_target

            emulated = validate_for_target(files["deployed"], b.x_test, b.y_test, target, spec.training.seed,
                                           cpus=list(tp.emulate), quiet=b.quiet)
        keras_finite = bool(np.isfinite(keras_logits).all() and np.isfinite(base_keras_logits).all())
        finite = {"keras model": keras_finite, files["baseline"].name: base["finite"],
                  files["deployed"].name: dep["finite"]}
        verdict = bud_v.check(target.budgets, accuracy=dep["accuracy"], accuracy_drop=drop,
                              size_bytes=dep_art["size_bytes"], latency_p90_ms=row.p90_ms if row else None,
                              export_agreement=_or_nan(base["parity_vs_keras"]["argmax_agreement"]), emulated=emulated,
                              finite=finite)
        train_rec = next(r for r in records if r["step"] in ("train", "distill", "load"))
        manifest = {
            "model": spec.name, "target": target.name, "edgeopt_version": __version__, "versions": b.versions,
            "seed": spec.training.seed,
            "model_source": {"kind": b.source.kind, "description": b.source.describe(), **b.p.facts,
                             **({"layers": _layer_rows(b, tp, ptq)} if b.source.kind != "architecture" else {})},
            "conversion": conversion,
            "recipe": {"passes": tp.pass_names, "steps": [st.describe() for st in tp.steps],
                       "convert": {"format": fmt, "quantization": ptq,
                                   "batch": 1 if fmt == "tflite" else "dynamic",
                                   "representative_samples": tp.representative_samples if ptq == "int8" else 0,
                                   **({"opset": target.onnx_settings.opset,
                                       "ort_quantization": target.onnx_settings.quant.model_dump()}
                                      if fmt == "onnx" else {})}},
            "passes": records,
            "spec": spec.model_dump(mode="json"), "target_profile": target.model_dump(mode="json"),
            "data": {"dataset": ds.name, "labels": len(ds.label_names), **ds.provenance},
            "tokenizer": b.tok.config(),
            "training": {k2: train_rec.get(k2) for k2 in ("epochs_run", "best_epoch", "best_dev_accuracy", "seconds")},
            "artifacts": artifacts + [{"path": f.name, "format": f.suffix.lstrip("."), **size_of_bytes(f.read_bytes())}
                                      for f in tok_files + [staging / "labels.txt"]],
            "metrics": {
                "keras_accuracy": round(acc_v.accuracy(keras_logits, b.y_test), 6),
                "baseline": {"artifact": files["baseline"].name, "accuracy": base["accuracy"],
                             "parity_vs_keras": base["parity_vs_keras"],
                             "latency": [s.to_dict() for s in base["latency"]]},
                "artifact": files["deployed"].name, "accuracy": dep["accuracy"], "accuracy_drop": round(drop, 6),
                "test_examples": len(ds.test),
                "finite_outputs": all(finite.values()),
                "correct": encode_correct(dep["logits"].argmax(1) == b.y_test),
                "examples_sha256": examples_sha256(b.x_test, b.y_test),
                "variable_tensors": dep["variable_tensors"],
                "parity_vs_keras": dep["parity_vs_keras"],
                "parity_vs_baseline": acc_v.parity(base["logits"], dep["logits"]),
                "size": {k2: dep_art[k2] for k2 in ("size_bytes", "gzip_bytes")},
                "size_ratio_vs_float32": {
                    "raw": round(artifacts[0]["size_bytes"] / dep_art["size_bytes"], 3),
                    "gzip": round(artifacts[0]["gzip_bytes"] / dep_art["gzip_bytes"], 3)},
                "latency": [s.to_dict() for s in dep["latency"]],
                "latency_budget_row": {"threads": target.runtime.threads,
                                       "xnnpack": "xnnpack" in target.runtime.delegates},
                "latency_note": "measured on the build machine (see 'machine'), not on the target device",
                **({"cross_format": cross} if cross else {}),
            },
            **({"emulator": emulated} if emulated else {}),
            "budgets": verdict,
            "build_seconds": round(time.perf_counter() - b.t_start, 1),
        }
        from ..manifest import dump_manifest

        manifest = dump_manifest(staging / "manifest.json", manifest)
        write_report(staging / "report.md", manifest)
        (staging / STAGING_MARKER).unlink()
        with dir_lock(out.parent, b.quiet):
            check_out_dir(out, tp.force)  # again: it may have changed while this build ran
            _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fails = bud_v.failures(verdict)
    _log(b.quiet, f"[edgeopt] {target.name}: {files['deployed'].name} accuracy {dep['accuracy']:.4f} (float32 "
                  f"{base['accuracy']:.4f}), {dep_art['size_bytes']:,} B; budgets "
                  f"{'PASSED' if verdict['passed'] else 'FAILED'} -> {out}")
    return BuildResult(out, manifest, verdict["passed"], fails)


def _convert_deployed(b: _Builder, tp: TargetPlan, k: str, model) -> tuple[bytes, str, dict]:
    """The deployed conversion: the plan's quantization, then the target's ``fallback`` modes in order. A converter
    that fails or crashes is an outcome, recorded (mode, signal or error, the model's layer types); with nothing
    left to try it is one line, exit 2, naming the fix. Returns (bytes, deployed mode, record)."""
    from ..convert.tflite import ConverterCrash
    from ..errors import ConversionError
    from ..source import layer_types_of

    chain = [tp.ptq, *[m for m in tp.target.fallback if m != tp.ptq]]
    attempts = []
    for mode in chain:
        try:
            data = b.convert(k, model, mode, tp.representative_samples, tp.target)
        except (ConverterCrash, ConversionError) as e:
            crash = isinstance(e, ConverterCrash)
            rec = {"mode": mode, "outcome": "crashed" if crash else "failed",
                   "error": e.how if crash else str(e).split(". Fix:")[0],
                   "layer_types": sorted(layer_types_of(model))}
            attempts.append(rec)
            _log(b.quiet, f"[edgeopt] {tp.target.name}: converting {mode} {rec['outcome']} ({rec['error']})"
                          + (f"; falling back to {chain[len(attempts)]}" if len(attempts) < len(chain) else ""))
            continue
        attempts.append({"mode": mode, "outcome": "converted"})
        return data, mode, {"asked": tp.ptq, "deployed": mode, "attempts": attempts,
                            "fell_back": mode != tp.ptq}
    last = attempts[-1]
    tried = ", ".join(f"{a['mode']} {a['outcome']} ({a['error']})" for a in attempts)
    raise ConversionError(f"{tp.target.name}: no conversion of {b.p.spec.name} succeeded: {tried}; layer types "
                          f"{', '.join(last['layer_types'])}. Fix: add a fallback to the target (e.g. fallback: "
                          f"[dynamic, float32]) or choose another quantization with --ptq.")


def _layer_rows(b: _Builder, tp: TargetPlan, ptq: str) -> list[dict]:
    from .layer_table import layer_rows

    return layer_rows(b.source.model, tp.steps, ptq, tp.target)


def _or_nan(x):
    return float("nan") if x is None else x


def _cross_format(b: _Builder, tp: TargetPlan, k: str, model, staging: Path, deployed_logits) -> dict:
    """Export the other format from the same weights (same quantization where it exists there) and compare."""
    from .. import runtimes
    from ..specs import OnnxSpec, RuntimeSpec
    from ..validate.accuracy import accuracy, parity
    from ..validate.size import size_of_bytes

    t = tp.target
    if t.runtime.format == "tflite":
        other = t.model_copy(update={"runtime": RuntimeSpec(name="onnxruntime", format="onnx", threads=1, delegates=()),
                                     "onnx": OnnxSpec()})
        mode = "float32" if tp.ptq == "float16" else tp.ptq  # ONNX has no float16 weight-only mode here
    else:
        other, mode = None, tp.ptq
    fmt = "onnx" if other is not None else "tflite"
    data = b.convert(k, model, mode, tp.representative_samples, other)
    path = staging / f"model_{mode}.{fmt}"
    path.write_bytes(data)
    sess = runtimes.load(path, runtimes.RuntimeOptions(threads=1, xnnpack=True))
    logits = sess.run(b.x_test)
    lat = sess.benchmark(b.x_test[:LATENCY_INPUTS], warmup=b.latency.warmup, iterations=b.latency.iterations)
    return {"artifact": path.name, "format": fmt, "quantization": mode,
            "accuracy": round(accuracy(logits, b.y_test), 6), **size_of_bytes(data),
            "agreement_with_deployed": parity(deployed_logits, logits),
            "latency_1_thread": {"runtime": lat.runtime, "p50_ms": lat.p50_ms, "p90_ms": lat.p90_ms,
                                 "delegate_applied": lat.delegate_applied}}
