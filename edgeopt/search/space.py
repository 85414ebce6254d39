"""The search space of a tune, read from the target profile: a candidate is a runtime (and its format), a
quantization, XNNPACK on or off, a thread count, and a compression recipe (pruning with its sparsity and schedule
or 2:4, clustering with its cluster count, QAT, a distillation teacher).

The conversion-only part (no training: runtime x quantization x XNNPACK x threads) is small and enumerated in
full first; the training part is sampled. Parameters are Optuna's define-by-run ones: a dimension that does not
apply (the cluster count without clustering, XNNPACK on ONNX Runtime) is not suggested at all, so the samplers
never see a meaningless value. Nothing here imports TensorFlow or Optuna at module level.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Optional

from ..specs import TargetProfile

FORMATS = {"litert": "tflite", "onnxruntime": "onnx"}
QUANT_BY_FORMAT = {"tflite": ("float32", "dynamic", "int8", "float16", "int16x8"),
                   "onnx": ("float32", "dynamic", "int8")}
COMPRESSIONS = ("none", "prune", "prune_2:4", "cluster", "prune_cluster")
SPARSITY = (0.3, 0.9, 0.1)  # low, high, step
SCHEDULES = ("polynomial", "constant")
CLUSTERS = (8, 16, 32, 64)


@dataclass(frozen=True)
class Candidate:
    """One point of the space. ``compression``: "none", "prune", "prune_2:4", "cluster" or "prune_cluster", with
    ``sparsity``/``schedule`` (prune) and ``clusters`` (cluster); ``qat``: quantization-aware training (int8
    TFLite only); ``teacher``: train by distillation from this teacher instead of from the labels."""

    runtime: str
    quantization: str
    xnnpack: bool
    threads: int
    compression: str = "none"
    sparsity: Optional[float] = None
    schedule: Optional[str] = None
    clusters: Optional[int] = None
    qat: bool = False
    teacher: Optional[str] = None
    # the model's size (``tune --sizes``): the tokenizer's vocabulary cap, the embedding width, the layer width
    # (filters or units); None: the spec's own
    max_vocab: Optional[int] = None
    embed_dim: Optional[int] = None
    width: Optional[int] = None

    @property
    def format(self) -> str:
        return FORMATS[self.runtime]

    @property
    def sized(self) -> bool:
        return any(v is not None for v in (self.max_vocab, self.embed_dim, self.width))

    @property
    def trains(self) -> bool:
        """Needs training beyond the reference model (the expensive part of the space)."""
        return self.compression != "none" or self.qat or self.teacher is not None or self.sized

    def spec_for(self, spec):
        """``spec`` with this candidate's model size (itself when the candidate keeps the spec's)."""
        if not self.sized:
            return spec
        params = {k: v for k, v in (("embed_dim", self.embed_dim),
                                    (WIDTH_PARAM[spec.architecture.name], self.width)) if v is not None}
        return spec.resized(self.max_vocab, **params)

    def passes(self) -> dict:
        """The pass configs, keyed by pass name, as `edgeopt.plan(passes=...)` takes them."""
        from ..recipe import ClusterConfig, DistillConfig, PruneConfig, QATConfig

        out = {}
        if self.teacher:
            out["distill"] = DistillConfig(teacher=self.teacher)
        if self.compression in ("prune", "prune_cluster"):
            out["prune"] = PruneConfig(sparsity=self.sparsity, schedule=self.schedule)
        if self.compression == "prune_2:4":
            out["prune"] = PruneConfig(sparsity=0.5, m_by_n=(2, 4))
        if self.compression in ("cluster", "prune_cluster"):
            out["cluster"] = ClusterConfig(clusters=self.clusters)
        if self.qat:
            out["qat"] = QATConfig()
        return out

    def label(self) -> str:
        parts = [f"{self.runtime} {self.quantization}"]
        if self.runtime == "litert":
            parts.append("XNNPACK" if self.xnnpack else "no XNNPACK")
        parts.append(f"{self.threads} thread{'s' * (self.threads > 1)}")
        comp = []
        if self.teacher:
            comp.append(f"distill {self.teacher}")
        if self.compression in ("prune", "prune_cluster"):
            comp.append(f"prune {self.sparsity:g} {self.schedule}")
        if self.compression == "prune_2:4":
            comp.append("prune 2:4")
        if self.compression in ("cluster", "prune_cluster"):
            comp.append(f"cluster {self.clusters}")
        if self.qat:
            comp.append("QAT")
        size = ""
        if self.sized:
            size = " [" + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (
                ("vocabulary", self.max_vocab), ("embedding", self.embed_dim), ("width", self.width))
                if v is not None) + "]"
        return ", ".join(parts) + (" + " + " + ".join(comp) if comp else "") + size

    def to_params(self, space: "Space") -> dict:
        """The Optuna parameters that define this candidate in ``space`` (the names `Space.suggest` uses)."""
        p = {"runtime": self.runtime, f"quantization_{self.format}": self.quantization}
        if self.runtime == "litert":
            p["xnnpack"] = self.xnnpack
        p["threads"] = self.threads
        if not self.trains:
            return p
        if space.offers_qat(self):
            p["qat"] = self.qat
        if space.teachers:
            p["teacher"] = self.teacher or "none"
        for k, v in space.sizes.items():
            p[k] = getattr(self, k) if getattr(self, k) is not None else v[0]
        p[_compression_param(self.qat or self.teacher is not None or space.resized(self))] = self.compression
        if self.compression in ("prune", "prune_cluster"):
            p["sparsity"], p["schedule"] = self.sparsity, self.schedule
        if self.compression in ("cluster", "prune_cluster"):
            p["clusters"] = self.clusters
        return p

    @classmethod
    def from_dict(cls, d: dict) -> "Candidate":
        """The candidate a :meth:`to_dict` record describes (its derived keys, label and format, are dropped)."""
        return cls(**{k: v for k, v in d.items() if k not in ("label", "format")})

    def to_dict(self) -> dict:
        return {"runtime": self.runtime, "format": self.format, "quantization": self.quantization,
                "xnnpack": self.xnnpack, "threads": self.threads, "compression": self.compression,
                "sparsity": self.sparsity, "schedule": self.schedule, "clusters": self.clusters, "qat": self.qat,
                "teacher": self.teacher, "max_vocab": self.max_vocab, "embed_dim": self.embed_dim,
                "width": self.width, "label": self.label()}

    def profile(self, target: TargetProfile) -> TargetProfile:
        """``target`` running this candidate: its runtime, format, quantization, XNNPACK setting and threads, no
        fallback and no recipe of its own (the candidate's passes are given to the plan). Validated again as a
        whole, so a candidate can never produce a profile `targets check` would refuse."""
        d = target.model_dump(mode="json", exclude={"recipe", "fallback"})
        d["runtime"] = {"name": self.runtime, "format": self.format, "threads": self.threads,
                        "delegates": (["xnnpack"] if self.xnnpack else [])
                        + (["gpu"] if self.runtime == "litert" and target.uses_gpu else [])}
        d["quantization"] = self.quantization
        if self.format == "onnx":
            d["onnx"] = d.get("onnx") or {}
            d["clients"] = []
        else:
            d["onnx"] = None
        prof = TargetProfile.model_validate(d)
        return prof.model_copy(update={"source": target.source})


def _compression_param(may_be_none: bool) -> str:
    """Two names for the compression dimension: its choices differ (with or without "none"), and Optuna keeps one
    distribution per name."""
    return "compression_or_none" if may_be_none else "compression"


@dataclass(frozen=True)
class Space:
    """What a target lets a tune choose, and what it costs."""

    runtimes: tuple[str, ...]
    quantizations: dict  # format -> modes
    xnnpack: tuple[bool, ...]  # LiteRT only
    threads: tuple[int, ...]
    compressions: tuple[str, ...]
    teachers: tuple[str, ...]
    qat: bool
    preset: Candidate
    signal: str  # "instructions" | "host_latency" | "device_latency"
    notes: list = field(default_factory=list)
    # ``tune --sizes``: choices for Candidate.max_vocab / embed_dim / width (the spec's own value first)
    sizes: dict = field(default_factory=dict)

    def resized(self, c: Candidate) -> bool:
        """``c``'s size differs from the spec's own (so it trains even without a compression pass)."""
        return any(getattr(c, k) is not None and getattr(c, k) != v[0] for k, v in self.sizes.items())

    # ------------------------------------------------------------------ enumerating and sampling
    def conversion_grid(self) -> list[Candidate]:
        """Every candidate that needs no training, the preset first."""
        out = [self.preset] if not self.preset.trains else []
        for rt in self.runtimes:
            fmt = FORMATS[rt]
            xnn = self.xnnpack if rt == "litert" else (False,)
            for q, x, t in itertools.product(self.quantizations[fmt], xnn, self.threads):
                c = Candidate(rt, q, x, t)
                if c not in out:
                    out.append(c)
        return out

    def offers_qat(self, c: Candidate) -> bool:
        return self.qat and c.runtime == "litert" and c.quantization == "int8"

    def suggest(self, trial, training: bool) -> Candidate:
        """A candidate from an Optuna trial (define-by-run: only the dimensions that apply are suggested). A
        ``training`` candidate always trains (QAT, a teacher, or a compression pass): the conversion-only ones are
        the grid's, evaluated in full before any sampling."""
        rt = trial.suggest_categorical("runtime", list(self.runtimes))
        fmt = FORMATS[rt]
        q = trial.suggest_categorical(f"quantization_{fmt}", list(self.quantizations[fmt]))
        x = trial.suggest_categorical("xnnpack", list(self.xnnpack)) if rt == "litert" else False
        t = trial.suggest_categorical("threads", list(self.threads))
        if not training:
            return Candidate(rt, q, x, t)
        qat = (trial.suggest_categorical("qat", [False, True]) if self.offers_qat(Candidate(rt, q, x, t))
               else False)
        teacher = trial.suggest_categorical("teacher", ["none", *self.teachers]) if self.teachers else "none"
        size = {k: trial.suggest_categorical(k, list(v)) for k, v in self.sizes.items()}
        resized = self.resized(Candidate(rt, q, x, t, **size))
        some = qat or teacher != "none" or resized  # something trains already: compression may be none
        comp = trial.suggest_categorical(_compression_param(some), [c for c in self.compressions
                                                                    if some or c != "none"])
        sp = sch = cl = None
        if comp in ("prune", "prune_cluster"):
            lo, hi, step = SPARSITY
            sp = round(trial.suggest_float("sparsity", lo, hi, step=step), 2)
            sch = trial.suggest_categorical("schedule", list(SCHEDULES))
        if comp in ("cluster", "prune_cluster"):
            cl = trial.suggest_categorical("clusters", list(CLUSTERS))
        return Candidate(rt, q, x, t, comp, sp, sch, cl, qat, None if teacher == "none" else teacher, **size)

    def describe(self) -> list[str]:
        grid = self.conversion_grid()
        lines = [f"runtimes: {', '.join(f'{r} (.{FORMATS[r]})' for r in self.runtimes)}"]
        for fmt, qs in self.quantizations.items():
            if any(FORMATS[r] == fmt for r in self.runtimes):
                lines.append(f"quantization ({fmt}): {', '.join(qs)}")
        if "litert" in self.runtimes:
            lines.append(f"XNNPACK (LiteRT): {', '.join('on' if x else 'off' for x in self.xnnpack)}")
        lines.append(f"threads: {', '.join(map(str, self.threads))}"
                     + (" (the target's; the cost is an instruction count at batch 1 on one thread, so threads are "
                        "not searched)" if self.signal == "instructions" else ""))
        lines.append(f"compression: {', '.join(self.compressions)}; prune sparsity {SPARSITY[0]}-{SPARSITY[1]} step "
                     f"{SPARSITY[2]}, schedule {'/'.join(SCHEDULES)}, 2:4; clusters {'/'.join(map(str, CLUSTERS))}"
                     + ("; QAT (TFLite int8)" if self.qat else ""))
        lines.append(f"distillation teachers: {', '.join(self.teachers) or 'none (give --teacher or tune.teachers)'}")
        if self.sizes:
            lines.append("model size: " + "; ".join(f"{SIZE_LABELS[k]} {'/'.join(map(str, v))}"
                                                    for k, v in self.sizes.items()) + " (the spec's own first)")
        lines.append(f"preset (the target's own choice): {self.preset.label()}")
        lines.append(f"conversion-only grid: {len(grid)} candidates, evaluated first")
        return lines + self.notes


WIDTH_PARAM = {"text_cnn": "filters", "bilstm": "units", "transformer": "ff_dim", "cnn_tagger": "filters",
               "bilstm_tagger": "units"}
SIZE_LABELS = {"max_vocab": "vocabulary cap", "embed_dim": "embedding width", "width": "layer width"}


def sizes_for(spec) -> dict:
    """``tune --sizes``: for a built-in architecture with a fitted vocabulary, the vocabulary cap (the spec's, a half,
    a quarter; at least 1,000), the embedding width (the spec's, three quarters, a half) and the layer width (the
    spec's, a half, double): each a categorical choice, the spec's own first."""
    from ..errors import InputError

    where = spec.source or spec.name
    if not spec.resizable:
        raise InputError(f"{where}: tune --sizes chooses a built-in architecture's vocabulary and widths, and this "
                         f"model's are fixed (a model file, a builder, a pretrained table or a given vocabulary). "
                         f"Fix: drop --sizes.")
    cfg = spec.architecture.config()
    heads = getattr(cfg, "num_heads", 1) or 1

    def uniq(vals):
        return tuple(dict.fromkeys(v for v in vals if v >= 1))

    v0, e0 = spec.tokenizer.max_vocab, cfg.embed_dim
    w0 = getattr(cfg, WIDTH_PARAM[spec.architecture.name])
    return {"max_vocab": uniq([v0] + [v for v in (v0 // 2, v0 // 4) if v >= 1000]),
            "embed_dim": uniq([e0] + [d for d in (e0 * 3 // 4, e0 // 2) if d >= 8 and d % heads == 0]),
            "width": uniq([w0, max(1, w0 // 2), min(4096, w0 * 2)])}


def space_for(target: TargetProfile, teachers: tuple[str, ...] = (), on_device: bool = False,
              host_cost: bool = False, sizes: Optional[dict] = None) -> Space:
    """The space a target allows: its own runtime plus ``tune.runtimes``; ``tune.quantizations`` (default every
    mode the format has); XNNPACK on/off where LiteRT runs with it; threads searched only where the cost is a
    latency (instruction counts are per inference on one thread)."""
    t, ts = target, target.tune
    runtimes = tuple(dict.fromkeys([t.runtime.name, *ts.runtimes]))
    quants = {}
    for fmt in ("tflite", "onnx"):
        allowed = QUANT_BY_FORMAT[fmt]
        quants[fmt] = tuple(q for q in (ts.quantizations or allowed) if q in allowed)
    from ..validate.cost import tune_signal

    signal = tune_signal(t, on_device, host_cost)
    threads = tuple(sorted(set(ts.threads or (1,)) | {t.runtime.threads})) if signal != "instructions" else (
        t.runtime.threads,)
    xnn = (True, False) if "xnnpack" in t.runtime.delegates or t.runtime.name != "litert" else (False,)
    preset_q = t.quantization
    rec = dict(t.recipe.parsed()) if t.recipe is not None else {}
    if t.recipe is not None and t.recipe.ptq:
        preset_q = t.recipe.ptq
    comp = "none"
    sp = sch = cl = None
    if "prune" in rec:
        pc = rec["prune"]
        comp, sp, sch = ("prune_2:4", None, None) if pc.m_by_n else ("prune", pc.sparsity, pc.schedule)
    if "cluster" in rec:
        comp, cl = ("prune_cluster" if comp == "prune" else "cluster"), rec["cluster"].clusters
    teacher = rec["distill"].teacher if "distill" in rec else None
    preset = Candidate(t.runtime.name, "int8" if "qat" in rec else preset_q, "xnnpack" in t.runtime.delegates,
                       t.runtime.threads, comp, sp, sch, cl, "qat" in rec, teacher)
    if preset.quantization not in quants[preset.format]:  # the preset is always a candidate
        quants[preset.format] = (preset.quantization, *quants[preset.format])
    notes = []
    if signal == "instructions" and t.device.arch != "x86_64" and not t.device.qemu_cpu:
        from ..errors import InputError

        raise InputError(f"tune: target {t.name} is arm64 but names no emulated CPU to count the cost on. Fix: add "
                         f"device.qemu_cpu to {t.source or t.name}.")
    teachers = tuple(dict.fromkeys([*ts.teachers, *teachers]))
    for name in teachers:  # each one loaded now, as `build --distill` does: an unknown one fails the plan
        from ..registry import load_model_spec
        from ..recipe import is_minilm

        if not is_minilm(name):
            load_model_spec(name)
    return Space(runtimes, quants, xnn, threads, COMPRESSIONS, teachers, "litert" in runtimes
                 and "int8" in quants["tflite"], preset, signal, notes, dict(sizes or {}))
