"""Planning: every check that needs no computation (specs, targets, recipe order, the model's layers against the
passes, output locations), so bad input fails before any training; and the test data a spec gives.
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError, OutputError
from ..recipe import Step, load_recipe_file, merge, resolve
from ..registry import load_model_spec, load_target
from ..specs import QUANTIZATIONS, ModelSpec, TargetProfile
from .outdir import check_out_dir

LATENCY_INPUTS = 64
QAT_STEPS = ("qat", "pqat", "cqat", "pcqat")


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

    @property
    def pass_names(self) -> list[str]:
        return [s.name for s in self.steps]

    def describe_steps(self) -> list[str]:
        s = [st.describe() for st in self.steps]
        qat = self.steps[-1].name in QAT_STEPS
        extra = f", representative dataset: {self.representative_samples} training texts" if self.ptq == "int8" else ""
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

    def to_dict(self) -> dict:
        s = self.spec
        return {"model": s.name, "source": s.source, "dataset": s.data.dataset or "files",
                "architecture": s.architecture.model_dump(), "tokenizer": s.tokenizer.model_dump(),
                "training": s.training.model_dump(), "cache": self.use_cache,
                "targets": [{"target": t.target.name, "out": str(t.out_dir), "passes": t.pass_names, "ptq": t.ptq,
                             "steps": t.describe_steps(), "emulate": list(t.emulate)} for t in self.targets]}

    def describe(self) -> str:
        s, tr = self.spec, self.spec.training
        lines = [f"plan for model {s.name} ({s.architecture.name}, dataset {s.data.dataset or 'user files'})"
                 + ("" if self.use_cache else ", cache off"),
                 f"  data: word tokenizer (seq_len {s.tokenizer.seq_len}, max_vocab {s.tokenizer.max_vocab}); "
                 f"training up to {tr.epochs} epochs, batch {tr.batch_size}, lr {tr.learning_rate}, early stop on dev "
                 f"accuracy (patience {tr.patience}), seed {tr.seed}"]
        for t in self.targets:
            lines.append(f"  target {t.target.name}: runtime {t.target.runtime.name}, "
                         f"{t.target.runtime.threads} threads, out {t.out_dir}")
            lines += [f"    {i}. {step}" for i, step in enumerate(t.describe_steps(), 1)]
            if t.emulate:
                lines.append(f"    then: emulated validation on qemu {', '.join(t.emulate)}")
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
         use_cache: bool = True, formats: str = "target", emulate: bool = False, force: bool = False) -> Plan:
    from ..architectures import LAYER_TYPES

    if out is not None and not str(out).strip():
        raise InputError("--out is empty. Fix: give a directory, e.g. --out build/my-model.")

    spec = model if isinstance(model, ModelSpec) else load_model_spec(model)
    profiles = [t if isinstance(t, TargetProfile) else load_target(t) for t in targets]
    if not profiles:
        raise InputError("no target given. Fix: add --target NAME (see `edgeopt targets list`).")
    if ptq is not None and ptq not in QUANTIZATIONS:
        raise InputError(f"--ptq {ptq!r} is not a quantization; choose one of {', '.join(QUANTIZATIONS)}.")
    names = [p.name for p in profiles]
    if len(set(names)) != len(names):
        raise InputError(f"target given twice: {names}. Fix: name each target once.")
    recipe_file = load_recipe_file(recipe) if recipe else None
    layer_types = LAYER_TYPES[spec.architecture.name]
    teacher = None
    plans = []
    for p in profiles:
        sources = [(f"target {p.name} recipe", p.recipe), (str(recipe), recipe_file)]
        chain, chosen_ptq = merge(sources, passes or {}, ptq)
        where = f"recipe for {spec.name} on {p.name}"
        steps, final_ptq = resolve(chain, chosen_ptq or p.quantization, layer_types, where)
        if p.runtime.format == "onnx" or formats == "both":
            from ..runtimes import require_onnx_stack

            require_onnx_stack()
        if p.runtime.format == "onnx":
            if steps[-1].name in QAT_STEPS:
                raise InputError(f"{where}: QAT ends in a TFLite int8 graph; {p.name} is an ONNX target. Fix: drop "
                                 f"--qat and use --ptq int8 (ONNX Runtime static quantization) or dynamic.")
            if final_ptq == "float16":
                raise InputError(f"{where}: float16 is for TFLite targets; {p.name} is an ONNX target. Fix: use "
                                 f"--ptq float32, dynamic or int8.")
        if steps[0].name == "distill" and teacher is None:
            from ..teachers.minilm import MiniLMTeacher, is_minilm, model_dir

            if is_minilm(steps[0].config.teacher):
                model_dir()  # fails here, before any training, when the package is missing
                teacher = MiniLMTeacher()
            else:
                teacher = load_model_spec(steps[0].config.teacher)
            if not isinstance(teacher, MiniLMTeacher) and teacher.data.model_dump() != spec.data.model_dump():
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
        emu = ()
        if emulate and p.device.arch == "arm64":
            from ..emulator.validate import cpus_for

            emu = tuple(cpus_for(p))
        plans.append(TargetPlan(p, tuple(steps), final_ptq, d, p.representative_samples, formats == "both", emu,
                                force))
    if any(t.emulate for t in plans):
        from ..emulator.validate import require_ready

        require_ready()  # before any training: the fix (emulator setup) is the user's
    return Plan(spec, tuple(plans), use_cache, teacher)


def fit_tokenizer(spec: ModelSpec, ds):
    """The spec's word tokenizer fitted on the training texts (deterministic: the same vocabulary every build)."""
    from ..data import WordTokenizer

    from ..errors import DataError

    tk = spec.tokenizer
    tok = WordTokenizer.fit(ds.train.texts, seq_len=tk.seq_len, max_vocab=tk.max_vocab, min_freq=tk.min_freq,
                            lowercase=tk.lowercase)
    if tok.vocab_size <= 2:
        raise DataError(f"dataset {ds.name!r}: the training texts hold no token (min_freq {tk.min_freq}); nothing "
                        f"can be learned. Fix: give training texts with words in them.")
    return tok


