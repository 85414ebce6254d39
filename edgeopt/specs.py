"""Typed, frozen specs parsed once from YAML: ModelSpec, TargetProfile (with its OnnxSpec), Budgets. Recipes and
pass configs live in recipe.py.

Every model has ``extra="forbid"``: an unknown or mistyped key is an error that names the file, the field,
the allowed keys and the fix. Nothing here imports TensorFlow.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union, Any, Literal, Optional

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .errors import SpecError, suggest
from .recipe import Quantization, RecipeFile
from .schema import Frozen, parse_file

# A model's or target's name becomes a path component (build/<model>/<target>): no separators, no '..', not empty.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"  # at most 100 characters: a folder name, with room to spare
NAME_RULE = ("at most 100 letters, digits, '.', '_' and '-', starting with a letter or digit (it names the build "
             "folder)")

TFLITE_ONLY = ("float16", "int16x8")  # no ONNX Runtime counterpart here


_Frozen = Frozen


def _check_name(v: str) -> str:
    import re

    if not isinstance(v, str) or not re.match(NAME_PATTERN, v):
        shown = repr(v[:40]) + "..." if isinstance(v, str) and len(v) > 40 else repr(v)
        raise ValueError(f"{shown} is not a valid name: use {NAME_RULE}")
    return v


# ----------------------------------------------------------------------------------------- ModelSpec
class DataFiles(_Frozen):
    """A user's own dataset: CSV or JSONL files with a text column and a label column, or (``format: conll``, for
    ``task: token_classification``) CoNLL files: a token and its BIO tag a line, a blank line between sentences."""

    train: str
    test: Optional[str] = None  # default: a seeded share of train (data.test_fraction), stated in the manifest
    dev: Optional[str] = None
    format: Optional[Literal["csv", "jsonl", "conll"]] = None  # default: from the file suffix (.conll: conll)

    @model_validator(mode="before")
    @classmethod
    def _conll_suffix(cls, data):
        if isinstance(data, dict) and data.get("format") is None and str(data.get("train", "")).endswith(".conll"):
            data = {**data, "format": "conll"}
        return data
    text_column: str = "text"
    label_column: str = "label"


class DataLimit(_Frozen):
    """Use only the first N examples of a split (after the seeded shuffle): smoke builds and tests."""

    train: Optional[int] = Field(default=None, gt=0, le=100_000_000)
    dev: Optional[int] = Field(default=None, gt=0, le=100_000_000)
    test: Optional[int] = Field(default=None, gt=0, le=100_000_000)


class DataSpec(_Frozen):
    dataset: Optional[str] = None  # built-in name: banking77, sst2, smsspam
    files: Optional[DataFiles] = None
    dev_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.1, gt=0, lt=0.5)  # own files without a test file: carved from train first
    split_seed: int = Field(default=1234, ge=0, le=2**32 - 1)  # numpy's seed range
    limit: Optional[DataLimit] = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.dataset is None) == (self.files is None):
            raise ValueError("give exactly one of 'dataset' (a built-in name) or 'files' (your CSV/JSONL files)")
        return self

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v):
        from .catalog import BUILTIN_DATASETS

        if v is not None and v not in BUILTIN_DATASETS:
            raise ValueError(f"unknown dataset {v!r}; built-in datasets: {', '.join(BUILTIN_DATASETS)}."
                             f"{suggest(v, BUILTIN_DATASETS)} Or give 'files:' with your own CSV/JSONL")
        return v


class TokenizerSpec(_Frozen):
    """edgeopt's word tokenizer fitted on the training texts (default), or the tokenizer a model was trained with:
    ``vocab_file`` (one token a line, id = line number, split by edgeopt's word rules) or ``huggingface`` (a
    ``tokenizers`` JSON file). Paths are relative to the spec file."""

    kind: Literal["word", "regex"] = "word"  # regex: MediaPipe's regex tokenizer, reproduced (data/tokenizer.py)
    lowercase: bool = True
    max_vocab: int = Field(default=20000, ge=10, le=1_000_000)
    min_freq: int = Field(default=1, ge=1, le=1_000_000)
    seq_len: int = Field(default=32, ge=1, le=4096)
    vocab_file: Optional[str] = None
    huggingface: Optional[str] = None
    pad_token: Optional[str] = None  # vocab_file: default <pad>; huggingface: default the file's padding token
    unk_token: Optional[str] = None  # vocab_file only: default <unk>

    @model_validator(mode="after")
    def _one_kind(self):
        if self.vocab_file is not None and self.huggingface is not None:
            raise ValueError("give one of 'vocab_file' or 'huggingface', not both")
        if self.kind == "regex" and (self.vocab_file is not None or self.huggingface is not None):
            raise ValueError("kind 'regex' fits its vocabulary on the training texts (the client's <PAD>/<UNKNOWN> "
                             "layout); remove 'vocab_file'/'huggingface' or use kind 'word'")
        if self.unk_token is not None and self.vocab_file is None:
            raise ValueError("'unk_token' applies to a vocab_file tokenizer")
        if self.pad_token is not None and self.vocab_file is None and self.huggingface is None:
            raise ValueError("'pad_token' applies to a vocab_file or huggingface tokenizer (the fitted word "
                             "tokenizer pads with id 0)")
        return self

    @property
    def mode(self) -> str:
        return "vocab_file" if self.vocab_file else "huggingface" if self.huggingface else "fitted"


class ArchitectureSpec(_Frozen):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self):
        from .architectures import CONFIGS

        if self.name not in CONFIGS:
            raise ValueError(f"unknown architecture {self.name!r}; choose one of {sorted(CONFIGS)}"
                             + suggest(self.name, CONFIGS))
        cfg = CONFIGS[self.name]
        try:
            cfg.model_validate(self.params)
        except ValidationError as e:  # report it at architecture.params.<key>, with that config's own keys
            err = e.errors()[0]
            loc = ".".join(["architecture", "params", *(str(p) for p in err["loc"])])
            allowed = sorted(cfg.model_fields)
            if err["type"] == "extra_forbidden":
                bad = str(err["loc"][-1])
                msg = (f"unknown field '{loc}' for architecture {self.name}.{suggest(bad, allowed)} Allowed here: "
                       f"{', '.join(allowed)}. Fix: rename or remove it.")
            else:
                got = err.get("input")
                got_s = "" if isinstance(got, (dict, list, tuple)) or err["loc"] == () else f" (got {got!r})"
                msg = (f"field '{loc}': {err['msg'].removeprefix('Value error, ')}{got_s}. Fix: correct it "
                       f"(see `edgeopt models show banking77-cnn` for a working example).")
            raise PydanticCustomError("edgeopt_located", msg) from None
        return self

    def config(self):
        from .architectures import CONFIGS

        return CONFIGS[self.name].model_validate(self.params)


class ModelFileSpec(_Frozen):
    """The user's own model: a saved file (``path``) or a Python builder (``builder``), instead of a built-in
    ``architecture``. See edgeopt/sources/."""

    path: Optional[str] = None  # tf_keras .keras / .h5 / SavedModel directory, or a Keras 3 .keras
    builder: Optional[str] = None  # "package.module:function", called as f(vocab_size=, num_classes=, seq_len=, **params)
    params: dict[str, Any] = Field(default_factory=dict)
    custom_module: Optional[str] = None  # a module whose Keras layer classes the file may use ("package.module")
    trust_model_code: bool = False  # allow Lambda layers (their Python code runs when the file is loaded)
    # the model's output labels in output order: a list, or a file with one label a line (relative to the spec).
    # The build reads the data's labels in this order; without it, output i is the data's label i (a built-in
    # data set's order, or a CSV's labels sorted).
    labels: Optional[Union[tuple[str, ...], str]] = None

    @model_validator(mode="after")
    def _one_way(self):
        if (self.path is None) == (self.builder is None):
            raise ValueError("give exactly one of 'path' (a saved model) or 'builder' (\"package.module:function\")")
        if isinstance(self.labels, tuple):
            if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels) or not all(self.labels):
                raise ValueError("labels: give every output's label once, in output order (at least two, none empty)")
        if self.path is not None and self.params:
            raise ValueError("'params' are passed to a builder; a saved model file takes none")
        if self.builder is not None:
            import re

            if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", self.builder):
                raise ValueError(f"builder {self.builder!r} is not \"package.module:function\"")
        return self


class TrainingSpec(_Frozen):
    # None: train architectures and builders, use a model file's weights as they are; true: train a model file
    # first (from its weights); false is refused for architectures and builders (they start untrained).
    fit: Optional[bool] = None
    # the defaults are the reference specs' (banking77-cnn): a user's spec trains as the reference model does
    epochs: int = Field(default=40, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1, le=65_536)
    learning_rate: float = Field(default=1e-3, gt=0, le=10)
    patience: int = Field(default=4, ge=1, le=10_000)  # early stopping on dev accuracy
    seed: int = Field(default=42, ge=0, le=2**31 - 1)  # TensorFlow's and numpy's seed range


class ModelSpec(_Frozen):
    name: str
    description: str = ""
    task: Literal["text_classification", "token_classification"] = "text_classification"

    _name = field_validator("name")(classmethod(lambda cls, v: _check_name(v)))
    data: DataSpec
    tokenizer: TokenizerSpec = TokenizerSpec()
    architecture: Optional[ArchitectureSpec] = None
    model: Optional[ModelFileSpec] = None
    training: TrainingSpec = TrainingSpec()
    # the model's own compression passes (a distilled reference spec's distill pass), on every target, before the
    # target's recipe, a --recipe file and the flags (each later one overrides a pass of the same name)
    recipe: Optional[RecipeFile] = None
    source: Optional[str] = Field(default=None, exclude=True)  # the file it was read from

    @field_validator("recipe")
    @classmethod
    def _recipe_passes_parse(cls, v):
        if v is not None:
            v.parsed()  # a bad pass is a ValueError naming passes[i]
        return v

    @model_validator(mode="after")
    def _one_model(self):
        if (self.architecture is None) == (self.model is None):
            raise ValueError("name the model exactly one way: 'architecture:' (a built-in: text_cnn, bilstm, "
                             "transformer), 'model: {path: FILE}' (a saved Keras model) or 'model: {builder: "
                             "\"package.module:function\"}'")
        from .tasks import task_for, task_of

        if task_of(self.data) != self.task:
            got = self.data.dataset or f"{self.data.files.format or 'csv/jsonl'} files"
            raise ValueError(f"task {self.task} does not fit the data ({got}): token_classification reads CoNLL "
                             f"files (data.files.format: conll) or the built-in wnut17; text_classification reads "
                             f"the other datasets and CSV/JSONL files. Fix: set 'task' to match the data")
        task_for(self.task).check_spec(self)
        if self.training.fit is False and (self.architecture is not None or self.model.builder is not None):
            raise ValueError("training.fit false applies to a model file (architectures and builders start "
                             "untrained)")
        return self

    @property
    def model_kind(self) -> str:
        return "architecture" if self.architecture is not None else "file" if self.model.path else "builder"

    @property
    def resizable(self) -> bool:
        """A built-in architecture whose vocabulary and widths are free to choose (``build --fit-size``, ``tune
        --sizes``): an Embedding of its own width, no pretrained table fixing it, a vocabulary fitted to the data."""
        cfg = self.architecture.config() if self.architecture is not None else None
        return (cfg is not None and hasattr(cfg, "embed_dim") and not getattr(cfg, "pretrained", False)
                and self.tokenizer.mode == "fitted")

    def resized(self, max_vocab: Optional[int] = None, **params) -> "ModelSpec":
        """This spec with another vocabulary cap and/or other architecture params (``embed_dim``, ``filters``...)."""
        update = {}
        if max_vocab is not None:
            update["tokenizer"] = self.tokenizer.model_copy(update={"max_vocab": max_vocab})
        if params:
            update["architecture"] = self.architecture.model_copy(
                update={"params": {**self.architecture.params, **params}})
        return self.model_copy(update=update)

    @property
    def model_label(self) -> str:
        if self.architecture is not None:
            return self.architecture.name
        return Path(self.model.path).name if self.model.path else self.model.builder


# ------------------------------------------------------------------------------------- TargetProfile
def _check_cpu_models(names) -> None:
    from .emulator.cpus import CPU_MODELS

    bad = [c for c in names if c not in CPU_MODELS]
    if bad:
        raise ValueError(f"unknown qemu CPU model(s) {bad}; edgeopt emulates {', '.join(CPU_MODELS)}")


class CostModel(_Frozen):
    """How fast the device's real core retires the emulated instructions: instructions per nanosecond, or
    instructions per cycle with a clock. An estimate, always reported with its source."""

    instructions_per_ns: Optional[float] = Field(default=None, gt=0, le=10_000)
    ipc: Optional[float] = Field(default=None, gt=0, le=64)
    clock_ghz: Optional[float] = Field(default=None, gt=0, le=100)
    source: str = Field(min_length=1)  # where the figure comes from (a measurement, a datasheet, an assumption)

    @model_validator(mode="after")
    def _one_rate(self):
        if (self.instructions_per_ns is None) == (self.ipc is None or self.clock_ghz is None):
            raise ValueError("give instructions_per_ns, or ipc with clock_ghz (one rate, not both)")
        if self.instructions_per_ns is not None and (self.ipc is not None or self.clock_ghz is not None):
            raise ValueError("give instructions_per_ns, or ipc with clock_ghz (one rate, not both)")
        return self

    @property
    def rate_per_ns(self) -> float:
        return self.instructions_per_ns if self.instructions_per_ns is not None else self.ipc * self.clock_ghz

    def estimate_ms(self, instructions: int) -> float:
        return instructions / self.rate_per_ns / 1e6


class RemoteSpec(_Frozen):
    """A real board reached over SSH (``build --on-device``, ``bench --target T --on-device``): key login only,
    host keys checked against known_hosts (edgeopt/remote.py)."""

    url: str = Field(max_length=2048)  # ssh://user@host[:port]; no password (key login only)
    key_file: str = Field(min_length=1, max_length=4096)  # the private key (relative: from the target file's directory)
    python: str = Field(default="python3", min_length=1, max_length=4096)  # the board's Python with the runtime
    known_hosts: Optional[str] = Field(default=None, max_length=4096)  # default: ~/.ssh/known_hosts

    @field_validator("url")
    @classmethod
    def _ssh_url(cls, v: str) -> str:
        """Parsed, not pattern-matched; a URL with a password is refused without being echoed."""
        from .urls import has_password, ssh_url_problem

        if has_password(v):
            raise PydanticCustomError("url_password", "the URL carries a password or secret; edgeopt logs in with a "
                                      "key only and never stores passwords: remove it and give key_file")
        if ssh_url_problem(v):
            raise PydanticCustomError("ssh_url", "must be ssh://user@host[:port] (e.g. ssh://pi@192.168.1.20)")
        return v


class DeviceSpec(_Frozen):
    arch: Literal["arm64", "armv7", "x86_64"]
    cpu: str
    qemu_cpu: Optional[str] = None  # the qemu CPU model that emulates it (edgeopt emulator list)
    cores: int = Field(ge=1, le=4096)
    memory_mb: int = Field(ge=1, le=1 << 30)
    cost_model: Optional[CostModel] = None  # turns qemu_cpu's instruction count into an estimated latency
    remote: Optional[RemoteSpec] = None  # a real board of this kind, reached over SSH

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
    # xnnpack: LiteRT's CPU delegate; gpu: LiteRT's GPU accelerator (WebGPU over Vulkan) with CPU fallback, checked
    # by build and validate on a Vulkan adapter (edgeopt gpu setup)
    delegates: tuple[Literal["xnnpack", "gpu"], ...] = ("xnnpack",)

    @model_validator(mode="after")
    def _consistent(self):
        want = {"litert": "tflite", "onnxruntime": "onnx"}[self.name]
        if self.format != want:
            raise ValueError(f"runtime {self.name} runs {want} files, not {self.format}")
        if self.name == "onnxruntime" and self.delegates:
            raise ValueError("onnxruntime takes no delegates (the CPU execution provider is used); set delegates: []")
        if len(set(self.delegates)) != len(self.delegates):
            raise ValueError(f"delegates {list(self.delegates)} repeats one")
        return self


class OnnxQuant(_Frozen):
    """ONNX Runtime quantization preset (quantize_dynamic / quantize_static)."""

    weight_type: Literal["QInt8", "QUInt8"] = "QInt8"
    activation_type: Literal["QInt8", "QUInt8"] = "QUInt8"
    format: Literal["QDQ", "QOperator"] = "QDQ"  # static only
    per_channel: bool = False
    reduce_range: bool = False  # 7-bit weights: avoids saturation in VPMADDUBSW on AVX2/AVX-512 without VNNI


class OnnxSpec(_Frozen):
    opset: int = Field(default=17, ge=13, le=99)
    quant: OnnxQuant = OnnxQuant()

    @field_validator("opset")
    @classmethod
    def _tf2onnx_opsets(cls, v):
        if v > 18:
            raise ValueError("tf2onnx 1.17 supports opsets 13 to 18 (19 fails: 'Opset 19 is not supported yet')")
        return v


class Budgets(_Frozen):
    max_accuracy_drop: Optional[float] = Field(default=None, ge=0, le=1)  # fraction, vs the float32 artifact
    max_size_bytes: Optional[int] = Field(default=None, gt=0, le=1 << 40)  # raw bytes of the deployed artifact
    max_latency_p90_ms: Optional[float] = Field(default=None, gt=0, le=3_600_000)  # target threads + delegates, this machine
    max_device_latency_p90_ms: Optional[float] = Field(default=None, gt=0, le=3_600_000)  # on device.remote (build --on-device)
    min_accuracy: Optional[float] = Field(default=None, ge=0, le=1)
    # instructions per inference on device.qemu_cpu (emulated; x86: callgrind) at the target's XNNPACK setting
    max_instructions_per_inference: Optional[int] = Field(default=None, gt=0, le=10**15)
    max_estimated_latency_ms: Optional[float] = Field(default=None, gt=0, le=3_600_000)  # needs device.cost_model
    min_macro_f1: Optional[float] = Field(default=None, ge=0, le=1)  # the deployed artifact, test split
    max_macro_f1_drop: Optional[float] = Field(default=None, ge=0, le=1)  # vs the float32 artifact
    # token classification: entity F1 (strict spans, micro) of the deployed artifact over the test split, and its
    # drop from the float32 artifact's; a sentence classifier is not judged on them
    min_f1: Optional[float] = Field(default=None, ge=0, le=1)
    max_f1_drop: Optional[float] = Field(default=None, ge=0, le=1)
    # The float32 artifact must agree with the Keras model it was exported from (argmax over the test split);
    # below this the export itself is broken, whatever the quantized artifact's accuracy drop says.
    min_export_agreement: Optional[float] = Field(default=0.99, ge=0, le=1)
    # GPU targets (delegates: [gpu, ...]): every op on the GPU (no CPU fallback; verify fails when one moves back),
    # and the largest |GPU output - CPU output| of the deployed file over the GPU run's examples at the GPU's default
    # precision (fp16)
    require_full_delegation: Optional[bool] = None
    max_gpu_deviation: Optional[float] = Field(default=None, ge=0, le=1e6)
    # the largest fall of the headline figure (accuracy; a tagger's entity F1) when the test split is typed in lower
    # case, UPPER CASE, Title Case, Capitalized or without punctuation, in edgeopt's runtime and in the client
    max_robustness_drop: Optional[float] = Field(default=None, ge=0, le=1)


class EmulatorSpec(_Frozen):
    """Emulated validation (``--emulate``): the CPU models to run on besides ``device.qemu_cpu`` and the
    test-split sample to run there (None: the whole split)."""

    cpus: tuple[str, ...] = ()
    sample: Optional[int] = Field(default=None, ge=1, le=100_000_000)

    @field_validator("cpus")
    @classmethod
    def _known(cls, v):
        _check_cpu_models(v)
        return v


class GpuSpec(_Frozen):
    """GPU targets: how the file is exported for the GPU and how much of the test split runs through it."""

    # the embedding lookups take 1-D ids (RESHAPE, GATHER, RESHAPE): LiteRT's GPU refuses GATHER on [1, seq_len]
    # ids, which sends the lookup and the graph's start to the CPU; the outputs are identical
    flat_lookup: bool = True
    sample: Optional[int] = Field(default=None, ge=1, le=100_000_000)  # test examples run through the GPU (None: the whole split)


class TuneSpec(_Frozen):
    """What `edgeopt tune` may choose for this device beyond the profile's own runtime and quantization."""

    runtimes: tuple[Literal["litert", "onnxruntime"], ...] = ()  # alternatives the device can run (default: its own)
    quantizations: tuple[Quantization, ...] = ()  # default: every mode the format has
    threads: tuple[int, ...] = ()  # default: 1 and runtime.threads (searched only where the cost is a latency)
    teachers: tuple[str, ...] = ()  # distillation teachers to try (ModelSpec names/paths, or all-MiniLM-L6-v2)

    @field_validator("threads")
    @classmethod
    def _threads(cls, v):
        if any(t < 1 or t > 64 for t in v):
            raise ValueError("threads must be between 1 and 64")
        return tuple(dict.fromkeys(v))


