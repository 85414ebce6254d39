"""Typed, frozen specs parsed once from YAML: ModelSpec, TargetProfile (with its OnnxSpec), Budgets. Recipes and
pass configs live in recipe.py.

Every model has ``extra="forbid"``: an unknown or mistyped key is an error that names the file, the field,
the allowed keys and the fix. Nothing here imports TensorFlow.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SpecError, suggest
from .recipe import RecipeFile

Quantization = Literal["float32", "dynamic", "int8", "float16"]
QUANTIZATIONS = ("float32", "dynamic", "int8", "float16")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------------------- ModelSpec
class DataFiles(_Frozen):
    """A user's own dataset: CSV or JSONL files with a text column and a label column."""

    train: str
    test: str
    dev: Optional[str] = None
    format: Optional[Literal["csv", "jsonl"]] = None  # default: from the file suffix
    text_column: str = "text"
    label_column: str = "label"


class DataLimit(_Frozen):
    """Use only the first N examples of a split (after the seeded shuffle): smoke builds and tests."""

    train: Optional[int] = Field(default=None, gt=0)
    dev: Optional[int] = Field(default=None, gt=0)
    test: Optional[int] = Field(default=None, gt=0)


class DataSpec(_Frozen):
    dataset: Optional[str] = None  # built-in name: banking77, sst2, smsspam
    files: Optional[DataFiles] = None
    dev_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    split_seed: int = 1234
    limit: Optional[DataLimit] = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.dataset is None) == (self.files is None):
            raise ValueError("give exactly one of 'dataset' (a built-in name) or 'files' (your CSV/JSONL files)")
        return self


class TokenizerSpec(_Frozen):
    kind: Literal["word"] = "word"
    lowercase: bool = True
    max_vocab: int = Field(default=20000, ge=10)
    min_freq: int = Field(default=1, ge=1)
    seq_len: int = Field(default=32, ge=1, le=4096)


class ArchitectureSpec(_Frozen):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self):
        from .architectures import CONFIGS

        if self.name not in CONFIGS:
            raise ValueError(f"unknown architecture {self.name!r}; choose one of {sorted(CONFIGS)}"
                             + suggest(self.name, CONFIGS))
        CONFIGS[self.name].model_validate(self.params)  # raises with the field name
        return self

    def config(self):
        from .architectures import CONFIGS

        return CONFIGS[self.name].model_validate(self.params)


class TrainingSpec(_Frozen):
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)
    patience: int = Field(default=3, ge=1)  # early stopping on dev accuracy
    seed: int = 42


class ModelSpec(_Frozen):
    name: str
    description: str = ""
    task: Literal["text_classification"] = "text_classification"
    data: DataSpec
    tokenizer: TokenizerSpec = TokenizerSpec()
    architecture: ArchitectureSpec
    training: TrainingSpec = TrainingSpec()
    source: Optional[str] = Field(default=None, exclude=True)  # the file it was read from


# ------------------------------------------------------------------------------------- TargetProfile
def _check_cpu_models(names) -> None:
    from .emulator.env import CPU_MODELS

    bad = [c for c in names if c not in CPU_MODELS]
    if bad:
        raise ValueError(f"unknown qemu CPU model(s) {bad}; edgeopt emulates {', '.join(CPU_MODELS)}")


class DeviceSpec(_Frozen):
    arch: Literal["arm64", "armv7", "x86_64"]
    cpu: str
    qemu_cpu: Optional[str] = None  # the qemu CPU model that emulates it (edgeopt emulator list)
    cores: int = Field(ge=1)
    memory_mb: int = Field(ge=1)

    @field_validator("qemu_cpu")
    @classmethod
    def _known_cpu(cls, v):
        if v is not None:
            _check_cpu_models([v])
        return v


class RuntimeSpec(_Frozen):
    name: Literal["litert", "onnxruntime"] = "litert"
    format: Literal["tflite", "onnx"] = "tflite"
    threads: int = Field(default=1, ge=1, le=64)  # LiteRT num_threads / ORT intra_op_num_threads
    delegates: tuple[Literal["xnnpack"], ...] = ("xnnpack",)

    @model_validator(mode="after")
    def _consistent(self):
        want = {"litert": "tflite", "onnxruntime": "onnx"}[self.name]
        if self.format != want:
            raise ValueError(f"runtime {self.name} runs {want} files, not {self.format}")
        if self.name == "onnxruntime" and self.delegates:
            raise ValueError("onnxruntime takes no delegates (the CPU execution provider is used); set delegates: []")
        return self


class OnnxQuant(_Frozen):
    """ONNX Runtime quantization preset (quantize_dynamic / quantize_static)."""

    weight_type: Literal["QInt8", "QUInt8"] = "QInt8"
    activation_type: Literal["QInt8", "QUInt8"] = "QUInt8"
    format: Literal["QDQ", "QOperator"] = "QDQ"  # static only
    per_channel: bool = False
    reduce_range: bool = False  # 7-bit weights: avoids saturation in VPMADDUBSW on AVX2/AVX-512 without VNNI


