"""CLI commands that measure an artifact: ``bench``, ``validate``, ``verify``, ``inspect`` and the emulated
devices (``emulator setup | list``), registered on ``edgeopt.cli.common.main`` (kept apart so cli.py stays about
building)."""
from __future__ import annotations

import sys

import click

from ..errors import EXIT_BUDGET
from .common import MAX_ITER, Group, dump, handle_errors, main


# ----------------------------------------------------------------------------------------------- bench
@main.command()
@click.argument("artifact", type=click.Path())
@click.option("--threads", type=click.IntRange(1, 64), default=None, help="Threads (default 1, or the --target's).")
@click.option("--no-xnnpack", is_flag=True, help="Run with the builtin kernels only (XNNPACK off).")
@click.option("--warmup", type=click.IntRange(0, MAX_ITER), default=50, show_default=True)
@click.option("--iterations", type=click.IntRange(1, MAX_ITER), default=500, show_default=True)
@click.option("--remote", default=None, metavar="ssh://USER@HOST[:PORT]",
              help="Measure on this board over SSH instead of this machine (with --key).")
@click.option("--key", "key_file", default=None, type=click.Path(), help="Private key for --remote.")
@click.option("--python", "remote_python", default="python3", show_default=True,
              help="The board's Python (with numpy and the runtime) for --remote.")
@click.option("--known-hosts", default=None, type=click.Path(),
              help="known_hosts file the board's host key is checked against (default ~/.ssh/known_hosts).")
@click.option("--target", "-t", "target", default=None,
              help="Take threads and XNNPACK from this target; with --on-device, measure on its device.remote.")
