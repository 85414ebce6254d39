"""Recipes: the ordered compression passes and the conversion, as data; and the planner that resolves them.

A recipe comes from the target (``recipe:`` in its YAML), a recipe file (``--recipe FILE``), or CLI flags
(``--prune``, ``--cluster``, ``--qat``, ``--distill``, ``--ptq``), later ones overriding earlier ones. The
planner checks the order and the model's layers *before* any training, picks the collaborative QAT variant
(prune-preserving after prune, cluster-preserving after cluster, both after both) and inserts the strip steps.
Nothing here imports TensorFlow.
"""
from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import Literal, Optional

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .errors import SpecError, suggest
from .schema import Frozen as _Frozen
from .schema import parse_file

Quantization = Literal["float32", "dynamic", "int8", "float16", "int16x8"]
QUANTIZATIONS: tuple[str, ...] = typing.get_args(Quantization)
QAT_STEPS = ("qat", "pqat", "cqat", "pcqat")  # the quantization-aware steps (their graph converts to TFLite only)


class LayerSelect(_Frozen):
    """Which layers a pass touches: all it supports (default), or by Keras class name and/or a name regex."""

    types: Optional[tuple[str, ...]] = None  # e.g. [Dense, Conv1D]
    names: Optional[str] = None  # regex matched against layer names, e.g. "conv.*|logits"

    @field_validator("names")
    @classmethod
    def _regex(cls, v):
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression ({e})") from None
        return v


class SelfDistill(_Frozen):
    """A fine-tune that learns from the pass's input model as well as from the labels: loss = alpha * T^2 *
    KL(softmax(input model / T) || softmax(model / T)) + (1 - alpha) * CE(labels, model), per real token for a
    tagger. Compression then recovers the function it starts from rather than refitting the labels."""

    alpha: float = Field(default=0.9, ge=0, le=1)  # weight of the input model's soft targets
    temperature: float = Field(default=2.0, gt=0, le=1000)


class FineTune(_Frozen):
    epochs: int = Field(default=3, ge=1, le=10_000)
    learning_rate: float = Field(default=3e-4, gt=0, le=10)
    batch_size: int = Field(default=64, ge=1, le=65_536)
    self_distill: Optional[SelfDistill] = None


class PruneConfig(FineTune):
    sparsity: float = Field(default=0.5, gt=0, lt=1)
    schedule: Literal["polynomial", "constant"] = "polynomial"
    initial_sparsity: float = Field(default=0.0, ge=0, lt=1)  # polynomial only
    begin_step: int = Field(default=0, ge=0, le=10**9)
    end_step: Optional[int] = Field(default=None, ge=1, le=10**9)  # default: 70% of the fine-tuning steps
    frequency: Optional[int] = Field(default=None, ge=1, le=10**9)  # default: a tenth of the pruning window
    m_by_n: Optional[tuple[int, int]] = None  # structured sparsity: [2, 4] = 2 of every 4 consecutive weights zero
    layers: LayerSelect = LayerSelect()

    @model_validator(mode="after")
    def _check(self):
        if self.m_by_n is not None:
            m, n = self.m_by_n
            if not (0 < m < n):
                raise ValueError("m_by_n must be [m, n] with 0 < m < n, e.g. [2, 4]")
        if self.schedule == "polynomial" and self.initial_sparsity >= self.sparsity:
            raise ValueError("initial_sparsity must be below sparsity")
        if self.end_step is not None and self.end_step <= self.begin_step:
            raise ValueError("end_step must be after begin_step")
        return self


class ClusterConfig(FineTune):
    clusters: int = Field(default=16, ge=2, le=256)
    init: Literal["kmeans++", "linear", "density", "random"] = "kmeans++"
    preserve_sparsity: Optional[bool] = None  # default: True when the model was pruned first
    layers: LayerSelect = LayerSelect()


class QATConfig(FineTune):
    epochs: int = Field(default=2, ge=1, le=10_000)
    learning_rate: float = Field(default=1e-4, gt=0, le=10)


# all-MiniLM-L6-v2, the built-in teacher (teachers/minilm.py), and the names it is given by
MINILM = "all-MiniLM-L6-v2"
MINILM_ALIASES = frozenset({"all-minilm-l6-v2", "minilm", "sentence-transformers/all-minilm-l6-v2"})