class OnnxSpec(_Frozen):
    opset: int = Field(default=17, ge=13)
    quant: OnnxQuant = OnnxQuant()

    @field_validator("opset")
    @classmethod
    def _tf2onnx_opsets(cls, v):
        if v > 18:
            raise ValueError("tf2onnx 1.17 supports opsets 13 to 18 (19 fails: 'Opset 19 is not supported yet')")
        return v


class Budgets(_Frozen):
    max_accuracy_drop: Optional[float] = Field(default=None, ge=0, le=1)  # fraction, vs the float32 artifact
    max_size_bytes: Optional[int] = Field(default=None, gt=0)  # raw bytes of the deployed artifact
    max_latency_p90_ms: Optional[float] = Field(default=None, gt=0)  # target threads + delegates, this machine
    min_accuracy: Optional[float] = Field(default=None, ge=0, le=1)
    # The float32 artifact must agree with the Keras model it was exported from (argmax over the test split);
    # below this the export itself is broken, whatever the quantized artifact's accuracy drop says.
    min_export_agreement: Optional[float] = Field(default=0.99, ge=0, le=1)


class EmulatorSpec(_Frozen):
    """Emulated validation (``--emulate``): the CPU models to run on besides ``device.qemu_cpu`` and the
    test-split sample to run there (None: the whole split)."""

    cpus: tuple[str, ...] = ()
    sample: Optional[int] = Field(default=None, ge=1)

    @field_validator("cpus")
    @classmethod
    def _known(cls, v):
        _check_cpu_models(v)
        return v


class TargetProfile(_Frozen):
    name: str
    description: str = ""
    device: DeviceSpec
    runtime: RuntimeSpec = RuntimeSpec()
    quantization: Quantization
    representative_samples: int = Field(default=200, ge=1)
    budgets: Budgets = Budgets()
    recipe: Optional[RecipeFile] = None  # default compression passes for this device (see edgeopt/recipe.py)
    onnx: Optional[OnnxSpec] = None  # ONNX targets: opset and ONNX Runtime quantization preset
    emulator: EmulatorSpec = EmulatorSpec()
    notes: str
    source: Optional[str] = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _format_fits(self):
        if self.runtime.format == "onnx":
            if self.quantization == "float16":
                raise ValueError("ONNX targets take quantization float32, dynamic (ORT quantize_dynamic) or int8 "
                                 "(ORT quantize_static); float16 is for TFLite targets")
        elif self.onnx is not None:
            raise ValueError("an 'onnx' section needs runtime onnxruntime / format onnx")
        return self

    @property
    def onnx_settings(self) -> "OnnxSpec":
        return self.onnx or OnnxSpec()

    @field_validator("notes")
    @classmethod
    def _notes_say_why(cls, v: str) -> str:
        if len(v.split()) < 5:
            raise ValueError("say in a sentence or two why this profile's choices were made")
        return v

    @field_validator("recipe")
    @classmethod
    def _recipe_passes(cls, v):
        if v is not None:
            v.parsed()  # raises ValueError naming the pass and field
        return v


# ------------------------------------------------------------------------------------------ loading
def _format_validation_error(path: str, model: type[BaseModel], err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = model
        for part in first["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(part, str) else None
            ann = getattr(field, "annotation", None) if field else None
            ann = getattr(ann, "__args__", (ann,))[0] if ann is not None and not isinstance(ann, type) else ann
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                parent = ann
            else:
                parent = None
                break
        allowed = sorted(k for k in (parent.model_fields if parent else {}) if k != "source")
        bad = str(first["loc"][-1])
        hint = suggest(bad, allowed) or ""
        return (f"{path}: unknown field '{loc}'.{hint} Allowed here: {', '.join(allowed)}. "
                f"Fix: rename or remove it.")
    if kind == "missing":
        return f"{path}: missing required field '{loc}'. Fix: add it."
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    got_s = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
    return f"{path}: field '{loc}': {msg}{got_s}. Fix: correct '{loc}' in that file."


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found. Fix: check the path.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: cannot read it ({e}). Fix: give a readable UTF-8 YAML file.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}. Fix: correct the syntax.") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level. Fix: see `edgeopt targets show`.")
    return data


def parse_file(path: Path, model: type[BaseModel]):
    path = Path(path)
    data = _read_yaml(path)
    try:
        extra = {"source": str(path)} if "source" in model.model_fields else {}
        return model.model_validate({**data, **extra})
    except ValidationError as e:
        raise SpecError(_format_validation_error(str(path), model, e)) from None


def load_model_spec_file(path) -> ModelSpec:
    spec = parse_file(Path(path), ModelSpec)
    if spec.data.files is not None:  # relative data paths are relative to the spec file
        base = Path(path).resolve().parent
        files = spec.data.files
        fix = {k: str((base / v) if not Path(v).is_absolute() else Path(v))
               for k, v in (("train", files.train), ("test", files.test), ("dev", files.dev)) if v}
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"files": files.model_copy(update=fix)})})
    return spec


def load_target_file(path) -> TargetProfile:
    return parse_file(Path(path), TargetProfile)