@click.option("--on-device", is_flag=True, help="Measure on the --target's board (device.remote).")
@click.option("--accelerator", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True,
              help="gpu: LiteRT's GPU accelerator (.tflite): the partition, and the latency on a hardware adapter "
                   "only (a software one gives none, and says so).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench(artifact, threads, no_xnnpack, warmup, iterations, remote, key_file, remote_python, known_hosts, target,
          on_device, accelerator, as_json):
    """Latency of ARTIFACT (.tflite or .onnx) at batch 1: p50/p90/p99 after warm-up, on this machine, or on a real
    board over SSH (--remote, or --target T --on-device), labelled with the board's identity.

    Inputs are token ids: random ids within the vocabulary of the tokenizer next to the artifact (a build
    directory's edgeopt_tokenizer.json), else all-<unk> ids.
    """
    from pathlib import Path

    import numpy as np

    from .. import runtimes
    from ..data.tokenizer import CONFIG, load_tokenizer
    from ..errors import InputError

    t = None
    if target:
        from ..registry import load_target

        t = load_target(target)
    if on_device and t is None:
        raise InputError("--on-device measures on a target's board. Fix: add --target NAME (its device.remote).")
    if remote and on_device:
        raise InputError("--remote and --on-device both name a board. Fix: give one of them.")
    if remote and not key_file:
        raise InputError("--remote needs --key (edgeopt logs in with a key only). Fix: add --key ~/.ssh/id_ed25519.")
    if threads is None:
        threads = t.runtime.threads if t else 1
    xnnpack = not no_xnnpack and (t is None or "xnnpack" in t.runtime.delegates)
    if accelerator == "gpu" and (remote or on_device or not str(artifact).lower().endswith(".tflite")):
        raise InputError(f"{artifact}: --accelerator gpu runs a .tflite file on this machine's GPU adapter. Fix: give "
                         f"a .tflite and leave out --remote/--on-device.")
    sess = runtimes.load(artifact, runtimes.RuntimeOptions(threads=threads, xnnpack=xnnpack))
    seq_len = sess.input_shape[1]
    tok_dir = Path(artifact).parent
    if (tok_dir / CONFIG).is_file():
        vocab = load_tokenizer(tok_dir).vocab_size
        x = np.random.default_rng(0).integers(2, max(vocab, 3), size=(64, seq_len), dtype=np.int32)
        inputs = f"random ids < {vocab} ({CONFIG})"
    else:
        x = np.ones((64, seq_len), np.int32)
        inputs = f"all <unk> ids (no {CONFIG} beside the artifact)"
    if accelerator == "gpu":
        from ..gpu import run as gpu_run
        from ..report import gpu_partition_line

        st = gpu_run.bench(artifact, x, warmup, iterations)
        st.update(artifact=str(artifact), inputs=inputs)
        if as_json:
            return dump(st)
        click.echo(f"{artifact}: LiteRT GPU accelerator (CPU fallback); {gpu_partition_line(st)}")
        if st["available"]:
            lat = st.get("latency")
            click.echo(f"  p50 {lat['p50_ms']:.4f} ms  p90 {lat['p90_ms']:.4f} ms  p99 {lat['p99_ms']:.4f} ms  "
                       f"({iterations} iterations after {warmup} warm-up; {inputs}); {st['latency_note']}" if lat else
                       f"  latency: none ({st['latency_note']})")
        return
    if remote or on_device:
        from .. import remote as rem

        board = rem.parse(remote, key_file, remote_python, known_hosts) if remote else rem.for_target(t)
        where = "--remote" if remote else f"{t.source or t.name}: device.remote"
        st = rem.bench(board, Path(artifact), x, threads, xnnpack, warmup, iterations,
                       arch=t.device.arch if t else None, where=where)
        st.update(artifact=str(artifact), inputs=inputs)
        if as_json:
            return dump(st)
        bd = st["board"]
        click.echo(f"{artifact}: {st['runtime']} on the board {st['remote']}, threads {threads}, XNNPACK "
                   f"{'on' if xnnpack else 'off'} (applied: {'yes' if st['delegate_applied'] else 'no'})")
        click.echo(f"  device latency: p50 {st['p50_ms']:.4f} ms  p90 {st['p90_ms']:.4f} ms  p99 {st['p99_ms']:.4f} "
                   f"ms  ({iterations} iterations after {warmup} warm-up; {inputs})")
        click.echo(f"  board: {bd.get('model') or bd.get('hostname')}, {bd['arch']} {bd.get('cpu') or ''}"
                   f"{' CPU parts ' + str(bd['cpu_parts']) if bd.get('cpu_parts') else ''}, {bd['cores']} cores, "
                   f"Python {st['python']}, {st['runtime']}"
                   + ("" if st["runtime_matches_build"] else " (not the build machine's runtime version)"))
        return
    st = sess.benchmark(x, warmup=warmup, iterations=iterations).to_dict()
    st.update(artifact=str(artifact), inputs=inputs)
    if as_json:
        return dump(st)
    click.echo(f"{artifact}: {st['runtime']}, threads {threads}, XNNPACK {'on' if xnnpack else 'off'} "
               f"(applied: {'yes' if st['delegate_applied'] else 'no'})")
    click.echo(f"  p50 {st['p50_ms']:.4f} ms  p90 {st['p90_ms']:.4f} ms  p99 {st['p99_ms']:.4f} ms  "
               f"({iterations} iterations after {warmup} warm-up; {inputs}); this machine's latency, not a device's")
    m = st["machine"]
    click.echo(f"  machine: {m['arch']} {m['cpu']}, {m['cores']} cores")


# ---------------------------------------------------------------------------------------------- verify
@main.command()
@click.argument("build_dir", metavar="BUILD", type=click.Path())
@click.option("--baseline", required=True, type=click.Path(), help="Baseline JSON to compare with (or to write).")
@click.option("--update", is_flag=True, help="Write BUILD's re-measured numbers as the new baseline, on purpose.")
@click.option("--iterations", type=click.IntRange(10, MAX_ITER), default=300, show_default=True,
              help="Timed calls for the latency re-measurement.")
