"""The build manifest and the regression baseline as typed models (pydantic), written and read back through the
same schema, as strict JSON (no NaN or Infinity: a non-finite number is written as null and fails the build).

Every level of a manifest that edgeopt composes is a closed model (``extra="forbid"``): the metrics, the artifact
records, the data provenance, the emulated runs, the conversion and the verdict (``results.py``); a validator's own
section is its record (``validate/measure.manifest_sections``). What other schemas already describe (the resolved
spec and target, the pass records, the tokenizer's config) is kept as the JSON objects they wrote. Optional keys are
written only when given (``results.Sparse``), so a classifier's manifest has no tagger keys.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InputError
from .results import Conversion, Sparse, Verdict

MAX_JSON_BYTES = 64 << 20


# ------------------------------------------------------------------------------- per-example records
def encode_correct(correct) -> str:
    """Per-example correctness (bools) as base64 of a packed bit array (3,080 examples: 516 characters)."""
    return base64.b64encode(np.packbits(np.asarray(correct, bool)).tobytes()).decode("ascii")


def decode_correct(blob: str, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(base64.b64decode(blob, validate=True), np.uint8))
    if len(bits) < n:
        raise ValueError(f"correctness record holds {len(bits)} bits, expected {n}")
    return bits[:n].astype(bool)


def encode_predictions(pred) -> str:
    """Per-example predicted class ids as base64 of little-endian uint16 (3,080 examples: 8,216 characters)."""
    return base64.b64encode(np.asarray(pred, "<u2").tobytes()).decode("ascii")


def decode_predictions(blob: str, n: int) -> np.ndarray:
    ids = np.frombuffer(base64.b64decode(blob, validate=True), "<u2")
    if len(ids) != n:
        raise ValueError(f"prediction record holds {len(ids)} ids, expected {n}")
    return ids.astype(np.int64)


def examples_sha256(tokens, labels) -> str:
    """Identity of an evaluation set: the token ids fed to the artifact and the labels."""
    h = hashlib.sha256(np.ascontiguousarray(np.asarray(tokens, np.int32)).tobytes())
    h.update(np.ascontiguousarray(np.asarray(labels, np.int32)).tobytes())
    return h.hexdigest()


def strict(obj):
    """``obj`` with every non-finite float replaced by None (strict JSON has no NaN/Infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (np.floating,)):
        return strict(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, dict):
        return {str(k): strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ---------------------------------------------------------------------------------------- schemas
class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ArtifactRecord(Sparse):
    """A file of the build: model files carry their format's quantization and role (baseline, deployed,
    cross_format); the tokenizer's and labels' files only their size and hash."""

    path: str
    format: str
    quantization: Optional[str] = None
    role: Optional[str] = None
    sha256: str
    size_bytes: int = Field(ge=0)
    gzip_bytes: int = Field(ge=0)


class LatencyRow(_Closed):
    threads: int = Field(ge=1)
    xnnpack: bool


class Metrics(Sparse):
    """The deployed file's figures on the test split (quality, parity, size, latency) and its float32 baseline's;
    a tagger's entity figures and a cross-format export's only when there are some."""

    keras_accuracy: Optional[float] = None  # the Keras model the deployed file was exported from
    baseline_keras_accuracy: Optional[float] = None  # after a recipe: the uncompressed Keras model the baseline is from
    # token classification: entity F1 (strict spans) is the headline; accuracy and per_class are per real token
    entity_f1: Optional[float] = None
    baseline_entity_f1: Optional[float] = None
    entity_f1_drop: Optional[float] = None
    entities: Optional[dict[str, Any]] = None
    baseline_entities: Optional[dict[str, Any]] = None
    truncation: Optional[dict[str, Any]] = None
    accuracy_unit: Optional[str] = None
    baseline: Optional[dict[str, Any]] = None  # the float32 file: artifact, accuracy, parity, latency rows
    artifact: str
    accuracy: Optional[float] = Field(ge=0, le=1)
    accuracy_drop: Optional[float] = None
    macro_f1: Optional[float] = Field(default=None, ge=0, le=1)
    baseline_macro_f1: Optional[float] = None
    macro_f1_drop: Optional[float] = None
    per_class: Optional[dict[str, Any]] = None
    baseline_per_class: Optional[dict[str, Any]] = None
    test_examples: int = Field(ge=1)
    finite_outputs: Optional[bool] = None
    correct: Optional[str] = None  # per-example correctness of the deployed artifact over the test split
    predictions: Optional[str] = None  # its per-example predicted class ids (encode_predictions)
    examples_sha256: Optional[str] = None
    variable_tensors: Any = None
    parity_vs_keras: Optional[dict[str, Any]] = None
    parity_vs_baseline: Optional[dict[str, Any]] = None
    scores: Optional[dict[str, Any]] = None  # what the outputs are (logits) and parity in probability space
    size: Optional[dict[str, int]] = None
    size_ratio_vs_float32: Optional[dict[str, Optional[float]]] = None
    latency: Optional[list[dict[str, Any]]] = None  # the build machine's rows (runtime options x percentiles)
    latency_budget_row: LatencyRow
    latency_note: Optional[str] = None
    cross_format: Optional[dict[str, Any]] = None  # the other format exported from the same weights (--format both)


class DataSection(Sparse):
    """Where the examples came from (``Dataset.provenance``): the data set or files and their hashes, the seeded
    splits carved, the limits applied, the sizes."""

    dataset: str
    labels: Optional[int] = None
    split_seed: Optional[int] = None
    source: Optional[str] = None
    format: Optional[str] = None
    folder: Optional[str] = None
    files: Optional[dict[str, Any]] = None
    test_split: Optional[str] = None
    dev_split: Optional[str] = None
    limit: Optional[dict[str, Any]] = None
    sizes: Optional[dict[str, int]] = None
    label_order: Optional[str] = None  # whose order output i's label follows: the data's, or the model's declared


class EmulatedCpu(Sparse):
    """One emulated CPU's run of the file (emulator/validate.py)."""

    cpu: str
    loaded: Optional[bool] = None
    load_error: Optional[str] = None
    rejected_ops: Optional[list[Any]] = None
    delegate_applied: Optional[bool] = None
    delegate_error: Optional[str] = None
    ops_after_delegation: Optional[dict[str, int]] = None
    guest_machine: Any = None
    runtime_version: Optional[str] = None
    emulated_wall_seconds: Optional[float] = None
    process_seconds: Optional[float] = None
    accuracy: Optional[float] = None
    correct: Optional[str] = None
    parity: Optional[dict[str, Any]] = None
    instructions: Optional[dict[str, Any]] = None
    passed: Optional[bool] = None


class BuildEmulator(Sparse):
    """``build --emulate``'s runs: the emulated validator's section."""

    artifact: Optional[str] = None
    runtime: Optional[str] = None
    threads: Optional[int] = None
    xnnpack_requested: Optional[bool] = None
    examples: Optional[int] = None
    scored: Optional[int] = None
    output_scale: Optional[float] = None
    host: Optional[dict[str, Any]] = None
    cpus: list[EmulatedCpu]
    note: Optional[str] = None
    instructions_note: Optional[str] = None
    passed: Optional[bool] = None
    sample: "EmulatedSample"
    examples_sha256: Optional[str] = None
    validation_seconds: Optional[float] = None


class Manifest(_Closed):
    """A build's manifest.json: what was built and how (spec, target, passes, conversion), every validator's
    record of the deployed file (the metrics the build composes; the emulator, device cost, device latency,
    clients and GPU sections each validator writes) and the verdict. Closed at every typed level; the resolved
    spec, target and pass records are JSON objects as their own schemas wrote them."""

    model: str
    target: str
    edgeopt_version: str
    versions: dict[str, Any]
    seed: int
    model_source: Optional[dict[str, Any]] = None  # architecture, model file (hash, format) or builder; the checks
    conversion: Optional[Conversion] = None  # asked / deployed quantization and every attempt (fallbacks)
    recipe: dict[str, Any]
    passes: list[dict[str, Any]]
    spec: dict[str, Any]
    target_profile: dict[str, Any]
    data: DataSection
    tokenizer: dict[str, Any]
    # text_classification, or token_classification: metrics.accuracy, per_class, correct and predictions are then
    # per real token of the test split, and metrics.entity_f1 / entities are the headline (strict BIO spans)
    task: Optional[str] = None
    training: dict[str, Any]
    artifacts: list[ArtifactRecord]
    metrics: Metrics
    emulator: Optional[BuildEmulator] = None
    device_cost: Optional[dict[str, Any]] = None  # instructions per inference on the target's CPU (+ an estimate)
    device_latency: Optional[dict[str, Any]] = None  # p50/p90/p99 on the board over SSH (build --on-device)
    metadata: Optional[dict[str, Any]] = None  # the TFLite model metadata written into the .tflite files
    clients: Optional[list[dict[str, Any]]] = None  # real clients run on the deployed file (MediaPipe)
    # GPU targets: the deployed file through LiteRT's GPU accelerator (adapter, partition, numerics; gpu/run.py)
    gpu: Optional[dict[str, Any]] = None
    # the headline figure on the test split as people type it, in edgeopt's runtime and the client (validate/robustness)
    robustness: Optional[dict[str, Any]] = None
    budgets: Verdict
    build_seconds: float


class BaselineLatency(_Closed):
    threads: int = Field(ge=1)
    xnnpack: bool
    delegate_applied: bool
    p50_ms: float = Field(ge=0)
    p90_ms: float = Field(ge=0)
    runtime: str


class EmulatedRun(_Closed):
    cpu: str
    loaded: bool
    delegate_applied: bool
    accuracy: Optional[float] = Field(default=None, ge=0, le=1)
    parity: dict[str, Any]
    load_error: Optional[str] = None
    correct: Optional[str] = None
    instructions: Optional[dict[str, Any]] = None  # emulated instructions per inference (XNNPACK on/off)


class EmulatedSample(Sparse):
    examples: int = Field(ge=1)
    of: Optional[int] = None
    seed: Optional[int] = None
    whole_split: Optional[bool] = None
    scored: Optional[int] = None


class EmulatedRuns(_Closed):
    sample: EmulatedSample
    examples_sha256: Optional[str] = None
    cpus: list[EmulatedRun]


class Tolerances(_Closed):
    # one-sided significance level of the accuracy gate (paired exact McNemar test on the same examples; Fisher's
    # exact test when the examples differ): the chance of a false alarm when nothing regressed
    accuracy_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    size_rel: float = Field(default=0.02, ge=0)
    latency_rel: float = Field(default=0.25, ge=0)
    # emulated instructions per inference: deterministic, so the gate is tight (a 5% costlier artifact fails)
    instructions_rel: float = Field(default=0.005, ge=0)
    # a tagger's entity F1 (strict spans, micro, whole test split): the largest fall allowed, absolute
    entity_f1_abs: float = Field(default=0.01, ge=0, le=1)


class Baseline(_Closed):
    format_version: Literal[2] = 2
    model: str
    target: str
    artifact: str
    sha256: str
    manifest_sha256: Optional[str] = None
    accuracy: float = Field(ge=0, le=1)
    test_examples: int = Field(ge=1)
    correct: str
    predictions: Optional[str] = None  # predicted class ids (the macro-F1 gate); absent in older baselines
    macro_f1: Optional[float] = Field(default=None, ge=0, le=1)
    num_classes: Optional[int] = Field(default=None, ge=1)
    # token classification: accuracy, correct, predictions and test_examples are per real test token, and this is
    # the entity F1 (strict spans, micro) over the whole test split
    entity_f1: Optional[float] = Field(default=None, ge=0, le=1)
    examples_sha256: str
    size_bytes: int = Field(ge=0)
    gzip_bytes: int = Field(ge=0)
    latency: BaselineLatency
    machine: dict[str, Any]
    measured_at: str
    emulator: Optional[EmulatedRuns] = None
    # instructions per inference on the target's own CPU ({cpu, xnnpack_on/off | onnxruntime, spread, seconds})
    device_instructions: Optional[dict[str, Any]] = None
    # GPU targets: where the ops ran under LiteRT's GPU accelerator ({available, adapter, gpu_ops, cpu_ops, ...})
    gpu_partition: Optional[dict[str, Any]] = None
    tolerances: Tolerances = Tolerances()


# ----------------------------------------------------------------------------------- read / write
def _first_error(path: Path, e: ValidationError, what: str, fix: str) -> InputError:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return InputError(f"{path}: {what} field '{loc}': {err['msg']}. Fix: {fix}")


def read_json(path: Path, what: str, fix: str):
    from .files import read_capped

    raw = read_capped(path, MAX_JSON_BYTES, what, InputError)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise InputError(f"{path}: not a strict JSON {what} ({type(e).__name__}: {str(e)[:80]}). Fix: {fix}") from None


def write_json_atomic(path: Path, data: dict) -> None:
    """Strict JSON (allow_nan=False), written to a temporary file beside ``path`` and renamed into place."""
    from .errors import OutputError

    text = json.dumps(strict(data), indent=2, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"{path}: cannot write it ({e.strerror}). Fix: choose a writable path.") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; a manifest or baseline is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def dump_manifest(path: Path, data: dict) -> dict:
    """Validate ``data`` as a Manifest and write it; returns what was written (as read back)."""
    m = Manifest.model_validate(strict(data))
    out = strict(m.model_dump(mode="json", exclude={"emulator"} if m.emulator is None else None))
    write_json_atomic(path, out)
    return out


def load_manifest(path: Path) -> Manifest:
    fix = "give a build directory made by `edgeopt build` (or rebuild it)."
    data = read_json(path, "manifest", fix)
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise _first_error(path, e, "manifest", fix) from None


def load_baseline(path: Path) -> Baseline:
    fix = f"regenerate it on purpose with `edgeopt verify BUILD --baseline {path} --update`."
    if not Path(path).exists():
        raise InputError(f"{path}: baseline not found. Fix: create it on purpose with `edgeopt verify BUILD "
                         f"--baseline {path} --update`.")
    data = read_json(path, "baseline", fix)  # refuses directories and devices
    if isinstance(data, dict) and data.get("format_version") != 2:
        raise InputError(f"{path}: baseline format_version {data.get('format_version')!r}; this edgeopt reads 2 "
                         f"(per-example correctness for the statistical gate). Fix: {fix}")
    try:
        return Baseline.model_validate(data)
    except ValidationError as e:
        raise _first_error(path, e, "baseline", fix) from None


BuildEmulator.model_rebuild()
Manifest.model_rebuild()
