"""One target's build: convert, validate on the artifacts, budgets, manifest and report, written to a staging
directory and renamed into place.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..console import log
from .._version import __version__
from ..data.tokenizer import GOLDEN, write_golden
from .builder import BuildResult, BuildSession, structure_of
from .outdir import STAGING_MARKER, replace_dir, check_out_dir, clean_stale, dir_lock
from .plan import LATENCY_INPUTS, LatencySettings, Plan, TargetPlan

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
    conversion: dict
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
    with dir_lock(out.parent, b.quiet):
        clean_stale(out)
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-{os.getpid()}-"))
        (staging / STAGING_MARKER).touch()
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; a build directory is an ordinary directory
        files, side_files = _write_files(b, tp, run, staging)
        measured = _measure(b, tp, run, files)
        artifacts, cross = _artifact_records(b, tp, run, files, measured, staging)
        emulated = None
        if tp.emulate:
            from ..emulator.validate import validate_for_target

            emulated = validate_for_target(files["deployed"], b.x_test, b.y_test, tp.target, b.p.spec.training.seed,
                                           cpus=list(tp.emulate), quiet=b.quiet)
        counted = None
        if tp.counts_separately:
            from ..emulator.validate import count_for_target

            counted = count_for_target(files["deployed"], b.x_test, tp.count, b.quiet)
        device_latency = None
        if tp.remote is not None:
            from .. import remote

            log(b.quiet, f"[edgeopt] {tp.target.name}: measuring {files['deployed'].name} on the board "
                          f"{tp.remote.url}")
            rt = tp.target.runtime
            device_latency = remote.bench(tp.remote, files["deployed"], b.x_test[:LATENCY_INPUTS], rt.threads,
                                          "xnnpack" in rt.delegates, b.latency.warmup, b.latency.iterations,
                                          arch=tp.target.device.arch,
                                          where=f"{tp.target.source or tp.target.name}: device.remote")
        clients = _clients(b, tp, files, measured)
        gpu = _gpu(b, tp, files, measured)
        cost = _device_cost(tp, emulated, counted)
        verdict = _verdict(tp, run, files, measured, artifacts, emulated, clients, cost, device_latency, gpu)
        manifest = _manifest(b, tp, run, files, measured, artifacts, cross, side_files, emulated, verdict, clients,
                             cost, device_latency, gpu)
        manifest = dump_manifest(staging / "manifest.json", manifest)
        write_report(staging / "report.md", manifest)
        (staging / STAGING_MARKER).unlink()
        with dir_lock(out.parent, b.quiet):
            check_out_dir(out, tp.force)  # again: it may have changed while this build ran
            replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    dep = measured["deployed"]
    if b.tagging:
        log(b.quiet, f"[edgeopt] {tp.target.name}: {files['deployed'].name} entity F1 "
                      f"{dep['entities']['micro']['f1']:.4f} (float32 {measured['baseline']['entities']['micro']['f1']:.4f})")
    log(b.quiet, f"[edgeopt] {tp.target.name}: {files['deployed'].name} accuracy {dep['accuracy']:.4f} (float32 "
                  f"{measured['baseline']['accuracy']:.4f}), {manifest['metrics']['size']['size_bytes']:,} B; budgets "
                  f"{'PASSED' if verdict['passed'] else 'FAILED'} -> {out}")
    return BuildResult(out, manifest, verdict["passed"], bud_v.failures(verdict))


def _convert(b: BuildSession, tp: TargetPlan) -> _Run:
    """Run (or fetch) the passes, convert the uncompressed model (the float32 baseline) and the final one (the
    deployed file, with fallbacks), and the Keras outputs both are compared with."""
    model, records, k, base_key = b.run_steps(tp.steps)
    base_model = b.memo[base_key][0]
    baseline_bytes = b.convert(base_key, base_model, "float32", 0, tp.target)
    deployed_bytes, ptq, conversion = _convert_deployed(b, tp, k, model)
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
    if fmt == "tflite" and not b.tagging:  # MediaPipe's writer describes a text classifier's one score row
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
            "client_ready": mp.client_compatible(b.tok)}


def _measure(b: BuildSession, tp: TargetPlan, run: _Run, files: dict) -> dict:
    """Each model file run over the whole test split (accuracy, parity with its Keras model, finiteness) and its
    latency grid."""
    from .. import runtimes
    from ..errors import ConversionError
    from ..validate import accuracy as acc_v
    from ..validate import latency as lat_v
    from ..validate.classes import per_class

    target, n_cls = tp.target, b.ds.num_classes
    log(b.quiet, f"[edgeopt] {target.name}: validating {files['deployed'].name} on {len(b.ds.test)} test examples")
    measured = {}
    opts = lat_v.grid(target.runtime.threads, target.runtime.delegates)
    for role, path in files.items():
        if role == "deployed" and path == files["baseline"]:
            measured[role] = measured["baseline"]
            continue
        sess = runtimes.load(path, runtimes.RuntimeOptions(threads=1, xnnpack="xnnpack" in target.runtime.delegates))
        logits = sess.run(b.x_test)
        ref = run.base_keras_logits if role == "baseline" else run.keras_logits
        want = (b.tok.seq_len, n_cls) if b.tagging else (n_cls,)
        if logits.shape[1:] != want:
            raise ConversionError(f"{path.name}: the exported model outputs {logits.shape[1:]} per example, not "
                                  f"{want} ({'tag scores per token' if b.tagging else 'class scores'}). Fix: check "
                                  f"the model's output layer.")
        # a tagger's accuracy, per-class figures and parity are over its real tokens (padding left out)
        flat, y = b.real(logits, b.y_test)
        measured[role] = {
            "finite": bool(np.isfinite(logits).all()),
            "accuracy": round(acc_v.accuracy(flat, y), 6),
            "per_class": per_class(flat.argmax(1), y, b.ds.label_names),
            **({"entities": b.entities(logits)} if b.tagging else {}),
            "parity_vs_keras": acc_v.parity(b.real(ref, b.y_test)[0], flat), "logits": logits,
            "variable_tensors": sess.variable_tensors,
            "latency": lat_v.measure(path, b.x_test[:LATENCY_INPUTS], opts, b.latency.warmup, b.latency.iterations,
                                     b.quiet),
        }
    return measured


def _artifact_records(b: BuildSession, tp: TargetPlan, run: _Run, files: dict, measured: dict,
                      staging: Path) -> tuple[list, dict | None]:
    """The model files' records (sizes, hashes), the cross-format export's when asked; appends the convert step's
    record (the deployed file's accuracy and structure, read back) to the passes."""
    from ..validate.size import size_of_bytes

    fmt = tp.target.runtime.format
    artifacts = []
    for role, path in files.items():
        if role == "deployed" and path == files["baseline"]:
            artifacts[0]["role"] = "deployed"
            continue
        artifacts.append({"path": path.name, "format": fmt,
                          "quantization": "float32" if role == "baseline" else run.ptq, "role": role,
                          **size_of_bytes(path.read_bytes())})
    dep_art = next(a for a in artifacts if a["role"] == "deployed")
    if len(tp.steps) > 1 or fmt == "onnx":
        run.records.append({"step": "convert", "note": f"{run.ptq} .{fmt} (deployed)",
                            "accuracy": measured["deployed"]["accuracy"], "size_bytes": dep_art["size_bytes"],
                            **({"entity_f1": measured["deployed"]["entities"]["micro"]["f1"]}
                               if "entities" in measured["deployed"] else {}),
                            "gzip_bytes": dep_art["gzip_bytes"], **structure_of(files["deployed"])})
    cross = None
    if tp.cross_format:
        cross = _cross_format(b, tp, run.key, run.model, staging, measured["deployed"]["logits"])
        artifacts.append({"path": cross["artifact"], "format": cross["format"], "quantization": cross["quantization"],
                          "role": "cross_format",
                          **{k: cross[k] for k in ("sha256", "size_bytes", "gzip_bytes")}})
    return artifacts, cross


def _clients(b: BuildSession, tp: TargetPlan, files: dict, measured: dict) -> list:
    """The target's declared clients run on the deployed file over the test split."""
    from ..clients import mediapipe as mp

    out = []
    if b.tagging:  # MediaPipe's TextClassifier takes one score row per text, a tagger gives one per token
        if tp.target.clients:
            log(b.quiet, f"[edgeopt] {tp.target.name}: clients {', '.join(tp.target.clients)} not run: they "
                          f"classify sentences, and this model tags tokens")
        return out
    if "mediapipe" in tp.target.clients and tp.target.runtime.format == "tflite":
        out.append(mp.check(files["deployed"], b.ds.test.texts, b.y_test, measured["deployed"]["logits"],
                            b.ds.label_names, b.tok, b.quiet))
    return out


def _gpu(b: BuildSession, tp: TargetPlan, files: dict, measured: dict) -> dict | None:
    """GPU targets: the deployed file through LiteRT's GPU accelerator (with CPU fallback) over the test split (or
    gpu.sample of it): the adapter, the partition, accuracy and deviation from the CPU run at fp16 and fp32."""
    if not tp.target.uses_gpu:
        return None
    from ..emulator.validate import sample_indices
    from ..gpu import run as gpu_run

    t = tp.target
    idx = sample_indices(len(b.x_test), t.gpu.sample, b.p.spec.training.seed)
    log(b.quiet, f"[edgeopt] {t.name}: running {files['deployed'].name} through LiteRT's GPU accelerator on "
                  f"{len(idx)} test examples")
    res = gpu_run.check(files["deployed"], b.x_test[idx], measured["deployed"]["logits"][idx], b.y_test[idx])
    res["export"] = {"flat_lookup": t.flat_lookup}
    if res["available"]:
        res["cpu_accuracy"] = round(float((measured["deployed"]["logits"][idx].argmax(1) == b.y_test[idx]).mean()), 6)
        pt = res["partition"]
        log(b.quiet, f"[edgeopt] {t.name}: GPU {res['adapter']['name']}{' (software)' if res['software'] else ''}: "
                      f"{pt['gpu_ops']} of {pt['total_ops']} ops on the GPU"
                      + (", fully delegated" if pt["fully_delegated"] else
                         f", refused: {'; '.join(r['op'] + ': ' + r['reason'] for r in pt['refused']) or 'none'}")
                      + f"; accuracy through the GPU {res['fp16'].get('accuracy')} (CPU {res['cpu_accuracy']})")
    else:
        log(b.quiet, f"[edgeopt] {t.name}: GPU not run: {res['reason']}")
    return res


def _verdict(tp: TargetPlan, run: _Run, files: dict, measured: dict, artifacts: list, emulated, clients,
             cost: dict | None, device_latency: dict | None, gpu: dict | None = None) -> dict:
    from ..validate import budgets as bud_v
    from ..validate import latency as lat_v

    base, dep = measured["baseline"], measured["deployed"]
    rt = tp.target.runtime
    cost = cost or {}
    row = lat_v.pick(dep["latency"], rt.threads, "xnnpack" in rt.delegates)
    finite = {"keras model": bool(np.isfinite(run.keras_logits).all() and np.isfinite(run.base_keras_logits).all()),
              files["baseline"].name: base["finite"], files["deployed"].name: dep["finite"]}
    dep_art = next(a for a in artifacts if a["role"] == "deployed")
    return bud_v.check(tp.target.budgets, accuracy=dep["accuracy"], accuracy_drop=base["accuracy"] - dep["accuracy"],
                       size_bytes=dep_art["size_bytes"], latency_p90_ms=row.p90_ms if row else None,
                       export_agreement=_or_nan(base["parity_vs_keras"]["argmax_agreement"]), emulated=emulated,
                       finite=finite, macro_f1=dep["per_class"]["macro_f1"],
                       macro_f1_drop=base["per_class"]["macro_f1"] - dep["per_class"]["macro_f1"], clients=clients,
                       entity_f1=dep["entities"]["micro"]["f1"] if "entities" in dep else None,
                       entity_f1_drop=(base["entities"]["micro"]["f1"] - dep["entities"]["micro"]["f1"]
                                       if "entities" in dep else None),
                       instructions=cost.get("instructions_per_inference"),
                       instructions_cpu=cost.get("cpu", tp.target.device.qemu_cpu),
                       estimated_latency_ms=cost.get("estimated_latency_ms"), device_latency=device_latency, gpu=gpu)


def _device_cost(tp: TargetPlan, emulated, counted: dict | None) -> dict | None:
    """The device's own cost signal: instructions per inference at the target's XNNPACK setting, on
    device.qemu_cpu (the emulated run of that CPU, or a count of its own) or on x86 under callgrind, and, where the
    target declares a cost model, the estimated latency it gives (an estimate, with its source, in fields of its
    own)."""
    from ..emulator import counter
    from ..emulator.validate import pick_count

    t = tp.target
    xnn = "xnnpack" in t.runtime.delegates
    if counted is not None:
        cpu, counts = counted["cpu"], counted["instructions"]
    else:  # the emulated validation's row for the target's own CPU
        cpu = t.device.qemu_cpu
        counts = next((c for c in (emulated or {}).get("cpus", []) if c["cpu"] == cpu), {}).get("instructions")
    if counts is None:
        return None
    ins = pick_count(counts, xnn)
    x86 = cpu == "x86"
    out = {"cpu": cpu, "counter": counter.X86_COUNTER if x86 else counter.QEMU_COUNTER,
           "xnnpack": xnn if t.runtime.name == "litert" else None, "instructions_per_inference": ins, "counts": counts,
           "label": ("x86 instructions per inference (valgrind callgrind, AVX2)" if x86 else
                     f"emulated instructions per inference ({cpu})"),
           "note": counter.X86_NOTE if x86 else counter.QEMU_NOTE}
    if counts.get("error"):
        out["error"] = counts["error"]
    cm = t.device.cost_model
    if cm is not None and ins is not None:
        out.update(estimated_latency_ms=round(cm.estimate_ms(ins), 4), estimate_rate_instructions_per_ns=cm.rate_per_ns,
                   estimate_source=cm.source, estimate_note="an ESTIMATE: instructions / the cost model's rate; not "
                                                            "measured on the device")
    return out


def _manifest(b: BuildSession, tp: TargetPlan, run: _Run, files: dict, measured: dict, artifacts: list, cross,
              side_files: list, emulated, verdict: dict, clients: list, cost: dict | None,
              device_latency: dict | None, gpu: dict | None = None) -> dict:
    from ..manifest import encode_correct, encode_predictions, examples_sha256
    from ..validate import accuracy as acc_v
    from ..validate.size import size_of_bytes

    spec, ds, target, ptq = b.p.spec, b.ds, tp.target, run.ptq
    fmt = target.runtime.format
    base, dep = measured["baseline"], measured["deployed"]
    dep_art = next(a for a in artifacts if a["role"] == "deployed")
    train_rec = next(r for r in run.records if r["step"] in ("train", "distill", "load"))
    dep_rows, y_rows = b.real(dep["logits"], b.y_test)  # a tagger's real tokens
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
        "training": {**{k: train_rec.get(k) for k in ("epochs_run", "best_epoch", "best_dev_accuracy", "seconds")},
                     **({k: train_rec.get(k) for k in ("best_dev_entity_f1", "outside_shift")} if b.tagging else {})},
        "artifacts": artifacts + [{"path": f.name, "format": f.suffix.lstrip("."), **size_of_bytes(f.read_bytes())}
                                  for f in side_files],
        "metrics": {
            "keras_accuracy": round(acc_v.accuracy(*b.real(run.keras_logits, b.y_test)), 6),
            **(_entity_metrics(b, base, dep) if b.tagging else {}),
            "baseline": {"artifact": files["baseline"].name, "accuracy": base["accuracy"],
                         "parity_vs_keras": base["parity_vs_keras"],
                         "latency": [s.to_dict() for s in base["latency"]]},
            "artifact": files["deployed"].name, "accuracy": dep["accuracy"],
            "accuracy_drop": round(base["accuracy"] - dep["accuracy"], 6),
            "macro_f1": dep["per_class"]["macro_f1"], "baseline_macro_f1": base["per_class"]["macro_f1"],
            "macro_f1_drop": round(base["per_class"]["macro_f1"] - dep["per_class"]["macro_f1"], 6),
            "per_class": dep["per_class"], "baseline_per_class": base["per_class"],
            "test_examples": len(ds.test),
            "finite_outputs": all(c["passed"] for c in verdict["checks"] if c["name"] == "finite_outputs"),
            "correct": encode_correct(dep_rows.argmax(1) == y_rows),
            "predictions": encode_predictions(dep_rows.argmax(1)),
            "examples_sha256": examples_sha256(b.x_test, b.y_test),
            "variable_tensors": dep["variable_tensors"],
            "parity_vs_keras": dep["parity_vs_keras"],
            "parity_vs_baseline": acc_v.parity(b.real(base["logits"], b.y_test)[0], dep_rows),
            "size": {k: dep_art[k] for k in ("size_bytes", "gzip_bytes")},
            "size_ratio_vs_float32": {"raw": round(artifacts[0]["size_bytes"] / dep_art["size_bytes"], 3),
                                      "gzip": round(artifacts[0]["gzip_bytes"] / dep_art["gzip_bytes"], 3)},
            "latency": [s.to_dict() for s in dep["latency"]],
            "latency_budget_row": {"threads": target.runtime.threads, "xnnpack": "xnnpack" in target.runtime.delegates},
            "latency_note": "measured on the build machine (see 'machine'), not on the target device",
            **({"cross_format": cross} if cross else {}),
        },
        **({"emulator": emulated} if emulated else {}),
        **({"device_cost": cost} if cost else {}),
        **({"device_latency": device_latency} if device_latency else {}),
        **({"metadata": run.metadata} if run.metadata else {}),
        **({"clients": clients} if clients else {}),
        **({"gpu": gpu} if gpu else {}),
        "budgets": verdict,
        "build_seconds": round(time.perf_counter() - b.t_start, 1),
    }