def is_minilm(name: str) -> bool:
    return name.strip().lower() in MINILM_ALIASES


class TransferConfig(_Frozen):
    """The transfer set (passes/transfer.py): what the student learns from the teacher's outputs besides the
    training texts. ``copies`` augmented copies of each training text (Tang et al. 2019): each word masked with
    probability ``mask``, else replaced by one of its ``neighbours`` nearest words with probability ``replace``;
    then, with probability ``ngram``, the copy cut to a window of 1 to ``ngram_max`` words. ``unlabeled``: a text
    file, one in-domain text a line (no labels: the teacher labels them)."""

    copies: int = Field(default=4, ge=0, le=100)
    mask: float = Field(default=0.1, ge=0, le=1)
    replace: float = Field(default=0.1, ge=0, le=1)
    ngram: float = Field(default=0.25, ge=0, le=1)
    ngram_max: int = Field(default=5, ge=1, le=64)
    neighbours: int = Field(default=8, ge=1, le=100)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    unlabeled: Optional[str] = None
    max_unlabeled: int = Field(default=200_000, ge=1, le=10_000_000)

    @model_validator(mode="after")
    def _check(self):
        if self.mask + self.replace > 1:
            raise ValueError("mask + replace must be at most 1 (each word is masked, replaced or kept)")
        if self.copies == 0 and self.unlabeled is None:
            raise ValueError("an empty transfer set: set copies above 0 or give unlabeled: FILE")
        return self


class TeacherFineTune(_Frozen):
    """all-MiniLM-L6-v2 fine-tuned end to end (encoder and head) on the task before it teaches: the head starts
    from the frozen encoder's trained linear head; Adam with a linear decay to zero; the epoch with the best dev
    accuracy is kept."""

    epochs: int = Field(default=3, ge=1, le=100)
    learning_rate: float = Field(default=5e-5, gt=0, le=1)
    batch_size: int = Field(default=32, ge=1, le=4096)
    max_len: int = Field(default=64, ge=8, le=512)  # word pieces per text, [CLS] and [SEP] included
    seed: int = Field(default=7, ge=0, le=2**31 - 1)
    dropout: float = Field(default=0.0, ge=0, lt=1)  # BERT's dropout while fine-tuning (it was trained with 0.1)


class DistillConfig(_Frozen):
    teacher: str  # a ModelSpec name/path (trained first, cached), all-MiniLM-L6-v2, or an ONNX classifier file
    temperature: float = Field(default=4.0, gt=0, le=1000)
    alpha: float = Field(default=0.5, ge=0, le=1)  # weight of the soft (teacher) loss; 1 - alpha on the labels
    epochs: Optional[int] = Field(default=None, ge=1, le=10_000)  # default: the student spec's training epochs
    transfer: Optional[TransferConfig] = None  # augmented copies and unlabeled texts the teacher labels
    fine_tune_teacher: Optional[TeacherFineTune] = None  # all-MiniLM-L6-v2 only: fine-tuned end to end first
    # an ONNX teacher: its label names in output order (a list, or a file with one a line); default: the
    # id2label of a config.json beside the .onnx file
    teacher_labels: Optional[typing.Union[tuple[str, ...], str]] = None
    teacher_tokenizer: Optional[str] = None  # an ONNX teacher's tokenizer.json (default: beside the .onnx file)

    @field_validator("teacher")
    @classmethod
    def _canonical_teacher(cls, v: str) -> str:
        return MINILM if is_minilm(v) else v

    @model_validator(mode="after")
    def _teacher_options(self):
        if self.fine_tune_teacher is not None and self.teacher != MINILM:
            raise ValueError(f"fine_tune_teacher is for teacher {MINILM}; a spec teacher trains on the task already "
                             f"and an ONNX teacher is used as it is")
        onnx = self.teacher.lower().endswith(".onnx")
        for name in ("teacher_labels", "teacher_tokenizer"):
            if getattr(self, name) is not None and not onnx:
                raise ValueError(f"{name} is for an ONNX teacher (teacher: path/to/model.onnx)")
        return self


PASS_CONFIGS: dict[str, type[BaseModel]] = {"distill": DistillConfig, "prune": PruneConfig, "cluster": ClusterConfig,
                                            "qat": QATConfig}


