"""The runtime protocol: ``load(path, options) -> Session``; ``session.run(x)``; ``session.benchmark(...)``."""
from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Callable, Optional, Protocol

import numpy as np


@dataclass(frozen=True)
class RuntimeOptions:
    threads: int = 1
    xnnpack: bool = True


@dataclass(frozen=True)
class LatencyStats:
    runtime: str
    threads: int
    xnnpack: bool
    delegate_applied: bool  # detected from the loaded graph, not assumed from the options
    warmup: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    machine: dict
    delegate_error: Optional[str] = None  # why a requested delegate was not applied (then builtin kernels ran)

    def to_dict(self) -> dict:
        return asdict(self)


class Session(Protocol):
    runtime: str
    options: RuntimeOptions

    @property
    def delegate_applied(self) -> bool: ...

    def run(self, tokens: np.ndarray) -> np.ndarray:
        """(N, seq_len) int32 token ids -> (N, num_classes) float32 logits."""

    def benchmark(self, tokens: np.ndarray, warmup: int = 20, iterations: int = 200) -> LatencyStats: ...


@lru_cache(maxsize=1)
def machine_info() -> dict:
    """Where a measurement was taken. Latency measured here is this machine's, not the target device's."""
    cpu = platform.processor() or ""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and not cpu.strip(" x86_64"):
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    fl = set(line.split(":", 1)[1].split())
                    flags = ",".join(x for x in ("avx2", "avx512f", "avx512_vnni", "fma") if x in fl)
    except OSError:
        pass
    return {"arch": platform.machine(), "cpu": cpu, "isa_flags": flags, "cores": os.cpu_count(),
            "os": platform.platform(terse=True), "python": platform.python_version(), "emulated": False,
            "kind": "host"}


def check_token_model(path, inputs: list[tuple], outputs: list[tuple]) -> None:
    """Refuse, in one line, a model that is not an edgeopt text model: one integer token-id input of shape
    (batch, seq_len) and one output of shape (batch, classes), or (batch, seq_len, tags) for a tagger. ``inputs``/``outputs``: (name, shape, dtype) with -1
    (or None) for a dynamic dimension."""
    from ..errors import ArtifactError

    fix = "Fix: give a text model with one int32 token-id input [batch, seq_len] (as `edgeopt build` exports)."
    if len(inputs) != 1:
        raise ArtifactError(f"{path}: has {len(inputs)} inputs; edgeopt runs token-id models with exactly one. {fix}")
    name, shape, dtype = inputs[0]
    if len(shape) != 2:
        raise ArtifactError(f"{path}: input {name!r} has rank {len(shape)} (shape {list(shape)}); token ids are "
                            f"rank 2. {fix}")
    if dtype.kind not in "iu":
        raise ArtifactError(f"{path}: input {name!r} is {dtype}, not integer token ids. {fix}")
    if not isinstance(shape[1], int) or shape[1] < 1:
        raise ArtifactError(f"{path}: input {name!r} has a dynamic sequence length ({shape[1]}); edgeopt pads to a "
                            f"fixed seq_len. Fix: export with a fixed sequence length.")
    out = list(outputs[0][1]) if outputs else []
    tagger = len(out) == 3 and out[1] in (shape[1], -1, None)  # [batch, seq_len, tags]: a token classifier
    if len(outputs) < 1 or (len(out) != 2 and not tagger):
        got = [list(o[1]) for o in outputs]
        raise ArtifactError(f"{path}: outputs {got}; a text classifier has one [batch, classes] output (a tagger "
                            f"[batch, seq_len, tags]). {fix}")


def raise_invoke_error(path, err: Exception):
    from ..errors import ArtifactError

    msg = " ".join(str(err).split())[:200]
    hint = (" The token ids are outside this artifact's vocabulary: it was built with another tokenizer. Fix: "
            "validate with the spec it was built from." if "out of bounds" in msg or "index" in msg.lower() else
            " Fix: re-export the model.")
    raise ArtifactError(f"{path}: the runtime failed on it ({msg}).{hint}") from None


def time_calls(call: Callable[[int], None], n_inputs: int, warmup: int, iterations: int) -> np.ndarray:
    """Run ``call(i)`` ``warmup`` times untimed, then ``iterations`` times timed; returns ms per call."""
    for i in range(warmup):
        call(i % n_inputs)
    out = np.empty(iterations, dtype=np.float64)
    clock = time.perf_counter_ns
    for i in range(iterations):
        t0 = clock()
        call(i % n_inputs)
        out[i] = (clock() - t0) / 1e6
    return out


def stats_from(times_ms: np.ndarray, *, runtime: str, options: RuntimeOptions, delegate_applied: bool,
               warmup: int, delegate_error: Optional[str] = None) -> LatencyStats:
    p50, p90, p99 = np.percentile(times_ms, [50, 90, 99])
    return LatencyStats(runtime=runtime, threads=options.threads, xnnpack=options.xnnpack,
                        delegate_applied=delegate_applied, warmup=warmup, iterations=len(times_ms),
                        p50_ms=round(float(p50), 5), p90_ms=round(float(p90), 5), p99_ms=round(float(p99), 5),
                        mean_ms=round(float(times_ms.mean()), 5), std_ms=round(float(times_ms.std()), 5),
                        min_ms=round(float(times_ms.min()), 5), machine=machine_info(),
                        delegate_error=delegate_error)
