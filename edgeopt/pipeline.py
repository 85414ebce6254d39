"""plan -> passes (cached) -> convert -> validate on the artifact -> budgets -> build directory (atomic).

``plan()`` does every check that needs no computation (specs, targets, recipe order, the model's layers against
the passes, output locations), so bad input fails before any training. ``build()`` runs each target's pass
chain, sharing (in memory and on disk) every prefix the targets have in common, then converts and validates.
"""
from __future__ import annotations

import contextlib
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
from .errors import InputError, OutputError
from .recipe import Step, load_recipe_file, merge, resolve
from .registry import load_model_spec, load_target
from .specs import QUANTIZATIONS, ModelSpec, TargetProfile

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


STAGING_MARKER = ".edgeopt-staging"


def is_edgeopt_build(d: Path) -> bool:
    """True when ``d`` is a directory that `edgeopt build` wrote and nobody added to: its manifest.json is an
    edgeopt manifest and every entry in it is a file that manifest lists (or report.md)."""
    from .files import read_capped

    try:
        data = json.loads(read_capped(d / "manifest.json", 64 << 20, "manifest"))
        listed = {a["path"] for a in data["artifacts"]} | {"manifest.json", "report.md"}
        if not isinstance(data.get("edgeopt_version"), str):
            return False
        return all(e.name in listed and e.is_file() and not e.is_symlink() for e in d.iterdir())
    except (InputError, ValueError, KeyError, TypeError, OSError, RecursionError):
        return False


def _protected(out: Path) -> Optional[str]:
    """Why ``out`` may never be replaced, even with --force: it is (or holds) the working directory, home or /."""
    try:
        r, cwd = out.resolve(), Path.cwd().resolve()
    except OSError:
        return None
    if r == cwd or r in cwd.parents:
        return "it is the current directory or one that holds it"
    if r == Path.home().resolve() or r == Path(r.anchor):
        return "it is your home directory or the file system root"
    return None


