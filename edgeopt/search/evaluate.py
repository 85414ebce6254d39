"""Evaluating one candidate: the public way `tune`, the benchmarks and a user's own scripts measure a point of the
space, with the same pipeline `build` runs (the plan's checks, the cached passes, the conversions, the runtimes).

An :class:`Evaluator` holds one pipeline builder for one model and one target, so every candidate reuses the pass
outputs it shares with others (in memory, and on disk through the artifact cache): the reference model is trained
once, a pruned model once for all the quantizations it is converted to, a conversion once for XNNPACK on and off.
Candidates are measured on the **dev** split by default; the test split is for the final build of a pick.
"""
from __future__ import annotations

import math
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

GPU_SAMPLE = 300  # dev examples a GPU target's candidates run through the GPU (a software adapter: ~6 ms each)

from ..errors import Hopeless
from ..pipeline.plan import LATENCY_INPUTS
from ..specs import TargetProfile
from .space import Candidate, Space, space_for

HOPELESS_SLACK = 0.05  # how far below the accuracy floor a fine-tuning epoch's dev accuracy may be before stopping


class Evaluator:
    """Measures candidates of ``model`` on ``target`` (names, paths or loaded objects)."""

    def __init__(self, model, target, *, quiet: bool = False, use_cache: bool = True, latency=None,
                 on_device: bool = False, teachers: tuple[str, ...] = (), host_cost: bool = False,
                 sizes: bool = False):
        from ..pipeline import LatencySettings, BuildSession
        from ..pipeline import plan as _plan
        from ..registry import load_target
        from .space import sizes_for

        self.target = target if isinstance(target, TargetProfile) else load_target(target)
        self.quiet, self.on_device = quiet, on_device
        self._tmp = tempfile.TemporaryDirectory(prefix="edgeopt-evaluate-")
        self._plan_out = Path(self._tmp.name) / "plan"  # plans are checked against an out dir; nothing is built there
        p0 = _plan(model, [self.target], out=str(self._plan_out), count=False, use_cache=use_cache)
        self.spec = p0.spec
        self.space: Space = space_for(self.target, teachers, on_device, host_cost,
                                      sizes_for(self.spec) if sizes else None)
        self.model_arg = model
        self.builder = BuildSession(p0, quiet, latency or LatencySettings())
        self._builders: dict = {}  # a sized candidate's spec -> its session (its own vocabulary and splits)
        self._plans: dict = {}
        # (validator, artifact sha256, split) -> its record: counts (XNNPACK on and off) and GPU runs, once per file
        self._memo: dict[tuple, dict] = {}
        self._reference: Optional[tuple] = None
        self._board = None
        if self.space.signal == "instructions" or on_device:
            self._check_cost_tools()

    # ------------------------------------------------------------------------------------------------ set-up
    def _check_cost_tools(self) -> None:
        """Before any training: the counter's tools (arm64 targets) or the board (--on-device)."""
        if self.on_device:
            from ..pipeline.plan import board_for

            self._board = board_for(self.target)
        elif self.space.signal == "instructions":
            from ..emulator.validate import require_counter
            from ..validate.cost import counted_on

            require_counter(counted_on(self.target), self.target)

    def target_plan(self, c: Candidate):
        """The checked plan of ``c`` (the same checks `build` makes: recipe order, layers, format)."""
        from ..pipeline import plan as _plan

        key = (c.runtime, c.quantization, c.xnnpack, c.threads, c.max_vocab, c.embed_dim, c.width, tuple(sorted(
            (k, v.model_dump_json()) for k, v in c.passes().items())))
        if key not in self._plans:
            self._plans[key] = _plan(c.spec_for(self.spec), [c.profile(self.target)], out=str(self._plan_out),
                                     passes=c.passes(), ptq=c.quantization, count=False,
                                     use_cache=self.builder.p.use_cache)
        return self._plans[key]

    def builder_for(self, c: Candidate):
        """The build session whose data and tokenizer candidate ``c`` trains and is measured with: the reference
        model's, or (a candidate of another vocabulary cap or width) one of its own, sharing the data and caches."""
        from ..pipeline import BuildSession

        spec = c.spec_for(self.spec)
        if spec == self.spec:
            return self.builder
        key = spec.model_dump_json()
        if key not in self._builders:
            self._builders[key] = BuildSession(self.target_plan(c), self.quiet, self.builder.latency,
                                               parent=self.builder)
        return self._builders[key]

    def data(self, split: str):
        """(token ids, labels) of the ``dev`` or ``test`` split."""
        s = self._split(split)
        return s.x, s.y

    # ---------------------------------------------------------------------------------------------- measuring
    def _passes(self, c: Candidate, on_epoch: Optional[Callable] = None):
        """(model, pass records, cache key, target plan) of candidate ``c``: its passes run or fetched from the
        cache. ``on_epoch`` sees every fine-tuning epoch's dev accuracy (and may raise)."""
        p = self.target_plan(c)
        tp = p.targets[0]
        # its own plan (teacher, facts); the data, tokenizer and caches stay the session's
        model, records, k, _ = self.builder_for(c).run_steps(tp.steps, plan=p, on_epoch=on_epoch)
        return model, records, k, tp

    def artifact(self, c: Candidate, on_epoch: Optional[Callable] = None) -> tuple[bytes, str, list]:
        """(file bytes, deployed quantization, pass records) of candidate ``c``, converted (memoized)."""
        model, records, k, tp = self._passes(c, on_epoch)
        return self.builder_for(c).convert(k, model, tp.ptq, tp.representative_samples, tp.target), tp.ptq, records

    def keras_model(self, c: Candidate):
        """The tf_keras model candidate ``c``'s passes produce (trained or fetched from the cache)."""
        return self._passes(c)[0]

    def reference(self) -> dict:
        """The float32 file of the reference model (no compression) in the target's own format, on the dev split:
        what every candidate's accuracy drop is measured against."""
        return self._reference_evidence()[1]

    def _split(self, split: str, b=None):
        from ..validate.base import Split

        b = b or self.builder
        if split == "test":
            return b.test_split
        if split != "dev":
            raise ValueError(f"split must be 'dev' or 'test', not {split!r}")
        return Split("dev", b.ctx.x_dev, b.ctx.y_dev, texts=tuple(b.ds.dev.texts), gold=b.ds.dev.labels)

    def _request(self, path: Path, split: str, builder=None, **kw):
        """What the validators measure ``path`` with: the split as ``builder``'s tokenizer encodes it (a sized
        candidate's own; default the reference model's)."""
        from ..validate.base import MeasureRequest

        b = builder or self.builder
        return MeasureRequest(path, self.target, b.task, self._split(split, b), tuple(b.ds.label_names),
                              b.p.spec.training.seed, quiet=True, memo=self._memo, tokenizer=b.tok, **kw)

    def _reference_evidence(self):
        from ..runtimes import RuntimeOptions
        from ..validate.measure import measure_artifact

        if self._reference is None:
            preset_fmt = self.space.preset.format
            ref = Candidate(self.space.preset.runtime, "float32", False, 1)
            data, _, _ = self.artifact(ref)
            label = f"float32 .{preset_fmt} of the reference model"
            with _as_file(data, preset_fmt) as path:
                ev = measure_artifact(self._request(path, "dev", name=label,
                                                    run=RuntimeOptions(threads=1, xnnpack=False)),
                                      only=("size", "quality"))
            q = ev.quality
            self._reference = (ev, {"artifact": label, "split": "dev", "examples": q.rows, "accuracy": q.accuracy,
                                    "macro_f1": q.macro_f1, "finite": q.finite})
        return self._reference

    def evaluate(self, c: Candidate, split: str = "dev", on_epoch: Optional[Callable] = None) -> dict:
        """Quality on ``split``, size, and cost of candidate ``c``: the device's signal (instructions per inference
        on the target's emulated CPU, latency on its board) and the build machine's latency, each labelled; and the
        target's budgets judged on it (``budgets``), as ``build`` judges its deployed file."""
        from ..runtimes import RuntimeOptions
        from ..validate import budgets as bud_v
        from ..validate import cost
        from ..validate.base import LatencyPlan
        from ..validate.measure import measure_artifact

        t0 = time.perf_counter()
        ref_ev = self._reference_evidence()[0] if split == "dev" else None
        data, ptq, records = self.artifact(c, on_epoch)
        lat = self.builder.latency
        at = RuntimeOptions(threads=c.threads, xnnpack=c.xnnpack)
        with _as_file(data, c.format) as path:  # written once: every validator reads the same file
            ev = measure_artifact(self._request(
                path, split, self.builder_for(c), name="artifact", run=RuntimeOptions(threads=1, xnnpack=c.xnnpack),
                judged_at=(c.threads, c.xnnpack), against=ref_ev, robustness=True,
                latency=LatencyPlan((at,), lat.warmup, lat.iterations, LATENCY_INPUTS),
                count=cost.counted_on(self.target) if self.space.signal == "instructions" else None,
                board=self._board if self.on_device else None,
                gpu="check" if self.target.uses_gpu and c.format == "tflite" else None,
                gpu_sample=self.target.gpu.sample or GPU_SAMPLE))
        q, size, st = ev.quality, ev.size, ev["latency"].rows[0]
        out = {"candidate": c.to_dict(), "deployed_quantization": ptq, "split": split, "examples": q.rows,
               "accuracy": q.accuracy, "macro_f1": q.macro_f1, "finite": q.finite, "size_bytes": size.size_bytes,
               "gzip_bytes": size.gzip_bytes, "sha256": size.sha256}
        if ref_ev is not None:
            out["accuracy_drop"] = round(ev.drop("accuracy"), 6)
            out["macro_f1_drop"] = round(ev.drop("macro_f1"), 6)
        out["host_latency"] = {"p50_ms": st.p50_ms, "p90_ms": st.p90_ms, "threads": st.threads,
                               "xnnpack": st.xnnpack, "delegate_applied": st.delegate_applied,
                               "runtime": st.runtime, "unit": "ms (build machine)",
                               "machine": f"{st.machine.get('arch')} {st.machine.get('cpu')}"}
        out["instructions"] = cost.instructions_of(ev["count"], c.xnnpack) if "count" in ev else None
        out["device_latency"] = None
        if "board" in ev:
            out["device_latency"] = {k: ev["board"].get(k) for k in ("remote", "label", "board", "p50_ms", "p90_ms",
                                                                      "p99_ms", "threads", "xnnpack")}
            out["device_latency"]["unit"] = "ms (device)"
        if "gpu" in ev:
            out["gpu"] = ev["gpu"]
        out["cost"], out["cost_label"] = self.cost_of(out)
        out["budgets"] = bud_v.check(self.target.budgets, ev).model_dump()  # a trial's attributes are JSON
        out["passes"] = [{"step": r["step"], "cached": r.get("cached"), "key": r.get("key")} for r in records]
        out["seconds"] = round(time.perf_counter() - t0, 2)
        return out

    @property
    def cost_label(self) -> str:
        """What the cost is, in words (a count is not a time; the build machine is not the device)."""
        from ..validate.cost import signal_label

        return signal_label(self.space.signal, self.target)

    def cost_of(self, m: dict) -> tuple[Optional[float], str]:
        """The device's cost signal in a measurement, and its label."""
        from ..validate.cost import cost_value

        return cost_value(self.space.signal, m), self.cost_label

    def close(self) -> None:
        self._tmp.cleanup()