class TargetProfile(_Frozen):
    name: str

    _name = field_validator("name")(classmethod(lambda cls, v: _check_name(v)))
    description: str = ""
    device: DeviceSpec
    runtime: RuntimeSpec = RuntimeSpec()
    quantization: Quantization
    # tried in order when the converter fails or crashes for `quantization` (e.g. [dynamic, float32])
    fallback: tuple[Quantization, ...] = ()
    # why this order (measured): the report prints it when a build falls back
    fallback_note: Optional[str] = Field(default=None, max_length=2000)
    representative_samples: int = Field(default=200, ge=1, le=1_000_000)
    budgets: Budgets = Budgets()
    recipe: Optional[RecipeFile] = None  # default compression passes for this device (see edgeopt/recipe.py)
    onnx: Optional[OnnxSpec] = None  # ONNX targets: opset and ONNX Runtime quantization preset
    emulator: EmulatorSpec = EmulatorSpec()
    # real client libraries the deployed file is run with as the last check (TFLite targets): mediapipe
    clients: tuple[Literal["mediapipe"], ...] = ()
    tune: TuneSpec = TuneSpec()  # the search space of `edgeopt tune` on this device
    gpu: GpuSpec = GpuSpec()  # applies when runtime.delegates has gpu
    notes: str
    source: Optional[str] = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _format_fits(self):
        if self.runtime.format == "onnx":
            if self.quantization in TFLITE_ONLY:
                raise ValueError("ONNX targets take quantization float32, dynamic (ORT quantize_dynamic) or int8 "
                                 f"(ORT quantize_static); {self.quantization} is for TFLite targets")
            if self.clients:
                raise ValueError("clients (MediaPipe Tasks) run .tflite files; remove 'clients' from an ONNX target")
        elif self.onnx is not None:
            raise ValueError("an 'onnx' section needs runtime onnxruntime / format onnx")
        if self.budgets.max_estimated_latency_ms is not None and self.device.cost_model is None:
            raise ValueError("budgets.max_estimated_latency_ms needs device.cost_model (the rate that turns emulated "
                             "instructions into an estimate, with its source)")
        if self.device.cost_model is not None and not self.device.qemu_cpu:
            raise ValueError("device.cost_model applies to device.qemu_cpu's instruction count; set qemu_cpu")
        if self.budgets.max_device_latency_p90_ms is not None and self.device.remote is None:
            raise ValueError("budgets.max_device_latency_p90_ms is measured on the board: add device.remote (url, "
                             "key_file, python)")
        if (self.budgets.max_instructions_per_inference is not None and self.device.arch == "arm64"
                and not self.device.qemu_cpu):
            raise ValueError("budgets.max_instructions_per_inference is counted on device.qemu_cpu (the emulated "
                             "core); set qemu_cpu")
        return self

    @model_validator(mode="after")
    def _fallback_distinct(self):
        chain = (self.quantization, *self.fallback)
        if len(set(chain)) != len(chain):
            raise ValueError(f"fallback {list(self.fallback)} repeats a mode (the quantization is tried first, then "
                             f"each fallback once)")
        bad = [m for m in self.fallback if m in TFLITE_ONLY]
        if self.runtime.format == "onnx" and bad:
            raise ValueError(f"fallback {bad[0]} is for TFLite targets")
        return self

    @property
    def uses_gpu(self) -> bool:
        return "gpu" in self.runtime.delegates

    @property
    def flat_lookup(self) -> bool:
        """Export the embedding lookups with 1-D ids (GPU targets, unless gpu.flat_lookup is false)."""
        return self.uses_gpu and self.gpu.flat_lookup

    @model_validator(mode="after")
    def _gpu_budgets(self):
        b = self.budgets
        if (b.require_full_delegation is not None or b.max_gpu_deviation is not None) and not self.uses_gpu:
            raise ValueError("budgets.require_full_delegation and max_gpu_deviation are about the GPU: add gpu to "
                             "runtime.delegates")
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
            from .recipe import check_order

            names = [n for n, _ in v.parsed()]  # raises ValueError naming the pass and field
            try:
                check_order(names, "recipe")  # the same order rule `build` applies
            except SpecError as e:
                raise ValueError(str(e).removeprefix("recipe: ").split(" Fix:")[0].rstrip(".")) from None
        return v

    @model_validator(mode="after")
    def _recipe_fits_format(self):
        if self.recipe is not None and self.runtime.format == "onnx":
            if any(n == "qat" for n, _ in self.recipe.parsed()):
                raise ValueError("a qat pass ends in a TFLite int8 graph; this is an ONNX target (use ptq: int8, "
                                 "ONNX Runtime static quantization, instead)")
            if self.recipe.ptq in TFLITE_ONLY:
                raise ValueError(f"recipe.ptq {self.recipe.ptq} is for TFLite targets; ONNX targets take float32, "
                                 "dynamic or int8")
        return self


