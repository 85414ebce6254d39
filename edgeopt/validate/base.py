"""The evidence path's nouns: what is measured (:class:`MeasureRequest`), a :class:`Validator` (one thing measured
about an artifact), the typed records the core validators return, and :class:`ArtifactEvidence` (everything
measured about one artifact, frozen). ``measure.py`` holds the one table of validators and ``measure_artifact``;
``budgets.check`` judges an ``ArtifactEvidence``.

``build`` (the deployed file and its float32 baseline), ``tune``'s evaluator (a candidate on the dev split),
``edgeopt validate`` (a file on the test split) and ``edgeopt verify`` (a build's file again) all measure through
this path; they differ only in the request they make.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Optional, Protocol, Sequence

import numpy as np

from ..runtimes import LatencyStats, RuntimeOptions


@dataclass(frozen=True)
class Split:
    """The examples an artifact is measured on: token ids, the labels its outputs are scored against (a tagger's
    padded tag ids), and the texts and whole gold tag lists some validators need (clients, entity spans)."""

    name: str  # "test" | "dev"
    x: np.ndarray
    y: np.ndarray
    texts: Sequence[str] = ()
    gold: Sequence = ()  # a tagger's tag ids per whole sentence (entities past seq_len count as missed)


@dataclass(frozen=True)
class LatencyPlan:
    """Latency rows to measure (each after ``warmup`` untimed calls, percentiles over ``iterations``), on the
    first ``inputs`` examples of the split."""

    options: tuple[RuntimeOptions, ...]
    warmup: int
    iterations: int
    inputs: int = 64


@dataclass(frozen=True)
class MeasureRequest:
    """One artifact to measure, and what to measure on it. A field left at its default asks nothing of the
    validator that reads it (no latency plan: no latency; no emulated CPUs: no emulated run; ...)."""

    path: Path
    target: Any  # TargetProfile
    task: Any  # tasks.Task
    split: Split
    label_names: tuple[str, ...]
    seed: int
    quiet: bool = True
    name: Optional[str] = None  # how the artifact is named in checks and messages (default: the file name)
    origin: str = "built"  # "built" by edgeopt just now, or "given" by the user (another message for wrong outputs)
    run: RuntimeOptions = RuntimeOptions(threads=1, xnnpack=True)  # the quality run's options
    judged_at: tuple[int, bool] = (1, True)  # (threads, XNNPACK): the setting latency and cost budgets are judged at
    reference: Optional[np.ndarray] = None  # outputs parity is measured against (the Keras model's)
    against: Optional["ArtifactEvidence"] = None  # the evidence drops are measured against (the float32 file)
    latency: Optional[LatencyPlan] = None
    clients: tuple[str, ...] = ()  # the real clients to run on it ("mediapipe")
    tokenizer: Any = None  # what the clients check the artifact's tokenizer against
    gpu: Optional[str] = None  # "check": through the GPU accelerator on gpu_sample examples; "partition": compile only
    gpu_sample: Optional[int] = None  # None: the whole split
    gpu_export: Optional[dict] = None  # recorded with a build's GPU evidence
    emulate: Optional[tuple[str, ...]] = None  # emulated arm64 CPUs to run it on (): the target's own
    emulate_sample: Optional[int] = None  # None: the target's emulator.sample, else the whole split
    count: Optional[str] = None  # the CPU instructions are counted on ("x86": callgrind), when asked
    # where the count comes from: the emulated run on the same CPU when it counted, else a count of its own
    # ("prefer_emulated"); or the emulated run alone ("emulated_only": nothing is counted when it did not count)
    count_source: str = "prefer_emulated"
    board: Any = None  # remote.Remote: latency measured on the board
    robustness: bool = False  # the headline figure on the split as people type it (needs the tokenizer)
    memo: Optional[dict] = field(default=None, compare=False, hash=False)  # (validator, sha256, split) -> record

    @property
    def label(self) -> str:
        return self.name or Path(self.path).name


class Validator(Protocol):
    """Measures one thing about an artifact. ``applies`` says from the request alone whether it runs;
    ``measure`` returns its record, seeing the records of the validators before it in the table."""

    name: str
    section: Optional[str]  # the build manifest's top-level key its record is written under (None: in metrics)

    def applies(self, req: MeasureRequest) -> bool: ...

    def measure(self, req: MeasureRequest, so_far: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class Quality:
    """The artifact run over the whole split: its task's figures, finiteness and parity with the reference."""

    split: str
    examples: int  # examples run
    rows: int  # rows scored (the examples, or a tagger's real tokens)
    accuracy: float
    per_class: dict
    entities: Optional[dict]  # a tagger's entity spans (micro and per type)
    finite: bool
    logits: np.ndarray = field(repr=False)
    variable_tensors: Any
    parity: Optional[dict]  # against the request's reference outputs
    reference_finite: Optional[bool]
    runtime: str
    delegate_applied: bool
    chance: Optional[dict] = None  # better than the majority-class rate? (validate/chance.py)

    @property
    def macro_f1(self) -> float:
        return self.per_class["macro_f1"]

    @property
    def entity_f1(self) -> Optional[float]:
        return self.entities["micro"]["f1"] if self.entities else None


@dataclass(frozen=True)
class Latency:
    rows: tuple[LatencyStats, ...]  # one per runtime option of the request's plan


@dataclass(frozen=True)
class Size:
    size_bytes: int
    gzip_bytes: int
    sha256: str

    def to_dict(self) -> dict:
        """As ``validate.size.size_of`` gives it (the manifest's artifact records)."""
        return asdict(self)


@dataclass(frozen=True)
class ArtifactEvidence:
    """Everything measured about one artifact: each validator's record under its name, frozen."""

    path: Path
    label: str
    records: Mapping[str, Any]
    against: Optional["ArtifactEvidence"] = None
    judged_at: tuple[int, bool] = (1, True)

    def __post_init__(self):
        object.__setattr__(self, "records", MappingProxyType(dict(self.records)))

    def __getitem__(self, name: str):
        return self.records[name]

    def __contains__(self, name: str) -> bool:
        return name in self.records

    def get(self, name: str, default=None):
        return self.records.get(name, default)

    @property
    def quality(self) -> Quality:
        return self.records["quality"]

    @property
    def size(self) -> Size:
        return self.records["size"]

    def drop(self, figure: str) -> Optional[float]:
        """How much ``figure`` ("accuracy", "macro_f1", "entity_f1") fell from the evidence it is measured
        against (None when there is none)."""
        if self.against is None:
            return None
        mine, theirs = getattr(self.quality, figure), getattr(self.against.quality, figure)
        return None if mine is None or theirs is None else theirs - mine


def memoized(req: MeasureRequest, name: str, so_far, compute):
    """A record computed once per (validator, file, split) when the request carries a memo (tune's evaluator)."""
    if req.memo is None:
        return compute()
    key = (name, so_far["size"].sha256, req.split.name)
    if key not in req.memo:
        req.memo[key] = compute()
    return req.memo[key]
