"""The build manifest and the regression baseline as typed models (pydantic), written and read back through the
same schema, as strict JSON (no NaN or Infinity: a non-finite number is written as null and fails the build).

The parts that later commands read (``verify``: the deployed artifact, the tokenizer's data spec, the latency
setting, the emulated runs, per-example correctness) are typed field by field; the rest of a manifest (the
resolved spec, the per-pass records, the report's tables) is kept as JSON objects so that a new measurement
does not need a schema change.
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
class _Open(BaseModel):
    """Typed fields checked; further keys kept as they are (written by edgeopt, read back as-is)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ArtifactRecord(_Open):
    path: str
    format: str
    sha256: str
    size_bytes: int = Field(ge=0)
    gzip_bytes: int = Field(ge=0)


class LatencyRow(_Closed):
    threads: int = Field(ge=1)
    xnnpack: bool


class Metrics(_Open):
    artifact: str
    accuracy: Optional[float] = Field(ge=0, le=1)
    accuracy_drop: Optional[float] = None
    test_examples: int = Field(ge=1)
    latency_budget_row: LatencyRow
    correct: Optional[str] = None  # per-example correctness of the deployed artifact over the test split
    predictions: Optional[str] = None  # its per-example predicted class ids (encode_predictions)
    macro_f1: Optional[float] = Field(default=None, ge=0, le=1)
    examples_sha256: Optional[str] = None
    finite_outputs: Optional[bool] = None


class DataSection(_Open):
    dataset: str


class _CpuRow(_Open):
    cpu: str


class BuildEmulator(_Open):
    """``build --emulate``'s runs (the report's table reads the rest)."""

    sample: "EmulatedSample"
    cpus: list[_CpuRow]


class Manifest(_Closed):
    model: str
    target: str
    edgeopt_version: str
    versions: dict[str, Any]
    seed: int
    model_source: Optional[dict[str, Any]] = None  # architecture, model file (hash, format) or builder; the checks
    conversion: Optional[dict[str, Any]] = None  # asked / deployed quantization and every attempt (fallbacks)
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
    budgets: dict[str, Any]
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


class EmulatedSample(_Open):
    examples: int = Field(ge=1)
    seed: Optional[int] = None


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
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def dump_manifest(path: Path, data: dict) -> dict:
    """Validate ``data`` as a Manifest and write it; returns what was written (as read back)."""
    m = Manifest.model_validate(strict(data))
    out = m.model_dump(mode="json", exclude={"emulator"} if m.emulator is None else None)
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