@contextmanager
def _as_file(data: bytes, fmt: str):
    """``data`` as a model file in a temporary directory (the runtimes load paths)."""
    with tempfile.TemporaryDirectory(prefix="edgeopt-evaluate-") as d:
        path = Path(d) / f"model.{fmt}"
        path.write_bytes(data)
        yield path


def hopeless_floor(target: TargetProfile, reference_accuracy: float) -> Optional[float]:
    """The dev accuracy below which (minus a slack) a fine-tuning candidate is stopped: the accuracy budget."""
    b = target.budgets
    floors = [v for v in ((reference_accuracy - b.max_accuracy_drop) if b.max_accuracy_drop is not None else None,
                          b.min_accuracy) if v is not None]
    return max(floors) - HOPELESS_SLACK if floors else None


def stop_when_hopeless(floor: Optional[float]) -> Optional[Callable]:
    """An ``on_epoch`` hook: from the second half of a fine-tuning pass on, a dev accuracy under ``floor`` stops
    the candidate (raises :class:`Hopeless`). Pruning dips while its schedule runs and recovers after; the first
    half of a pass is never judged."""
    if floor is None:
        return None

    def hook(label: str, epoch: int, epochs: int, dev_accuracy: float) -> None:
        if epoch >= math.ceil(epochs / 2) and dev_accuracy < floor:
            raise Hopeless(f"{label} epoch {epoch}/{epochs}: dev accuracy {dev_accuracy:.4f} < {floor:.4f} (the "
                           f"accuracy budget minus {HOPELESS_SLACK})")

    return hook


def evaluate(model, target, candidate: Optional[Candidate] = None, split: str = "dev", **kw) -> dict:
    """Measure one candidate (default: the target's own preset) of ``model`` on ``target``; see :class:`Evaluator`."""
    ev = Evaluator(model, target, **kw)
    try:
        return ev.evaluate(candidate or ev.space.preset, split)
    finally:
        ev.close()