def check_out_dir(out: Path, force: bool = False) -> None:
    """Refuse to replace anything but a new or empty directory or an edgeopt build (``force``: any directory,
    except the working directory, its parents, home and /). A build replaces its output directory whole."""
    why = _protected(out)
    if why:
        raise OutputError(f"--out {out}: {why}; a build replaces its output directory whole. Fix: give a new "
                          f"directory, e.g. --out build/{out.name or 'out'}.")
    if out.is_symlink():
        raise OutputError(f"{out}: is a symbolic link; edgeopt will not replace it. Fix: choose another --out.")
    if not out.is_dir():
        return  # absent (a file there is refused by _check_writable)
    entries = list(out.iterdir())
    if not entries or force or is_edgeopt_build(out):
        return
    names = ", ".join(repr(e.name) for e in sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
    raise OutputError(f"{out}: exists and is not an edgeopt build (it holds {names}); a build replaces its output "
                      f"directory whole. Fix: choose a new --out, or add --force to replace it.")


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
    from .architectures import LAYER_TYPES

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
            from .runtimes import require_onnx_stack

            require_onnx_stack()
        if p.runtime.format == "onnx":
            if steps[-1].name in QAT_STEPS:
                raise InputError(f"{where}: QAT ends in a TFLite int8 graph; {p.name} is an ONNX target. Fix: drop "
                                 f"--qat and use --ptq int8 (ONNX Runtime static quantization) or dynamic.")
            if final_ptq == "float16":
                raise InputError(f"{where}: float16 is for TFLite targets; {p.name} is an ONNX target. Fix: use "
                                 f"--ptq float32, dynamic or int8.")
        if steps[0].name == "distill" and teacher is None:
            from .teachers.minilm import MiniLMTeacher, is_minilm, model_dir

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
            from .emulator.validate import cpus_for

            emu = tuple(cpus_for(p))
        plans.append(TargetPlan(p, tuple(steps), final_ptq, d, p.representative_samples, formats == "both", emu,
                                force))
    if any(t.emulate for t in plans):
        from .emulator.validate import require_ready

        require_ready()  # before any training: the fix (emulator setup) is the user's
    return Plan(spec, tuple(plans), use_cache, teacher)


def fit_tokenizer(spec: ModelSpec, ds):
    """The spec's word tokenizer fitted on the training texts (deterministic: the same vocabulary every build)."""
    from .data import WordTokenizer

    from .errors import DataError

    tk = spec.tokenizer
    tok = WordTokenizer.fit(ds.train.texts, seq_len=tk.seq_len, max_vocab=tk.max_vocab, min_freq=tk.min_freq,
                            lowercase=tk.lowercase)
    if tok.vocab_size <= 2:
        raise DataError(f"dataset {ds.name!r}: the training texts hold no token (min_freq {tk.min_freq}); nothing "
                        f"can be learned. Fix: give training texts with words in them.")
    return tok


def tokenized_test(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(token ids, labels) of the spec's test split, encoded as a build of it encodes them."""
    from .data import load_dataset

    ds = load_dataset(spec.data)
    return fit_tokenizer(spec, ds).encode_batch(ds.test.texts), np.asarray(ds.test.labels)


def validation_data(spec: ModelSpec, artifact: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(token ids, labels, number of classes) of the spec's test split, after checking that the artifact was built
    for this spec: the ``labels.txt`` and ``tokenizer.json`` beside it (when there) must be the spec's own, so an
    artifact is never scored against another dataset's labels or fed another vocabulary's ids."""
    from .data import WordTokenizer, load_dataset
    from .files import read_text_capped

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


@dataclass
class BuildResult:
    out_dir: Path
    manifest: dict
    passed: bool
    failures: list = field(default_factory=list)


class _Builder:
    """State shared by the targets of one build: data, the pass-output memo, the disk cache, conversions."""

    def __init__(self, p: Plan, quiet: bool, latency: LatencySettings, parent: Optional["_Builder"] = None):
        """``parent``: share its data, cache, memo and conversions (a distillation teacher's builder)."""
        from .cache import ArtifactCache
        from .data import load_dataset
        from .tf import versions

        self.p, self.quiet, self.latency = p, quiet, latency
        spec = p.spec
        if parent is None:
            self.t_start = time.perf_counter()
            _log(quiet, f"[edgeopt] loading dataset for {spec.name}")
            self.ds = load_dataset(spec.data)
            from .passes import PASS_IMPL_VERSION

            self.versions = {"edgeopt": __version__, "passes": PASS_IMPL_VERSION, **versions()}
            self.cache = ArtifactCache(enabled=p.use_cache)
            self.memo: dict[str, tuple] = {}
            self.converted: dict[tuple, bytes] = {}
        else:
            for name in ("t_start", "ds", "versions", "cache", "memo", "converted"):
                setattr(self, name, getattr(parent, name))
        self.tok = fit_tokenizer(spec, self.ds)
        _log(quiet, f"[edgeopt] {self.ds.name} for {spec.name}: train {len(self.ds.train)} / dev {len(self.ds.dev)} / "
                    f"test {len(self.ds.test)}, {self.ds.num_classes} labels, vocab {self.tok.vocab_size}")
        self.x_test, self.y_test = self.tok.encode_batch(self.ds.test.texts), np.asarray(self.ds.test.labels)
        self.ctx = self._context(spec, self.tok)
        # the root of every cache key: everything the trained weights depend on
        self.root_key = self._root_key(spec, self.tok)

    def _context(self, spec, tok):
        from .architectures import build_model
        from .passes.common import PassContext

        cfg, n_cls = spec.architecture.config(), self.ds.num_classes
        return PassContext(
            x_train=tok.encode_batch(self.ds.train.texts), y_train=np.asarray(self.ds.train.labels, np.int32),
            x_dev=tok.encode_batch(self.ds.dev.texts), y_dev=np.asarray(self.ds.dev.labels, np.int32),
            rebuild=lambda: build_model(spec.architecture.name, cfg, vocab_size=tok.vocab_size, num_classes=n_cls,
                                        seq_len=tok.seq_len),
            seed=spec.training.seed, quiet=self.quiet)

    def _root_key(self, spec, tok) -> str:
        import hashlib

        from .cache import canonical

        prov = {k: v for k, v in self.ds.provenance.items() if k != "folder"}
        blob = canonical({"spec": spec.model_dump(mode="json", exclude={"name", "description"}), "data": prov,
                          "vocab": hashlib.sha256("\n".join(tok.vocab).encode()).hexdigest()})
        return hashlib.sha256(blob.encode()).hexdigest()[:24]

    # ----------------------------------------------------------------------------------------- passes
    def run_steps(self, steps) -> tuple[object, list, str, Optional[str]]:
        """Run (or fetch) each step; returns (final model, records, final key, key of the uncompressed model)."""
        from .cache import key as cache_key

        k, model, records, base_key = self.root_key, None, [], None
        for st in steps:
            if st.name.startswith("strip_"):
                records.append({"step": st.name, "note": st.note})
                continue
            cfg = st.config.model_dump(mode="json") if st.config is not None else {}
            k = cache_key(k, st.name, cfg, self.versions)
            if k in self.memo:
                model, meta = self.memo[k]
                cached = "memory"
            else:
                got = self.cache.load(k, self._rebuild_for(st.name, model))
                if got is not None:
                    model, meta = got
                    cached = "disk"
                    _log(self.quiet, f"[edgeopt] {st.name}: cache hit ({k})")
                else:
                    _log(self.quiet, f"[edgeopt] {st.name}: running")
                    t0 = time.perf_counter()
                    model, meta = self._run_pass(st, model)
                    meta["seconds"] = round(time.perf_counter() - t0, 1)
                    if st.name not in QAT_STEPS:
                        meta.update(self._measure_float(model, k))
                    self.cache.save(k, model, meta)
                    cached = False
                self.memo[k] = (model, meta)
            if st.name in ("train", "distill"):
                base_key = k
            records.append({"step": st.name, "note": st.note, "config": cfg, "cached": cached, "key": k, **meta})
        return model, records, k, base_key

    def _rebuild_for(self, step: str, parent):
        """The structure a cached step's weights fit. QAT variants are rebuilt from the parent pass output: the
        cluster-preserving schemes add variables only for layers that really are clustered."""
        if step not in QAT_STEPS:
            return self.ctx.rebuild

        def rebuild():
            from .passes.qat import quantize

            return quantize(parent, step)

        return rebuild

    def _run_pass(self, st: Step, model):
        from .passes import cluster, prune, qat, train

        if st.name == "train":
            r = train.train(self.p.spec, self.ds, self.tok, quiet=self.quiet)
            return r.model, {"epochs_run": r.epochs_run, "best_epoch": r.best_epoch,
                             "best_dev_accuracy": round(r.best_dev_accuracy, 6)}
        if st.name == "distill":
            return self._distill(st.config)
        if st.name == "prune":
            return prune.prune(model, self.ctx, st.config)
        if st.name == "cluster":
            return cluster.cluster(model, self.ctx, st.config)
        return qat.qat(model, self.ctx, st.config, st.name)

    def _distill(self, cfg):
        from .passes.distill import distill
        from .recipe import Step

        teacher = self.p.teacher
        _log(self.quiet, f"[edgeopt] distill: teacher {teacher.name}")
        if not hasattr(teacher, "data"):  # all-MiniLM-L6-v2: frozen encoder + linear head, on the raw texts
            from .teachers.minilm import teacher_logits

            logits, t_meta = teacher_logits(self.ds, self.cache.root.parent, self.p.use_cache, teacher.head,
                                            quiet=self.quiet)
            model, meta = distill(self.ctx, self.p.spec.training, cfg, logits)
            meta["teacher"] = {"name": teacher.name, "architecture": teacher.architecture.name,
                               "accuracy_keras": t_meta["accuracy_test"], **t_meta}
            return model, meta
        # the teacher: same data, its own spec, tokenizer and cache keys (trained once, then cached)
        sub = _Builder(Plan(teacher, (), self.p.use_cache), self.quiet, self.latency, parent=self)
        t_model, records, _, _ = sub.run_steps([Step("train")])
        logits = t_model.predict(sub.ctx.x_train, batch_size=256, verbose=0)
        model, meta = distill(self.ctx, self.p.spec.training, cfg, logits)
        meta["teacher"] = {"name": teacher.name, "architecture": teacher.architecture.name,
                           "accuracy_float32_tflite": records[0].get("accuracy"),
                           "size_bytes_float32": records[0].get("size_bytes")}
        return model, meta

    # ------------------------------------------------------------------------------------ measuring
    def representative(self, n: int) -> np.ndarray:
        rng = np.random.default_rng(self.p.spec.training.seed)
        return self.ctx.x_train[rng.permutation(len(self.ctx.x_train))[:n]]

    def convert(self, k: str, model, mode: str, n_rep: int, target: Optional[TargetProfile] = None) -> bytes:
        """The model as a file for ``target``'s format (TFLite when no target is given), memoized."""
        fmt = target.runtime.format if target is not None else "tflite"
        n_rep = n_rep if mode == "int8" else 0  # only int8 calibrates: part of the memo key there alone
        if fmt == "onnx":
            ox = target.onnx_settings
            ck = (k, "onnx", ox.opset, mode, ox.quant.model_dump_json() if mode != "float32" else "", n_rep)
            if ck not in self.converted:
                from .convert import onnx as onnx_conv

                fkey = (k, "onnx", ox.opset, "float32", "", 0)
                if fkey not in self.converted:
                    _log(self.quiet, f"[edgeopt] converting to ONNX (tf2onnx, opset {ox.opset})")
                    self.converted[fkey] = onnx_conv.to_onnx(model, ox.opset)
                if mode != "float32":
                    _log(self.quiet, f"[edgeopt] ONNX Runtime {mode} quantization")
                    self.converted[ck] = onnx_conv.quantize(self.converted[fkey], mode, ox.quant,
                                                            self.representative(n_rep) if mode == "int8" else None)
            return self.converted[ck]
        ck = (k, "tflite", mode, n_rep)
        if ck not in self.converted:
            from .convert.tflite import convert

            _log(self.quiet, f"[edgeopt] converting to TFLite {mode}")
            self.converted[ck] = convert(model, mode, self.representative(n_rep) if mode == "int8" else None)
        return self.converted[ck]

    def artifact_metrics(self, data: bytes, fmt: str = "tflite") -> dict:
        """Accuracy over the test split, size and structure, read from an exported file."""
        from . import runtimes
        from .validate.accuracy import accuracy
        from .validate.size import size_of_bytes

        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / f"m.{fmt}"
            path.write_bytes(data)
            logits = runtimes.load(path).run(self.x_test)
            structure = structure_of(path)
        size = size_of_bytes(data)
        return {"accuracy": round(accuracy(logits, self.y_test), 6), "size_bytes": size["size_bytes"],
                "gzip_bytes": size["gzip_bytes"], **structure}

    def _measure_float(self, model, k: str) -> dict:
        return {"artifact": "float32 export", **self.artifact_metrics(self.convert(k, model, "float32", 0))}


def _or_nan(x):
    return float("nan") if x is None else x


def structure_of(path: Path) -> dict:
    """What compression left in a file: weight sparsity/clusters (.tflite) or quantized node types (.onnx)."""
    if path.suffix == ".tflite":
        from .inspect import inspect_tflite, summarize_weights

        return {"weights": summarize_weights(inspect_tflite(path))}
    from .convert.onnx import quantized_node_types

    return {"quantized_nodes": quantized_node_types(path)}


def build(p: Plan, quiet: bool = False, latency: LatencySettings = LatencySettings()) -> list[BuildResult]:
    b = _Builder(p, quiet, latency)
    return [_build_target(b, tp) for tp in p.targets]


def _build_target(b: _Builder, tp: TargetPlan) -> BuildResult:
    from . import runtimes
    from .report import write_report
    from .validate import accuracy as acc_v
    from .validate import budgets as bud_v
    from .validate import latency as lat_v
    from .validate.size import size_of_bytes

    from .manifest import encode_correct, examples_sha256

    spec, ds, target, out = b.p.spec, b.ds, tp.target, tp.out_dir
    fmt = target.runtime.format
    model, records, k, base_key = b.run_steps(tp.steps)
    base_model = b.memo[base_key][0]
    baseline_bytes = b.convert(base_key, base_model, "float32", 0, target)
    compressed = len(tp.steps) > 1
    deployed_bytes = b.convert(k, model, tp.ptq, tp.representative_samples, target)
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
        if tp.ptq != "float32" or compressed:
            name = f"model_{tp.ptq}.{fmt}" if tp.ptq != "float32" else f"model_compressed_float32.{fmt}"
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
                from .errors import ConversionError

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
                              "quantization": "float32" if role == "baseline" else tp.ptq, "role": role,
                              **size_of_bytes(path.read_bytes())})
        dep_art = next(a for a in artifacts if a["role"] == "deployed")
        if compressed or fmt == "onnx":  # the convert step's record: the deployed file, measured above, and its
            records.append({"step": "convert", "note": f"{tp.ptq} .{fmt} (deployed)",  # structure read back
                            "accuracy": dep["accuracy"], "size_bytes": dep_art["size_bytes"],
                            "gzip_bytes": dep_art["gzip_bytes"], **structure_of(files["deployed"])})
        cross = _cross_format(b, tp, k, model, staging, dep["logits"]) if tp.cross_format else None
        if cross:
            artifacts.append({"path": cross["artifact"], "format": cross["format"], "quantization": cross["quantization"],
                              "role": "cross_format", **{k2: cross[k2] for k2 in ("sha256", "size_bytes", "gzip_bytes")}})
        emulated = None
        if tp.emulate:
            from .emulator.validate import validate_for_target

            emulated = validate_for_target(files["deployed"], b.x_test, b.y_test, target, spec.training.seed,
                                           cpus=list(tp.emulate), quiet=b.quiet)
        keras_finite = bool(np.isfinite(keras_logits).all() and np.isfinite(base_keras_logits).all())
        finite = {"keras model": keras_finite, files["baseline"].name: base["finite"],
                  files["deployed"].name: dep["finite"]}
        verdict = bud_v.check(target.budgets, accuracy=dep["accuracy"], accuracy_drop=drop,
                              size_bytes=dep_art["size_bytes"], latency_p90_ms=row.p90_ms if row else None,
                              export_agreement=_or_nan(base["parity_vs_keras"]["argmax_agreement"]), emulated=emulated,
                              finite=finite)
        train_rec = next(r for r in records if r["step"] in ("train", "distill"))
        manifest = {
            "model": spec.name, "target": target.name, "edgeopt_version": __version__, "versions": b.versions,
            "seed": spec.training.seed,
            "recipe": {"passes": tp.pass_names, "steps": [st.describe() for st in tp.steps],
                       "convert": {"format": fmt, "quantization": tp.ptq,
                                   "batch": 1 if fmt == "tflite" else "dynamic",
                                   "representative_samples": tp.representative_samples if tp.ptq == "int8" else 0,
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
        from .manifest import dump_manifest

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


def _cross_format(b: _Builder, tp: TargetPlan, k: str, model, staging: Path, deployed_logits) -> dict:
    """Export the other format from the same weights (same quantization where it exists there) and compare."""
    from . import runtimes
    from .specs import OnnxSpec, RuntimeSpec
    from .validate.accuracy import accuracy, parity
    from .validate.size import size_of_bytes

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


@contextlib.contextmanager
def dir_lock(d: Path, quiet: bool = True):
    """An exclusive flock on directory ``d`` itself (no lock file is left behind): serializes the replace of a build
    and the clean-up of stale staging directories between edgeopt processes writing in the same place. A second
    process waits, and says what it waits for."""
    import fcntl

    fd = os.open(d, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(quiet, f"[edgeopt] waiting: another edgeopt process is writing a build in {d}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out: Path) -> list[Path]:
    """Remove what killed builds of ``out`` left beside it: staging directories (``.NAME.tmp-PID-*``, still
    carrying edgeopt's marker file) and moved-aside old builds (``.NAME.old-PID``) whose process is gone."""
    import re

    pat = re.compile(rf"^\.{re.escape(out.name)}\.(tmp|old)-(\d+)(-.*)?$")
    removed = []
    for e in out.parent.iterdir():
        m = pat.match(e.name)
        if not m or not e.is_dir() or e.is_symlink() or _pid_alive(int(m.group(2))):
            continue
        ours = (e / STAGING_MARKER).is_file() if m.group(1) == "tmp" else is_edgeopt_build(e)
        if ours:
            shutil.rmtree(e, ignore_errors=True)
            removed.append(e)
    return removed


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