class RecipeFile(_Frozen):
    """``passes:`` a list of one-key mappings (``- prune: {sparsity: 0.75}``), then the conversion."""

    passes: tuple[dict[str, dict], ...] = ()
    ptq: Optional[Quantization] = None
    notes: str = ""

    def parsed(self) -> list[tuple[str, BaseModel]]:
        out = []
        for i, item in enumerate(self.passes):
            if len(item) != 1:
                raise ValueError(f"passes[{i}]: each pass is a one-key mapping like '- prune: {{sparsity: 0.5}}'")
            (name, cfg), = item.items()
            if name not in PASS_CONFIGS:
                raise ValueError(f"passes[{i}]: unknown pass {name!r}; passes are {', '.join(PASS_CONFIGS)}"
                                 + suggest(name, PASS_CONFIGS))
            try:
                out.append((name, PASS_CONFIGS[name].model_validate(cfg or {})))
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise ValueError(f"passes[{i}].{name}.{loc}: {err['msg']}") from None
        return out


    def relative_to(self, base) -> "RecipeFile":
        """The same recipe with the files its distill pass names (``unlabeled``, an ONNX teacher, its tokenizer and
        labels file) taken relative to ``base``, the folder of the YAML naming them."""
        from pathlib import Path

        def rel(v):
            return v if not isinstance(v, str) or Path(v).is_absolute() else str(Path(base) / v)

        out = []
        for item in self.passes:
            if isinstance(item, dict) and isinstance(item.get("distill"), dict):
                d = dict(item["distill"])
                if isinstance(d.get("teacher"), str) and d["teacher"].lower().endswith(".onnx"):
                    d["teacher"] = rel(d["teacher"])
                for k in ("teacher_tokenizer", "teacher_labels"):
                    if k in d:
                        d[k] = rel(d[k])
                if isinstance(d.get("transfer"), dict) and "unlabeled" in d["transfer"]:
                    d["transfer"] = {**d["transfer"], "unlabeled": rel(d["transfer"]["unlabeled"])}
                item = {"distill": d}
            out.append(item)
        return self.model_copy(update={"passes": tuple(out)})


def load_recipe_file(path) -> "RecipeFile":
    from pathlib import Path

    rf = parse_file(path, RecipeFile).relative_to(Path(path).resolve().parent)
    try:
        rf.parsed()
    except ValueError as e:
        raise SpecError(f"{path}: {e}. Fix: correct that pass.") from None
    return rf


# --------------------------------------------------------------------------------------------- planner
# Layers each pass can handle, by Keras class name (TOOLCHAIN §2). Layers outside these are left alone.
PRUNABLE = {"Embedding", "Conv1D", "Dense", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "MultiHeadAttention"}
# m-by-n (2:4) structured pruning: TFMOT rearranges only 2-D (Dense) and 4-D (Conv2D) kernels; a Conv1D kernel is
# 3-D and fails in training ("weight tensor with shape: (4, 128, 128) is not supported").
M_BY_N_PRUNABLE = {"Dense"}
CLUSTERABLE = {"Embedding", "Conv1D", "Dense", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "MultiHeadAttention"}
# QAT annotates these (Dense by TFMOT's registry, the rest with edgeopt's quantize configs); Embedding is never
# annotated (its int32 input breaks fake-quant) and recurrent layers are left to the int8 converter's calibration.
QAT_ANNOTATED = {"Dense", "Conv1D", "LayerNormalization", "MultiHeadAttention"}
# What TFMOT's collaborative schemes actually preserve inside QAT; other pruned/clustered layers are frozen.
PRESERVED_BY_SCHEME = {"Dense"}


@dataclass(frozen=True)
class Step:
    name: str  # train | load | distill | prune | strip_pruning | cluster | strip_clustering | qat | pqat | cqat | pcqat
    config: Optional[BaseModel] = None
    note: str = ""

    def describe(self) -> str:
        cfg = ""
        if self.config is not None:
            d = self.config.model_dump(exclude_defaults=False)
            d = {k: v for k, v in d.items() if v is not None and k not in ("layers",)}
            cfg = " " + ", ".join(f"{k}={v}" for k, v in d.items())
        return f"{self.name}{cfg}" + (f"  ({self.note})" if self.note else "")


ORDER = ("distill", "prune", "cluster", "qat")


