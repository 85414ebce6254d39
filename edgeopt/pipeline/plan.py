"""Planning: every check that needs no computation (specs, targets, recipe order, the model's layers against the
passes, output locations), so bad input fails before any training; and the test data a spec gives.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..convert import converter_for
from ..errors import InputError, OutputError
from ..recipe import QAT_STEPS, QUANTIZATIONS, Step, is_minilm, load_recipe_file, merge, resolve
from ..registry import load_model_spec, load_target
from ..specs import ModelSpec, TargetProfile
from ..tasks import task_for
from ..validate.budgets import host_latency_problem, skipped_by
from ..validate.cost import count_cpu
from .outdir import check_out_dir

LATENCY_INPUTS = 64


@dataclass(frozen=True)
class LatencySettings:
    warmup: int = 50
    iterations: int = 500


@dataclass(frozen=True)
class TargetPlan:
    target: TargetProfile
    steps: tuple[Step, ...]
    ptq: str
    out_dir: Path
    representative_samples: int
    cross_format: bool = False  # also export the other format from the same weights and compare
    emulate: tuple[str, ...] = ()  # qemu CPU models to validate the deployed artifact on (build --emulate)
    force: bool = False  # replace out_dir even when it is not an edgeopt build (build --force)
    count: Optional[str] = None  # the CPU instructions per inference are counted on: a qemu model, or "x86"
    remote: Optional[object] = None  # remote.Remote: the board device latency is measured on (build --on-device)
    skipped: tuple[tuple[str, str], ...] = ()  # (budget, why) not judged: what --no-count leaves unmeasured

    @property
    def counts_separately(self) -> bool:
        """Counted by a run of its own (an emulated validation on that CPU counts there already)."""
        return self.count is not None and self.count not in self.emulate

    @property
    def pass_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def describe_steps(self) -> list[str]:
        s = [st.describe() for st in self.steps]
        qat = self.steps[-1].name in QAT_STEPS
        extra = f", representative dataset: {self.representative_samples} training texts" if self.ptq in ("int8", "int16x8") else ""
        fmt = self.target.runtime.format
        how = (f"tf2onnx opset {self.target.onnx_settings.opset}" if fmt == "onnx" else "TFLite converter")
        s.append(f"convert float32 -> model_float32.{fmt} ({how}; baseline: the uncompressed model)")
        if self.ptq != "float32" or len(self.steps) > 1:
            why = " (QAT model; int8 is forced)" if qat and self.target.quantization != "int8" else ""
            if fmt == "onnx" and self.ptq != "float32":
                q = self.target.onnx_settings.quant
                why += (f" (ONNX Runtime quantize_dynamic, weights {q.weight_type})" if self.ptq == "dynamic" else
                        f" (ONNX Runtime quantize_static, {q.format}, {q.activation_type} activations x "
                        f"{q.weight_type} weights)")
            s.append(f"convert {self.ptq} -> model_{self.ptq}.{fmt} (deployed{extra}){why}")
        thr = sorted({1, self.target.runtime.threads})
        grid = "XNNPACK on/off" if "xnnpack" in self.target.runtime.delegates else (
            "ONNX Runtime CPU execution provider" if fmt == "onnx" else "builtin kernels")
        s.append("validate on the artifacts: accuracy over the test split, parity with Keras, size raw/gzip, "
                 f"latency threads {thr} x {grid}")
        if self.cross_format:
            other = "onnx" if fmt == "tflite" else "tflite"
            s.append(f"cross-format: also export {other} from the same weights; compare accuracy and agreement")
        s.append("budgets: " + ", ".join(f"{k}={v}" for k, v in
                                         self.target.budgets.model_dump(exclude_none=True).items()))
        return s


@dataclass(frozen=True)
class Plan:
    spec: ModelSpec
    targets: tuple[TargetPlan, ...]
    use_cache: bool = True
    teacher: Optional[object] = None  # a ModelSpec, or teachers.minilm.MiniLMTeacher
    source: Optional[object] = None  # source.ModelSource (loaded once, by the planner)
    facts: dict = field(default_factory=dict)  # the model source's checks (manifest "model_source")
    layers: tuple = ()  # layer_table rows for the first target (a model file or builder)

    def to_dict(self) -> dict:
        s = self.spec
        return {"model": s.name, "source": s.source, "dataset": s.data.dataset or "files",
                "architecture": s.architecture.model_dump() if s.architecture else None,
                "model_source": self.facts or None, "layers": [dict(r) for r in self.layers] or None,
                "tokenizer": s.tokenizer.model_dump(), "training": s.training.model_dump(), "cache": self.use_cache,
                "targets": [{"target": t.target.name, "out": str(t.out_dir), "passes": t.pass_names, "ptq": t.ptq,
                             "fallback": list(t.target.fallback), "fallback_note": t.target.fallback_note,
                             "steps": t.describe_steps(),
                             "emulate": list(t.emulate), "count_instructions_on": t.count,
                             "budgets_skipped": dict(t.skipped),
                             "on_device": t.remote.url if t.remote else None} for t in self.targets]}

    def describe(self) -> str:
        s, tr, tk = self.spec, self.spec.training, self.spec.tokenizer
        kind = "MediaPipe's regex tokenizer" if tk.kind == "regex" else "word tokenizer"
        tok = {"fitted": f"{kind} fitted on the training texts (max_vocab {tk.max_vocab})",
               "vocab_file": f"vocabulary file {tk.vocab_file}", "huggingface": f"tokenizers file {tk.huggingface}"}
        fit = ("weights as given in the file (no training)" if self.facts.get("weights") == "used as given" else
               f"training up to {tr.epochs} epochs, batch {tr.batch_size}, lr {tr.learning_rate}, early stop on dev "
               f"accuracy (patience {tr.patience}), seed {tr.seed}")
        lines = [f"plan for model {s.name} ({s.model_label}, dataset {s.data.dataset or 'user files'})"
                 + ("" if self.use_cache else ", cache off"),
                 f"  data: {tok[tk.mode]}, seq_len {tk.seq_len}; {fit}"]
        f = s.data.files
        if f is not None:
            carved = [f"test: a seeded {s.data.test_fraction:.0%} of train, taken first" if f.test is None else None,
                      f"dev: a seeded {s.data.dev_fraction:.0%} of train" if f.dev is None else None]
            lines.append(f"  files: train {f.train}" + "".join(f", {k} {getattr(f, k)}" for k in ("dev", "test")
                                                           if getattr(f, k))
                         + f" (columns {f.text_column!r} -> {f.label_column!r})"
                         + "".join(f"; {c}" for c in carved if c) + (f" (split_seed {s.data.split_seed})"
                                                                    if any(carved) else ""))
        if self.facts.get("fit_size"):
            z = self.facts["fit_size"]
            c = z["chosen"]
            lines.append(f"  fit to size: vocabulary {c['vocab_size']:,} (max_vocab {c['max_vocab']:,}, was "
                         f"{z['was']['max_vocab']:,}) x embedding {c['embed_dim']} (was {z['was']['embed_dim']}), "
                         f"{c['weights']:,} weights; predicted " + ", ".join(
                             f"{c['predicted_bytes'][t]:,} B for {t} (limit {lim:,})" for t, lim in z["limits"].items())
                         + f"; {len(z['tried'])} of {z['candidates']} candidates converted")
        if "kind" in self.facts:
            f = self.facts
            lines.append(f"  model: {f['kind']} ({f.get('format', f.get('builder', ''))}), input {f['input_dtype']} "
                         f"[batch, {f['seq_len'] or 'any'}], output {f['output']} over {f['num_classes']} classes"
                         + (f"; Keras 3 rebuilt in tf_keras, max abs difference {f['keras3_rebuild']['max_abs_difference']:.2g}"
                            f" on {f['keras3_rebuild']['compared_examples']} dev examples"
                            if "keras3_rebuild" in f else "")
                         + (f"; {f['used_as_is']}" if f.get("used_as_is") else ""))
            if str(f.get("vocabulary_check", "")).startswith("not run"):
                lines.append(f"  vocabulary check: {f['vocabulary_check']}")
        if self.layers:
            from .layer_table import format_table

            lines.append(f"  layers (what the passes of target {self.targets[0].target.name} do to each):")
            lines += ["    " + ln for ln in format_table(self.layers).splitlines()]
        for t in self.targets:
            lines.append(f"  target {t.target.name}: runtime {t.target.runtime.name}, "
                         f"{t.target.runtime.threads} threads, out {t.out_dir}")
            lines += [f"    {i}. {step}" for i, step in enumerate(t.describe_steps(), 1)]
            if t.target.fallback:
                lines.append(f"    if converting {t.ptq} fails or crashes: try {', then '.join(t.target.fallback)}")
                if t.ptq == "int8" and any("full-int8 crashes" in r["converter"] for r in self.layers):
                    lines.append(f"    note: TF 2.21's int8 converter is known to crash on this model's layers (see "
                                 f"the table): expect {t.target.fallback[0]} to be deployed")
            if t.emulate:
                lines.append(f"    then: emulated validation on qemu {', '.join(t.emulate)}")
            if t.remote:
                lines.append(f"    then: latency on the board {t.remote.url} (device latency, over SSH)")
            for name, why in t.skipped:
                lines.append(f"    budget {name}: {why}")
            if t.count:
                lines.append("    then: instructions per inference on "
                             + ("x86 (valgrind's callgrind)" if t.count == "x86" else f"qemu -cpu {t.count}")
                             + ", batch 1, XNNPACK on and off" * (t.target.runtime.name == "litert"))
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
         ptq: Optional[str] = None, recipe: Optional[str] = None, passes: Optional[dict] = None,
         use_cache: bool = True, formats: str = "target", emulate: bool = False, force: bool = False,
         fallback: Optional[tuple[str, ...]] = None, count: Optional[bool] = None,
         on_device: bool = False, fit_size: bool = False) -> Plan:
    if out is not None and not str(out).strip():
        raise InputError("--out is empty. Fix: give a directory, e.g. --out build/my-model.")
    from ..cache import check_cache_dir

    check_cache_dir()  # before training: a cache that cannot be a directory is a setting to fix, said now

    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    from .prepare import first_step, prepare

    prep = prepare(spec)  # a model file or builder: loaded and checked against the data here
    spec = prep.spec
    profiles = [t if isinstance(t, TargetProfile) else load_target(t) for t in targets]
    if not profiles:
        raise InputError("no target given. Fix: add --target NAME (see `edgeopt targets list`).")
    if ptq is not None and ptq not in QUANTIZATIONS:
        raise InputError(f"--ptq {ptq!r} is not a quantization; choose one of {', '.join(QUANTIZATIONS)}.")
    if fallback:  # --fallback replaces each target's own list
        bad = [m for m in fallback if m not in QUANTIZATIONS]
        if bad:
            raise InputError(f"--fallback {bad[0]!r} is not a quantization; choose among {', '.join(QUANTIZATIONS)}.")
        profiles = [p.model_copy(update={"fallback": tuple(dict.fromkeys(fallback)), "fallback_note": None})
                    for p in profiles]
    if fit_size:  # the architecture sized to the tightest size budget, before anything else is planned
        from .fitsize import fit
        from .prepare import load_spec_data

        spec, sized = fit(spec, profiles, lambda t: ptq or t.quantization, load_spec_data(spec))
        prep = prepare(spec)
        prep.facts["fit_size"] = sized
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise InputError(f"target given twice: {names}. Fix: name each target once.")
    recipe_file = load_recipe_file(recipe) if recipe else None
    layer_types = prep.source.layer_types()
    start = first_step(spec, prep.source)
    teacher = None
    plans = []
    for p in profiles:
        if problem := host_latency_problem(p):  # a budget on the build machine's clock for another device
            raise InputError(problem)
        sources = [(f"model {spec.name} recipe", spec.recipe), (f"target {p.name} recipe", p.recipe),
                   (str(recipe), recipe_file)]
        chain, chosen_ptq = merge(sources, passes or {}, ptq)
        where = f"recipe for {spec.name} on {p.name}"
        if prep.source.kind == "file":  # before the recipe is resolved against layers it cannot reach
            _check_native(prep.source, [start.name, *(n for n, _ in chain)], p, formats)
        steps, final_ptq = resolve(chain, chosen_ptq or p.quantization, layer_types, where, start)
        if prep.source.kind != "architecture":
            from .layer_table import check_named_layers

            check_named_layers(prep.source.model, steps, where)
        if formats == "both":  # the other format's tools too
            from ..runtimes import require_onnx_stack

            require_onnx_stack()
        converter_for(p.runtime.format).check(steps, final_ptq, where, p)  # what the converter refuses
        if steps[0].name == "distill" and teacher is None:
            teacher = _teacher_of(steps[0].config)
        task_for(spec.task).check_plan(spec, steps, p, where, teacher)  # what the task's path does not do yet
        if steps[0].name == "distill":
            from ..teachers.minilm import MiniLMTeacher, model_dir

            dcfg = steps[0].config
            if isinstance(teacher, MiniLMTeacher) or (dcfg.transfer is not None and dcfg.transfer.copies
                                                      and dcfg.transfer.replace > 0):
                model_dir(quiet=False)  # before any training: the package, or its files fetched once
            if dcfg.transfer is not None and dcfg.transfer.unlabeled:
                from ..passes.transfer import read_unlabeled

                read_unlabeled(dcfg.transfer.unlabeled, 1)  # exists, UTF-8, not empty: before any training
            if hasattr(teacher, "data") and teacher.data.model_dump() != spec.data.model_dump():
                raise InputError(f"distill: teacher {teacher.name} is trained on other data than {spec.name}. Fix: "
                                 f"give a teacher spec with the same data section.")
        if out is None:
            d = Path("build") / spec.name / p.name
        else:
            d = Path(out) if len(profiles) == 1 else Path(out) / p.name
        if formats not in ("target", "both"):
            raise InputError(f"--format {formats!r}: choose 'target' (the target's format) or 'both'.")
        if formats == "both" and steps[-1].name in QAT_STEPS:
            raise InputError(f"{where}: --format both needs a recipe without QAT (a QAT graph exports to TFLite "
                             f"only). Fix: drop --qat, or drop --format both.")
        _check_writable(d)
        check_out_dir(d, force)
        _check_int8_crash(prep.source, p, final_ptq)
        emu = ()
        if emulate and p.device.arch == "arm64":
            from ..emulator.validate import cpus_for

            emu = tuple(cpus_for(p))
        plans.append(TargetPlan(p, tuple(steps), final_ptq, d, p.representative_samples, formats == "both", emu,
                                force, count_cpu(p, count), board_for(p) if on_device else None,
                                tuple(skipped_by(p, count).items())))
    if any(t.emulate for t in plans):
        from ..emulator.validate import require_ready

        require_ready()  # before any training: the fix (emulator setup) is the user's
    if any(t.counts_separately for t in plans):
        from ..emulator.validate import require_counter

        for t in plans:
            if t.counts_separately:
                require_counter(t.count, t.target)  # the tools it needs, before any training
    rows = ()
    if prep.source.kind != "architecture":
        from .layer_table import layer_rows

        rows = tuple(layer_rows(prep.source.model, plans[0].steps, plans[0].ptq, plans[0].target,
                                getattr(prep.source, "vectorizer", None)))
    return Plan(spec, tuple(plans), use_cache, teacher, prep.source, prep.facts, rows)


def _teacher_of(cfg):
    """The plan's record of a distill pass's teacher: all-MiniLM-L6-v2 (frozen or fine-tuned), an ONNX classifier
    (its files and label names checked now), or a ModelSpec."""
    from ..teachers.minilm import MiniLMTeacher

    if is_minilm(cfg.teacher):
        return MiniLMTeacher(fine_tune=cfg.fine_tune_teacher)
    if cfg.teacher.lower().endswith(".onnx"):
        from ..runtimes import require_onnx_stack
        from ..teachers.onnx import classifier, resolve

        require_onnx_stack(("onnxruntime",))
        ref = resolve(cfg)
        classifier(ref)  # loads, and its inputs and outputs are what a teacher needs: before any training
        return ref
    return load_model_spec(cfg.teacher)


def _check_native(source, steps: list[str], target: TargetProfile, formats: str) -> None:
    """A model used as it is (sources.FileSource.native: a Keras 3 custom layer, a subclassed model) takes no pass
    that needs its layers in tf_keras, and a Keras 3 one goes to the TFLite converter only (tf2onnx reads tf_keras
    models): refused in one line, before any work."""
    why = getattr(source, "native", None)
    if not why:
        return
    bad = [s for s in steps if s != "load"]
    if bad:
        raise InputError(f"{source.where}: {', '.join(bad)} need the model's layers in tf_keras (TFMOT, edgeopt's "
                         f"training), and this model is used as it is: {why}. Fix: drop {', '.join(bad)} (the "
                         f"build then converts its weights as given, with the target's post-training "
                         f"quantization), or save a functional tf_keras model.")
    from ..tf import is_keras3_model

    if is_keras3_model(source.model) and (target.runtime.format != "tflite" or formats == "both"):
        raise InputError(f"{source.where}: target {target.name} needs ONNX, and tf2onnx converts tf_keras models; "
                         f"this Keras 3 model is used as it is ({why}). Fix: pick a LiteRT target (e.g. pixel-7), "
                         f"or build the model with tf_keras.")


def _check_int8_crash(source, target: TargetProfile, ptq: str) -> None:
    """A model whose full-int8 conversion is known to crash (layer_table.int8_crashes) on a target with no
    fallback would stop after training: refused here, before any."""
    if ptq != "int8" or target.runtime.format != "tflite" or target.fallback or source.kind == "architecture":
        return
    from .layer_table import int8_crashes

    crash = int8_crashes(source.model)
    if crash:
        raise InputError(f"{target.source or target.name}: TF 2.21's full-int8 converter crashes (SIGSEGV) on this "
                         f"model's {', '.join(crash)} layers, and target {target.name} has no fallback, so the build "
                         f"would stop after training. Fix: add --fallback dynamic (or fallback: [dynamic] in the "
                         f"target), or --ptq dynamic.")


def board_for(p: TargetProfile):
    """The target's board, checked before any training: reachable, known host key, accepted key, the right
    architecture, a Python with numpy and the runtime."""
    from .. import remote

    r = remote.for_target(p)
    where = f"{p.source or p.name}: device.remote"
    remote.probe(r, p.runtime.name, p.device.arch, where)
    return r


def validation_data(spec: ModelSpec, artifact: Path) -> tuple[np.ndarray, np.ndarray, list, list]:
    """(token ids, labels, label names, texts) of the spec's test split, plus the tokenizer, after checking that the artifact was built
    for this spec: the ``labels.txt`` and ``edgeopt_tokenizer.json`` beside it (when there) must be the spec's own, so an
    artifact is never scored against another dataset's labels or fed another vocabulary's ids."""
    from ..builddir import build_of
    from ..data.tokenizer import CONFIG, load_tokenizer
    from ..files import read_text_capped
    from ..sources import source_for
    from .prepare import load_spec_data, make_tokenizer, resolve_spec

    build_of(Path(artifact))  # in a build directory: every file in it checked against its manifest
    source = None
    if spec.model is not None and spec.model.path is not None:
        source = source_for(spec)
        spec = resolve_spec(spec, source)  # the file decides seq_len / max_vocab when the spec does not
    ds = load_spec_data(spec)
    tok = make_tokenizer(spec, ds, source)
    d = Path(artifact).parent
    fix = f"Fix: validate {Path(artifact).name} with the spec it was built from (see its manifest.json)."
    if (d / "labels.txt").is_file():
        labels = read_text_capped(d / "labels.txt", 16 << 20, "labels file", InputError).splitlines()
        if tuple(labels) != tuple(ds.label_names):
            raise InputError(f"{d / 'labels.txt'}: the artifact was built for {len(labels)} labels "
                             f"({', '.join(labels[:3])}, ...), not {spec.name}'s {ds.num_classes} "
                             f"({', '.join(ds.label_names[:3])}, ...). {fix}")
    if (d / CONFIG).is_file():
        own = load_tokenizer(d)
        if own.fingerprint() != tok.fingerprint():
            raise InputError(f"{d / CONFIG}: the artifact was built with another tokenizer (vocabulary "
                             f"{own.vocab_size}, seq_len {own.seq_len}) than {spec.name} gives (vocabulary "
                             f"{tok.vocab_size}, seq_len {tok.seq_len}). {fix}")
    # class ids, or a tagger's (sentences, seq_len) tag ids, -1 past each sentence's end
    return (tok.encode_batch(ds.test.texts), task_for(ds.task).labels(ds.test.labels, tok.seq_len),
            list(ds.label_names), list(ds.test.texts), tok)