def _entity_metrics(b: BuildSession, base: dict, dep: dict) -> dict:
    """A tagger's headline figures: entity precision, recall and F1 (strict spans, micro and per type) of the
    deployed and the float32 artifact over the whole test split; accuracy, per-class figures and parity are per
    real token and secondary."""
    return {"entity_f1": dep["entities"]["micro"]["f1"], "baseline_entity_f1": base["entities"]["micro"]["f1"],
            "entity_f1_drop": round(base["entities"]["micro"]["f1"] - dep["entities"]["micro"]["f1"], 6),
            "entities": dep["entities"], "baseline_entities": base["entities"], "truncation": b.truncation(),
            "accuracy_unit": "real tokens (padding excluded); entity_f1 is the headline"}


def _convert_deployed(b: BuildSession, tp: TargetPlan, k: str, model) -> tuple[bytes, str, dict]:
    """The deployed conversion: the plan's quantization, then the target's ``fallback`` modes in order. A converter
    that fails or crashes is an outcome, recorded (mode, signal or error, the model's layer types); with nothing
    left to try it is one line, exit 2, naming the fix. Returns (bytes, deployed mode, record)."""
    from ..errors import ConversionError, ConverterCrash
    from ..sources import layer_types_of

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
            log(b.quiet, f"[edgeopt] {tp.target.name}: converting {mode} {rec['outcome']} ({rec['error']})"
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


def _layer_rows(b: BuildSession, tp: TargetPlan, ptq: str) -> list[dict]:
    from .layer_table import layer_rows

    return layer_rows(b.source.model, tp.steps, ptq, tp.target)


def _or_nan(x):
    return float("nan") if x is None else x


def _cross_format(b: BuildSession, tp: TargetPlan, k: str, model, staging: Path, deployed_logits) -> dict:
    """Export the other format from the same weights (same quantization where it exists there) and compare."""
    from .. import runtimes
    from ..specs import OnnxSpec, RuntimeSpec
    from ..validate.accuracy import accuracy, parity
    from ..validate.size import size_of_bytes

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
    sess = runtimes.load(path, runtimes.RuntimeOptions(threads=1, xnnpack=True))
    logits = sess.run(b.x_test)
    lat = sess.benchmark(b.x_test[:LATENCY_INPUTS], warmup=b.latency.warmup, iterations=b.latency.iterations)
    flat, y = b.real(logits, b.y_test)  # a tagger: per real token
    return {"artifact": path.name, "format": fmt, "quantization": mode,
            "accuracy": round(accuracy(flat, y), 6), **size_of_bytes(data),
            **({"entity_f1": b.entities(logits)["micro"]["f1"]} if b.tagging else {}),
            "agreement_with_deployed": parity(b.real(deployed_logits, b.y_test)[0], flat),
            "latency_1_thread": {"runtime": lat.runtime, "p50_ms": lat.p50_ms, "p90_ms": lat.p90_ms,
                                 "delegate_applied": lat.delegate_applied}}