def check_order(names: list[str], where: str) -> None:
    for n in set(names):
        if names.count(n) > 1:
            raise SpecError(f"{where}: pass {n!r} appears {names.count(n)} times. Fix: give each pass once.")
    pos = [ORDER.index(n) for n in names]
    for i in range(len(pos) - 1):
        if pos[i] > pos[i + 1]:
            raise SpecError(f"{where}: {names[i + 1]!r} cannot come after {names[i]!r} (e.g. pruning after QAT would "
                            f"prune fake-quantized weights and lose their int8 ranges). Fix: order passes as "
                            f"{' -> '.join(ORDER)}.")


def resolve(passes: list[tuple[str, BaseModel]], ptq: str, layer_types: set[str], where: str,
            first: Step = Step("train")) -> tuple[list[Step], str]:
    """Order check + layer check + collaborative variants + strip steps. Returns (steps, ptq). ``first``: the step
    that makes the float model when there is no distillation (``train``, or ``load`` for a model file's weights)."""
    check_order([n for n, _ in passes], where)
    steps: list[Step] = []
    cfg = dict(passes)
    if "distill" in cfg:
        steps.append(Step("distill", cfg["distill"], "trains the student against the teacher's soft labels"))
    else:
        steps.append(first)
    for name, types_ok in (("prune", PRUNABLE), ("cluster", CLUSTERABLE)):
        if name not in cfg:
            continue
        sel = cfg[name].layers
        if name == "prune" and cfg[name].m_by_n:
            types_ok = M_BY_N_PRUNABLE
        chosen = set(sel.types) if sel.types else (layer_types & types_ok)
        bad = sorted(chosen - types_ok)
        if bad:
            what = f"{name} m-by-n (structured)" if types_ok is M_BY_N_PRUNABLE else name
            raise SpecError(f"{where}: {what} cannot handle layer type(s) {bad}; it supports {sorted(types_ok)}. "
                            f"Fix: remove them from {name}.layers.types.")
        missing = sorted(chosen - layer_types)
        if sel.types and missing:
            raise SpecError(f"{where}: {name}.layers.types names {missing}, which this model does not have "
                            f"(it has {sorted(layer_types)}). Fix: choose among those.")
        if not chosen:
            raise SpecError(f"{where}: {name} would touch no layer of this model. Fix: check {name}.layers.")
    if "prune" in cfg:
        steps += [Step("prune", cfg["prune"]), Step("strip_pruning", note="inserted: remove pruning wrappers")]
    if "cluster" in cfg:
        c = cfg["cluster"]
        if c.preserve_sparsity is None:
            c = c.model_copy(update={"preserve_sparsity": "prune" in cfg})
        note = "sparsity-preserving (after prune)" if c.preserve_sparsity else ""
        steps += [Step("cluster", c, note), Step("strip_clustering", note="inserted: remove clustering wrappers, "
                                                                        "weights copied back by name")]
    if "qat" in cfg:
        variant = {(False, False): "qat", (True, False): "pqat", (False, True): "cqat", (True, True): "pcqat"}[
            ("prune" in cfg, "cluster" in cfg)]
        why = {"qat": "plain QAT", "pqat": "prune-preserving QAT (chosen: model was pruned)",
               "cqat": "cluster-preserving QAT (chosen: model was clustered)",
               "pcqat": "sparsity- and cluster-preserving QAT (chosen: pruned and clustered)"}[variant]
        frozen = sorted((layer_types & (PRUNABLE | CLUSTERABLE)) - PRESERVED_BY_SCHEME) if variant != "qat" else []
        if frozen:
            why += f"; frozen during QAT so their structure survives: {', '.join(frozen)}"
        steps.append(Step(variant, cfg["qat"], why))
        if ptq != "int8":
            ptq = "int8"
    return steps, ptq


def merge(sources: list[tuple[str, Optional[RecipeFile]]], flag_passes: dict, flag_ptq: Optional[str]):
    """Target default < recipe file < CLI flags, pass by pass. Each source's own order is checked; the result is
    in canonical order. Returns (passes, ptq or None)."""
    passes: dict[str, BaseModel] = {}
    ptq = None
    for where, r in sources:
        if r is None:
            continue
        parsed = r.parsed()
        check_order([n for n, _ in parsed], where)
        passes.update(parsed)
        ptq = r.ptq or ptq
    passes.update(flag_passes)
    return sorted(passes.items(), key=lambda kv: ORDER.index(kv[0])), flag_ptq or ptq
