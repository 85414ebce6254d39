"""`edgeopt build`: plan, run the passes, convert and validate for each target (edgeopt/pipeline)."""
from __future__ import annotations

import sys

import click

from ..errors import EXIT_BUDGET
from .common import dump, handle_errors, latency_options, main, model_file_options, own_data_options, own_data_spec


@main.command()
@click.argument("model", required=False, default=None)
@click.option("--target", "-t", "targets", multiple=True, default=("pixel-7",), show_default=True,
              help="Target profile name or YAML path; repeat for several targets.")
@click.option("--out", "-o", default=None,
              help="Build directory (default build/<model>/<target>; with several targets, OUT/<target>).")
@click.option("--ptq", type=click.Choice(["float32", "dynamic", "int8", "float16", "int16x8"]), default=None,
              help="Override the target's post-training quantization.")
@click.option("--recipe", type=str, default=None, help="Recipe YAML (passes + ptq); overrides the target's recipe.")
@click.option("--prune", "prune_sparsity", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Add magnitude pruning to this final sparsity (e.g. 0.75).")
@click.option("--prune-schedule", type=click.Choice(["polynomial", "constant"]), default=None,
              help="Pruning schedule (default polynomial).")
@click.option("--prune-structure", type=click.Choice(["2:4"]), default=None,
              help="Structured m-by-n sparsity (2 of every 4 consecutive weights zero), in Dense layers (TFMOT "
                   "structures 2-D kernels only).")
@click.option("--cluster", "clusters", type=click.IntRange(2, 256), default=None,
              help="Add weight clustering to N clusters per layer.")
@click.option("--cluster-init", type=click.Choice(["kmeans++", "linear", "density", "random"]), default=None,
              help="Centroid initialization (default kmeans++).")
@click.option("--qat", is_flag=True, help="Add quantization-aware training (the planner picks PQAT/CQAT/PCQAT).")
@click.option("--self-distill", is_flag=True,
              help="Fine-tune each of --prune/--cluster/--qat against its input model's outputs as well as the labels "
                   "(alpha 0.9, temperature 2; a recipe file sets them per pass).")
@click.option("--distill", "teacher", default=None, help="Train the student against this teacher: a ModelSpec (name or YAML), all-MiniLM-L6-v2 (frozen encoder + linear head), or an ONNX text classifier (FILE.onnx, its tokenizer.json and config.json beside it).")
@click.option("--augment", "augment", type=click.IntRange(0, 100), default=None,
              help="With --distill: a transfer set of N augmented copies of each training text (masking, nearest-word "
                   "replacement, n-gram cuts; Tang et al. 2019) that the student learns from the teacher's outputs.")
@click.option("--unlabeled", "unlabeled", type=click.Path(dir_okay=False), default=None,
              help="With --distill: unlabeled in-domain texts (UTF-8, one a line) the teacher labels for the student.")
@click.option("--fine-tune-teacher", is_flag=True,
              help="With --distill all-MiniLM-L6-v2: fine-tune the encoder end to end on the task first (cached).")
@click.option("--no-cache", is_flag=True, help="Recompute every pass instead of reusing cached outputs.")
@click.option("--format", "formats", type=click.Choice(["target", "both"]), default="target", show_default=True,
              help="'both': also export the other format (TFLite/ONNX) from the same weights and report their "
                   "agreement and accuracies side by side.")
@click.option("--emulate", is_flag=True,
              help="Also run each arm64 target's deployed artifact under qemu on its CPU model(s): load, XNNPACK, "
                   "accuracy and parity with the host; a failure fails the build (exit 3). Needs `edgeopt emulator "
                   "setup`.")
@click.option("--count/--no-count", "count", default=None,
              help="Count instructions per inference of the deployed file on the target's CPU (qemu -cpu "
                   "device.qemu_cpu for arm64, valgrind's callgrind for x86; a few seconds to a minute). Default: "
                   "when the target's budgets or cost model are about instructions.")
@click.option("--on-device", is_flag=True,
              help="Also measure the deployed file's latency on the target's board (device.remote, over SSH): the "
                   "only figures reported as device latency.")
@click.option("--fallback", "fallback", multiple=True, type=click.Choice(["float32", "dynamic", "int8", "float16", "int16x8"]),
              help="Quantization to deploy instead when the converter fails or crashes (repeatable, tried in order; "
                   "replaces the target's fallback list).")
@click.option("--fit-size", is_flag=True,
              help="Size a built-in architecture to the targets' max_size_bytes before training: the largest "
                   "vocabulary cap and embedding width whose file (the untrained model converted as the target "
                   "converts) fits; the size budget checks the trained file after.")
@model_file_options
@own_data_options
@click.option("--force", is_flag=True,
              help="Replace --out even when it is not an edgeopt build (it is deleted). Never the current directory, "
                   "a directory holding it, home or /.")
@click.option("--dry-run", is_flag=True, help="Print the resolved plan and exit without training.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest(s) (or the plan) as JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--verbose", "-v", is_flag=True, help="More detail: every latency configuration, native log lines.")
@latency_options
@handle_errors
def build(model, targets, out, ptq, recipe, prune_sparsity, prune_schedule, prune_structure, clusters, cluster_init,
          qat, self_distill, teacher, augment, unlabeled, fine_tune_teacher, no_cache, formats, emulate, count, on_device, fallback, fit_size, data, vocab, hf_tokenizer, pad_token, unk_token, fit, trust_model_code,
          custom_module, labels, csv_train, csv_dev, csv_test, text_column, label_column, arch, spec_name, force, dry_run, as_json, quiet, verbose, latency_warmup,
          latency_iterations):
    """Build MODEL for each --target. MODEL: a built-in name, a ModelSpec YAML, or a Keras model file (.keras,
    .h5, a SavedModel directory) with --data.

    Exit code 0 when every budget passes, 3 when any budget fails, 2 for bad input.
    """
    import math
    import os

    if verbose:
        os.environ["EDGEOPT_VERBOSE"] = "1"

    from pydantic import ValidationError

    from ..errors import InputError
    from ..pipeline import plan

    if prune_sparsity is not None and not math.isfinite(prune_sparsity):
        raise InputError(f"--prune {prune_sparsity}: not a number. Fix: give a sparsity between 0 and 1, e.g. 0.75.")
    if prune_schedule and prune_sparsity is None and not prune_structure:
        raise InputError("--prune-schedule needs --prune SPARSITY. Fix: add --prune 0.5.")
    if cluster_init and clusters is None:
        raise InputError("--cluster-init needs --cluster N. Fix: add --cluster 16.")
    try:
        passes = _flag_passes(teacher, prune_sparsity, prune_schedule, prune_structure, clusters, cluster_init, qat,
                              self_distill, augment, unlabeled, fine_tune_teacher)
    except ValidationError as e:
        err = e.errors()[0]
        raise InputError(f"command-line pass setting '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}. Fix: "
                         f"correct the flag.") from None
    from ..registry import model_from_args

    spec = own_data_spec(model, csv_train, csv_dev, csv_test, text_column, label_column, arch, spec_name) or \
        model_from_args(model or "banking77-cnn", data=data, vocab=vocab, hf_tokenizer=hf_tokenizer, fit=fit,
                           trust_model_code=trust_model_code, custom_module=custom_module, labels=labels,
                        pad_token=pad_token, unk_token=unk_token)
    p = plan(spec, list(targets), out=out, ptq=ptq, recipe=recipe, passes=passes, use_cache=not no_cache,
             formats=formats, emulate=emulate, force=force, fallback=fallback, count=count,
             on_device=on_device, fit_size=fit_size)
    _run_build(p, dry_run, as_json, quiet, latency_warmup, latency_iterations)


def _flag_passes(teacher, prune_sparsity, prune_schedule, prune_structure, clusters, cluster_init, qat,
                 self_distill=False, augment=None, unlabeled=None, fine_tune_teacher=False) -> dict:
    from ..errors import InputError
    from ..recipe import (ClusterConfig, DistillConfig, PruneConfig, QATConfig, SelfDistill, TeacherFineTune,
                          TransferConfig)

    given = [f for f, v in (("--augment", augment is not None), ("--unlabeled", unlabeled),
                            ("--fine-tune-teacher", fine_tune_teacher)) if v]
    if given and not teacher:
        raise InputError(f"{given[0]} needs --distill TEACHER. Fix: add --distill all-MiniLM-L6-v2 (or a teacher "
                         f"spec).")

    if self_distill and prune_sparsity is None and not prune_structure and clusters is None and not qat:
        raise InputError("--self-distill needs a fine-tuning pass. Fix: add --prune, --cluster or --qat (or set "
                         "self_distill in a --recipe file's passes).")
    sd = {"self_distill": SelfDistill()} if self_distill else {}
    passes = {}
    if teacher:
        kw = {}
        if augment is not None or unlabeled:
            kw["transfer"] = TransferConfig(copies=augment if augment is not None else 0, unlabeled=unlabeled)
        if fine_tune_teacher:
            kw["fine_tune_teacher"] = TeacherFineTune()
        passes["distill"] = DistillConfig(teacher=teacher, **kw)
    if prune_sparsity is not None or prune_structure:
        kw = {"sparsity": prune_sparsity or 0.5, "schedule": prune_schedule or "polynomial"}
        if prune_structure:
            kw["m_by_n"] = tuple(int(v) for v in prune_structure.split(":"))
            kw["sparsity"] = kw["m_by_n"][0] / kw["m_by_n"][1]
        passes["prune"] = PruneConfig(**kw, **sd)
    if clusters is not None:
        passes["cluster"] = ClusterConfig(clusters=clusters, init=cluster_init or "kmeans++", **sd)
    if qat:
        passes["qat"] = QATConfig(**sd)
    return passes


def _run_build(p, dry_run, as_json, quiet, latency_warmup, latency_iterations):
    from ..pipeline import LatencySettings
    from ..pipeline import build as run_build

    if dry_run:
        from ..pipeline.prepare import open_inputs

        open_inputs(p.spec, p.source)  # every file the build would read, read now: a bad one fails the plan, not the build
        dump(p.to_dict()) if as_json else click.echo(p.describe())
        return
    results = run_build(p, quiet=quiet, latency=LatencySettings(latency_warmup, latency_iterations))
    if as_json:
        dump([r.record for r in results] if len(results) > 1 else results[0].record)
    elif not quiet:
        summary_table(results)
        for r in results:
            for c in r.record.get("clients") or []:
                from ..report import client_line

                click.echo("  " + client_line(c))
            if "emulator" in r.record:
                from ..emulator.validate import format_table as emu_table

                click.echo(emu_table(r.record["emulator"]))
    failed = [r for r in results if not r.passed]
    for r in failed:
        for f in r.failures:
            click.echo(f"edgeopt: budget failed for {r.record['target']}: {f}", err=True)
    if failed:
        sys.exit(EXIT_BUDGET)


def summary_table(results) -> None:
    """The end of a build on the console: one row per target with its verdict, quality, size, the device's cost
    signal and the build machine's latency (labelled as such), the budgets it failed, and where the report is."""
    import shutil

    from rich.console import Console
    from rich.table import Table

    from .. import writer as w

    t = Table(title="edgeopt build", title_justify="left", show_lines=False, pad_edge=False, expand=False)
    for col in ("target", "verdict", "test quality (float32)", "size", "device cost", "host p50, 1 thread",
                "budgets"):
        t.add_column(col, overflow="fold")
    for r in results:
        m = r.record
        met, checks = m["metrics"], m["budgets"]["checks"]
        q = (f"entity F1 {met['entity_f1']:.4f} ({met['baseline_entity_f1']:.4f})" if "entity_f1" in met else
             f"{w.pct(met['accuracy'])} ({w.pct(met['baseline']['accuracy'])})")
        dc = m.get("device_cost") or {}
        cost = (f"{w.count(dc['instructions_per_inference'])} instructions ({dc.get('cpu')})"
                if dc.get("instructions_per_inference") else "not counted")
        if dc.get("estimated_latency_ms") is not None:
            cost += f", est. {w.ms(dc['estimated_latency_ms'])}"
        p50 = next((x["p50_ms"] for x in met["latency"] if x["threads"] == 1 and x["delegate_applied"]),
                   next((x["p50_ms"] for x in met["latency"] if x["threads"] == 1), None))
        failed = [c["name"] for c in checks if not c["passed"]]
        skipped = [c["name"] for c in checks if c.get("skipped")]
        judged = len(checks) - len(skipped)
        t.add_row(m["target"], "PASSED" if r.passed else "FAILED", q, w.size(met["size"]["size_bytes"]), cost,
                  w.ms(p50, 4) if p50 is not None else "-",
                  f"{judged - len(failed)}/{judged} pass" + (": failed " + ", ".join(failed) if failed else "")
                  + ("; not judged (--no-count): " + ", ".join(skipped) if skipped else ""))
    # a log or a pipe gets 140 columns (one row per target); a terminal its own width
    console = Console(width=max(140, shutil.get_terminal_size((140, 24)).columns), soft_wrap=False)
    console.print(t)
    for r in results:
        console.print(f"{r.record['target']}: {r.out_dir / 'report.html'} (and report.md, manifest.json)",
                      highlight=False, markup=False)


# --------------------------------------------------------------------------------------------- targets
