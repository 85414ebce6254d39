"""`edgeopt tune`: the search for the best artifact for a device (edgeopt/search)."""
from __future__ import annotations

import sys

import click

from ..errors import EXIT_BUDGET
from .common import dump, handle_errors, latency_options, main, model_file_options, own_data_options, own_data_spec


@main.command()
@click.argument("model", required=False, default=None)
@click.option("--target", "-t", default="pixel-7", show_default=True, help="Target profile name or YAML path.")
@click.option("--out", "-o", default=None,
              help="Tune directory: the pick's build in OUT/build, the study and report in OUT/tune (default "
                   "build/<model>/<target>-tune).")
@click.option("--trials", type=click.IntRange(0, 100_000), default=8, show_default=True,
              help="Training candidates (compression, QAT, distillation) to sample after the conversion-only grid, "
                   "which is always evaluated in full.")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=None,
              help="Stop starting new trials after this many minutes (this worker); the pick is made from what "
                   "finished.")
@click.option("--objective", type=click.Choice(["cost", "size", "accuracy"]), default="cost", show_default=True,
              help="What the pick minimizes (cost, size) or maximizes (dev accuracy) among the candidates that meet "
                   "every budget.")
@click.option("--storage", default=None,
              help="Share the study: postgresql://user:password@host:port/db. Several `edgeopt tune` processes on "
                   "several machines with the same --storage and --study work on one study. Default: a SQLite file "
                   "in OUT/tune.")
@click.option("--study", "study_name", default=None, help="Study name (default <model>@<target>).")
@click.option("--resume", is_flag=True,
              help="Continue the study in OUT after an interrupt or kill; finished trials are not run again.")
@click.option("--teacher", "teachers", multiple=True,
              help="A distillation teacher to include in the space (repeatable): a ModelSpec or all-MiniLM-L6-v2.")
@click.option("--on-device", is_flag=True,
              help="Cost every candidate by its latency on the target's board (device.remote, over SSH).")
@click.option("--sizes", is_flag=True,
              help="Also search the model's size: the vocabulary cap, the embedding width and the layer width "
                   "(a built-in architecture's; the spec's own, smaller and, for the layer, larger).")
@click.option("--host-cost", is_flag=True,
              help="An x86 target: cost candidates by the build machine's p90 latency instead of callgrind's "
                   "instructions per inference (refused for a device of another architecture).")
@model_file_options
@own_data_options
@click.option("--seed", type=int, default=0, show_default=True, help="The sampler's seed.")
@click.option("--no-cache", is_flag=True, help="Recompute every pass instead of reusing cached outputs.")
@click.option("--dry-run", is_flag=True, help="Print the search space and the trial budget; train nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the tune's summary as JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--verbose", "-v", is_flag=True, help="More detail: every latency configuration, native log lines.")
@latency_options
@handle_errors
def tune(model, target, out, trials, timeout, objective, storage, study_name, resume, teachers, on_device, sizes,
         host_cost,
         data, vocab, hf_tokenizer, pad_token, unk_token, fit, trust_model_code, custom_module, labels, csv_train, csv_dev, csv_test, text_column, label_column, arch, spec_name, seed, no_cache, dry_run, as_json, quiet, verbose,
         latency_warmup, latency_iterations):
    """Search MODEL's compression and conversion space for the best artifact for --target under its budgets.

    Candidates are compared on the dev split (cost: instructions per inference on the target's core, emulated for
    arm64, callgrind's for x86; latency on the board with --on-device; host latency for x86 with --host-cost); the
    pick is built into OUT/build, which alone touches the test split. Exit 0 when the pick's build passes its budgets, 3 when no candidate meets them
    (the closest are listed) or the pick's build fails on the test split, 2 for bad input.
    """
    if verbose:
        import os

        os.environ["EDGEOPT_VERBOSE"] = "1"
    from ..pipeline import LatencySettings
    from ..registry import model_from_args
    from ..search import tune as run_tune

    spec = own_data_spec(model, csv_train, csv_dev, csv_test, text_column, label_column, arch, spec_name) or \
        model_from_args(model or "banking77-cnn", data=data, vocab=vocab, hf_tokenizer=hf_tokenizer, fit=fit,
                           trust_model_code=trust_model_code, custom_module=custom_module, labels=labels,
                        pad_token=pad_token, unk_token=unk_token)
    res = run_tune(spec, target, out=out, trials=trials, timeout=timeout, objective=objective, storage=storage,
                   study=study_name, resume=resume, dry_run=dry_run, quiet=quiet,
                   latency=LatencySettings(latency_warmup, latency_iterations), teachers=tuple(teachers),
                   on_device=on_device, use_cache=not no_cache, seed=seed, host_cost=host_cost, sizes=sizes)
    if dry_run:
        if as_json:
            return dump(res)
        click.echo(f"tune {res['model']} on {res['target']} -> {res['out']} (study {res['study']}, {res['storage']})")
        click.echo(f"  cost: {res['cost_signal']}; objective: {res['objective']}; budgets as constraints: "
                   f"{', '.join(res['constraints'])}")
        for line in res["space"]:
            click.echo(f"  {line}")
        t = res["trials"]
        click.echo(f"  trial budget: {t['conversion_only']} conversion-only + {t['sampled_training']} sampled with "
                   f"training = {t['total']}" + (f", at most {res['timeout_minutes']} min" if res["timeout_minutes"]
                                                  else ""))
        return
    s = res.summary
    if as_json:
        dump(s)
    elif not quiet:
        click.echo(f"tune {s['model']} on {s['target']}: {s['evaluated']} candidates evaluated on the dev split, "
                   f"{s['feasible']} meet the budgets, {len(s['pareto'])} on the Pareto front "
                   f"({s['search_seconds']:.0f} s)")
        click.echo(f"  {s['why']}")
        pb = s.get("pick_build")
        if pb:
            click.echo(f"  pick built: test accuracy {pb['test_accuracy']:.4f} (float32 {pb['test_accuracy_float32']:.4f}), "
                       f"{pb['size_bytes']:,} B, budgets {'PASSED' if pb['budgets_passed'] else 'FAILED'} -> "
                       f"{pb['out']}")
        click.echo(f"  report: {res.tune_dir / 'report.html'}")
    if s.get("pick") is None:
        click.echo("edgeopt: no candidate meets every budget of " + s["target"] + "; closest: " + "; ".join(
            f"{c['label']} (misses {', '.join(c['misses'])})" for c in s.get("closest", [])), err=True)
        sys.exit(EXIT_BUDGET)
    if not res.build.passed:
        for f in res.build.failures:
            click.echo(f"edgeopt: the pick's build failed a budget on the test split: {f}", err=True)
        sys.exit(EXIT_BUDGET)