@click.option("--emulate/--no-emulate", default=None,
              help="Re-run the artifact on the emulated CPU(s) and gate parity too (default: when the baseline has "
                   "emulator results, or, with --update, when the build was made with --emulate).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def verify(build_dir, baseline, update, iterations, emulate, as_json):
    """Regression gate: re-measure BUILD's artifact and compare with a baseline.

    Accuracy by an exact one-sided test on the examples (paired McNemar when they are the same, else Fisher;
    fails at p < accuracy_alpha, 0.001), size (relative), p50 latency (relative plus a noise margin from the
    measured spread; only on the baseline's machine). Exit 0 within bounds, 3 with a per-metric table when not.
    """
    from pathlib import Path

    from ..manifest import write_json_atomic
    from ..validate import regression as reg

    base = None if update else reg.load_baseline(Path(baseline))
    old = reg.existing_tolerances(Path(baseline)) if update else None  # refuses a file edgeopt did not write
    if emulate is None:
        emulate = (base.emulator is not None) if base is not None else reg.built_with_emulator(Path(build_dir))
    seed = base.emulator.sample.seed if base is not None and base.emulator is not None else None
    current = reg.measure(Path(build_dir), iterations=iterations, emulate=emulate, sample_seed=seed)
    if update:
        path = Path(baseline)
        write_json_atomic(path, reg.make_baseline(current, old))
        click.echo(f"baseline written: {path} (accuracy {current['accuracy']}, {current['size_bytes']:,} B, "
                   f"p50 {current['latency']['p50_ms']} ms"
                   + (f", emulated on {', '.join(c['cpu'] for c in current['emulator']['cpus'])})"
                      if "emulator" in current else ")"))
        return
    result = reg.compare(current, base)
    if as_json:
        dump({"current": current, **result})
    else:
        click.echo(reg.format_table(result))
        click.echo(f"verify {current['model']} on {current['target']}: {'PASSED' if result['passed'] else 'FAILED'}")
    if not result["passed"]:
        sys.exit(EXIT_BUDGET)


# -------------------------------------------------------------------------------------------- validate
@main.command()
@click.argument("artifact", type=click.Path())
@click.option("--model", "-m", "model", required=True, help="The ModelSpec it was built from (its data and tokenizer).")
@click.option("--target", "-t", "target", required=True, help="The target profile (runtime, threads, CPU model).")
@click.option("--emulate", is_flag=True, help="Run it under qemu on the target's arm64 CPU model(s) and compare "
                                                "with the host.")
@click.option("--cpu", "cpus", multiple=True, help="qemu CPU model(s) instead of the target's (repeatable).")
@click.option("--sample", type=click.IntRange(1), default=None,
              help="Test examples to run (default: the target's emulator.sample, else the whole test split).")
@click.option("--client/--no-client", "use_client", default=None,
              help="Also run the deployed file in MediaPipe's TextClassifier and compare (default: when the target "
                   "declares clients: [mediapipe]).")
@click.option("--gpu/--no-gpu", "use_gpu", default=None,
              help="Also run it through LiteRT's GPU accelerator: partition, accuracy and deviation from the CPU "
                   "(default: when the target's delegates include gpu).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def validate(artifact, model, target, emulate, cpus, sample, use_client, use_gpu, as_json):
    """Validate ARTIFACT (.tflite/.onnx) on the test split: on the host (accuracy, macro-F1, and the real client
    where the target declares one), or with --emulate on emulated CPUs.

    Exit 0 when it loads, the delegate applies as on the host, outputs match within tolerance and the client agrees;
    3 if not.
    """
    from pathlib import Path

    from ..errors import InputError
    from ..registry import load_model_spec, load_target

    spec, tgt = load_model_spec(model), load_target(target)
    if not Path(artifact).is_file():
        raise InputError(f"{artifact}: file not found. Fix: give the .tflite/.onnx a build wrote.")
    if (cpus or sample) and not emulate:
        raise InputError("--cpu/--sample apply to emulated validation. Fix: add --emulate.")
    from ..pipeline import validation_data
    from ..runtimes import RuntimeOptions, machine_info
    from ..tasks import task_for
    from ..validate.base import MeasureRequest, Split
    from ..validate.measure import measure_artifact

    x, y, label_names, texts, tok = validation_data(spec, Path(artifact))
    task = task_for(spec.task)
    if not task.clients and (use_client or use_gpu):
        raise InputError(f"{artifact}: --client and --gpu check a sentence classifier's outputs; for a tagger they "
                         f"are not built yet. Fix: validate it without them.")
    if not task.clients:
        use_client = use_gpu = False
    if use_client is None:
        use_client = "mediapipe" in tgt.clients
    if use_client and Path(artifact).suffix.lower() != ".tflite":
        raise InputError(f"{artifact}: MediaPipe's TextClassifier runs .tflite files. Fix: drop --client.")
    if use_gpu is None:
        use_gpu = tgt.uses_gpu
    if use_gpu and Path(artifact).suffix.lower() != ".tflite":
        raise InputError(f"{artifact}: LiteRT's GPU accelerator runs .tflite files. Fix: drop --gpu.")
    gold = ()
    if task.per_token:  # entities over whole sentences; accuracy and per-class per real token
        from ..data import load_dataset

        gold = load_dataset(spec.data).test.labels
    ev = measure_artifact(MeasureRequest(
        Path(artifact), tgt, task, Split("test", x, y, texts, gold), tuple(label_names), spec.training.seed,
        quiet=as_json, origin="given",
        run=RuntimeOptions(threads=tgt.runtime.threads, xnnpack="xnnpack" in tgt.runtime.delegates),
        clients=("mediapipe",) if use_client else (), tokenizer=tok, gpu="check" if use_gpu else None,
        gpu_sample=tgt.gpu.sample, robustness=True,
        # --emulate: the emulated CPUs too, on the target's sample (what `build --emulate` runs), after the rest
        emulate=tuple(cpus) if emulate else None, emulate_sample=sample))
    q, ents = ev.quality, ev.quality.entities
    res = {"artifact": artifact, "runtime": q.runtime, "examples": q.examples, "accuracy": q.accuracy,
           "macro_f1": q.macro_f1, "per_class": q.per_class,
           **({"entity_f1": q.entity_f1, "entities": ents, "accuracy_unit": "real tokens"} if ents else {}),
           "delegate_applied": q.delegate_applied, "machine": machine_info()}
    if ev.get("clients"):
        res["client"] = ev["clients"][0]
    if "gpu" in ev:
        from ..validate.budgets import gpu_checks

        g = dict(ev["gpu"])
        g["passed"] = all(c["passed"] for c in gpu_checks(tgt.budgets, g))  # the build's GPU budgets
        res["gpu"] = g
    res["better_than_chance"] = q.chance
    if "robustness" in ev:
        res["robustness"] = ev["robustness"]
    if "emulated" in ev:
        res["emulator"] = ev["emulated"]
    tagging = ents is not None
    ok = (res.get("client", {}).get("passed") is not False and res.get("gpu", {}).get("passed") is not False
          and q.chance["passed"] and res.get("emulator", {}).get("passed") is not False)
    if as_json:
        dump(res)
    else:
        if "entity_f1" in res:
            click.echo(f"{artifact}: entity F1 {res['entity_f1']:.4f} (precision {ents['micro']['precision']:.4f}, "
                       f"recall {ents['micro']['recall']:.4f}; strict spans) on {res['examples']} test sentences; "
                       + ", ".join(f"{k} {v['f1']:.4f}" for k, v in sorted(ents["per_type"].items())))
        click.echo(f"{artifact}: {'token ' if tagging else ''}accuracy {res['accuracy']:.4f}, macro-F1 "
                   f"{res['macro_f1']:.4f} on {res['examples']} test examples ({q.runtime} on this host, XNNPACK "
                   f"{'applied' if res['delegate_applied'] else 'not applied'})")
        if "client" in res:
            from ..report import client_line

            click.echo(client_line(res["client"]))
        if "gpu" in res:
            from ..report import gpu_partition_line

            g = res["gpu"]
            click.echo("gpu: " + gpu_partition_line(g) + (
                f"; accuracy through the GPU {g['fp16']['accuracy']:.4f} (CPU {g['cpu_accuracy']:.4f}), max |GPU - "
                f"CPU| {g['fp16']['max_abs_deviation']:.3g} at fp16, {g['fp32']['max_abs_deviation']:.3g} with "
                f"enforce_f32, {g['examples']} examples; {'passed' if g['passed'] else 'FAILED'} ({tgt.name}'s GPU "
                f"budgets)" if g["available"] and g["fp16"].get("ran") else ""))
        from ..validate.chance import describe

        click.echo(("better than chance: " if q.chance["passed"] else "NOT better than chance: ")
                   + describe(artifact, q.chance))
        if "robustness" in res:
            r = res["robustness"]
            w = r["worst"]
            click.echo(f"how people type it: worst {w['transform']} {w['drop'] * 100:+.2f} points "
                       f"({w['measured_in']}); " + ", ".join(f"{t['transform']} {t['drop'] * 100:+.2f}"
                                                             for t in r["transforms"]))
        if "emulator" in res:
            from ..emulator.validate import format_table

            click.echo(format_table(res["emulator"]) + f"\n({res['emulator']['note']})")
    if not ok:
        sys.exit(EXIT_BUDGET)


@main.group(cls=Group)
def emulator():
    """The emulated arm64 devices (qemu-user): set up, list."""


@emulator.command("setup")
@click.option("--arch", default="arm64", show_default=True, help="Emulated architecture.")
@click.option("--force", is_flag=True, help="Rebuild even when it is already set up.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def emulator_setup(arch, force, as_json):
    """Build the emulated device environment into the user cache (idempotent)."""
    from ..emulator import env

    st = env.setup(arch, quiet=as_json, force=force)
    if as_json:
        dump(st)
    else:
        click.echo(f"emulator {arch}: {'set up' if st['changed'] else 'already set up'} at {st['root']} "
                   f"(qemu {st['qemu_version']}); CPU models: {', '.join(c['cpu'] for c in st['cpus'])}; "
                   f"instruction counter {st['instruction_counter']['plugin']}")


@emulator.command("list")
@click.option("--arch", default="arm64", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def emulator_list(arch, as_json):
    """The emulated CPU models and whether the environment is ready."""
    from ..emulator import env

    st = env.status(arch)
    if as_json:
        dump(st)
        return
    click.echo(f"emulator {arch}: {'ready' if st['ready'] else 'NOT ready: ' + '; '.join(st['problems'])} "
               f"({st['root']}; qemu {st['qemu_version'] or 'missing'})")
    for c in st["cpus"]:
        click.echo(f"  {c['cpu']:<12} CPU part {c['cpu_part']}  {'ready' if c['ready'] else 'not ready'}  {c['like']}")
    ic = st["instruction_counter"]
    click.echo(f"  instruction counter: {'ready' if ic['ready'] else 'NOT ready: ' + '; '.join(ic['problems'])} "
               f"({ic['plugin']}, {ic['qemu'] or 'no dynamic qemu-aarch64'})")


# --------------------------------------------------------------------------------------------- inspect
@main.command()
@click.argument("artifact", type=click.Path())
@click.option("--gpu", is_flag=True, help="Also compile it for LiteRT's GPU accelerator and show which ops run on the "
                                          "GPU and which fall back to the CPU, with LiteRT's reasons.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def inspect(artifact, gpu, as_json):
    """Ops, tensor dtypes and size of a .tflite or .onnx file (no TensorFlow needed)."""
    from pathlib import Path

    from ..errors import InputError
    from ..inspect import format_inspect, inspect_artifact

    if gpu and Path(artifact).suffix.lower() == ".onnx":
        raise InputError(f"{artifact}: --gpu compiles a .tflite for LiteRT's GPU accelerator. Fix: drop --gpu.")
    info = inspect_artifact(artifact)
    if gpu:
        from ..gpu import run as gpu_run

        info["gpu"] = gpu_run.partition_of(artifact)
    if as_json:
        return dump(info)
    click.echo(format_inspect(info))
    if gpu:
        from ..report import gpu_partition_line

        click.echo("gpu: " + gpu_partition_line(info["gpu"]))