def validation_data(spec: ModelSpec, artifact: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(token ids, labels, number of classes) of the spec's test split, after checking that the artifact was built
    for this spec: the ``labels.txt`` and ``tokenizer.json`` beside it (when there) must be the spec's own, so an
    artifact is never scored against another dataset's labels or fed another vocabulary's ids."""
    from ..data import WordTokenizer, load_dataset
    from ..files import read_text_capped

    ds = load_dataset(spec.data)
    tok = fit_tokenizer(spec, ds)
    d = Path(artifact).parent
    fix = f"Fix: validate {Path(artifact).name} with the spec it was built from (see its manifest.json)."
    if (d / "labels.txt").is_file():
        labels = read_text_capped(d / "labels.txt", 16 << 20, "labels file", InputError).splitlines()
        if tuple(labels) != tuple(ds.label_names):
            raise InputError(f"{d / 'labels.txt'}: the artifact was built for {len(labels)} labels "
                             f"({', '.join(labels[:3])}, ...), not {spec.name}'s {ds.num_classes} "
                             f"({', '.join(ds.label_names[:3])}, ...). {fix}")
    if (d / "tokenizer.json").is_file():
        own = WordTokenizer.load(d)
        if own.vocab != tok.vocab or own.seq_len != tok.seq_len or own.lowercase != tok.lowercase:
            raise InputError(f"{d / 'tokenizer.json'}: the artifact was built with another tokenizer (vocabulary "
                             f"{own.vocab_size}, seq_len {own.seq_len}) than {spec.name} gives (vocabulary "
                             f"{tok.vocab_size}, seq_len {tok.seq_len}). {fix}")
    return tok.encode_batch(ds.test.texts), np.asarray(ds.test.labels), ds.num_classes


def _log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)