# ------------------------------------------------------------------------------------------ loading
def _rel(base: Path, v: Optional[str]) -> Optional[str]:
    return None if v is None else str(Path(v) if Path(v).is_absolute() else base / v)


def load_model_spec_file(path) -> ModelSpec:
    spec = parse_file(Path(path), ModelSpec)
    base = Path(path).resolve().parent
    # paths in a spec (model file, tokenizer files, data files) are relative to the spec file
    if spec.model is not None and spec.model.path is not None:
        spec = spec.model_copy(update={"model": spec.model.model_copy(update={"path": _rel(base, spec.model.path)})})
    if spec.model is not None and isinstance(spec.model.labels, str):
        spec = spec.model_copy(update={"model": spec.model.model_copy(update={"labels": _rel(base, spec.model.labels)})})
    tk = spec.tokenizer
    if tk.vocab_file or tk.huggingface:
        spec = spec.model_copy(update={"tokenizer": tk.model_copy(update={
            "vocab_file": _rel(base, tk.vocab_file), "huggingface": _rel(base, tk.huggingface)})})
    if spec.recipe is not None:
        spec = spec.model_copy(update={"recipe": spec.recipe.relative_to(base)})
    return spec.model_copy(update={"data": data_relative_to(spec.data, base)})


def data_relative_to(data: DataSpec, base: Path) -> DataSpec:
    """``data`` with its files' relative paths taken relative to ``base`` (the directory of the YAML naming them)."""
    if data.files is None:
        return data
    f = data.files
    fix = {k: _rel(base, v) for k, v in (("train", f.train), ("test", f.test), ("dev", f.dev)) if v}
    return data.model_copy(update={"files": f.model_copy(update=fix)})


class DataFile(_Frozen):
    """A YAML holding only a ``data:`` section (``edgeopt build MODEL_FILE --data FILE.yaml``)."""

    data: DataSpec


def load_target_file(path) -> TargetProfile:
    return parse_file(Path(path), TargetProfile)
