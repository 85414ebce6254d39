"""LiteRT (ai-edge-litert) Interpreter runtime, XNNPACK on or off, N threads. Does not import TensorFlow."""
from __future__ import annotations

from importlib import metadata

import numpy as np

from ..errors import ArtifactError, RuntimeFailure
from .base import LatencyStats, RuntimeOptions, check_token_model, raise_invoke_error, stats_from, time_calls


class LiteRTSession:
    runtime = "litert"

    def __init__(self, path, options: RuntimeOptions):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from ..inspect import read_tflite

        _, model, _ = read_tflite(path)  # clear error for a missing / non-TFLite / corrupt file before C++ sees it
        try:
            sub = model.Subgraphs(0)
            # Converted LSTMs keep their state in variable tensors that persist across invoke() calls; a stateless
            # Keras model must start every call from zero state, so reset them before each call (an app must too).
            self.variable_tensors = sum(bool(sub.Tensors(k).IsVariable()) for k in range(sub.TensorsLength()))
        except Exception as e:  # a damaged flatbuffer: offsets past the end (struct.error), bad numbers (TypeError)
            raise ArtifactError(f"{path}: corrupt TFLite flatbuffer ({type(e).__name__} while reading its tensors). "
                                f"Fix: re-export the model.") from None
        self.path, self.options = str(path), options
        self.delegate_error = None
        no_delegates = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}

        def load(kw):
            it = Interpreter(model_path=self.path, num_threads=options.threads, **kw)
            it.allocate_tensors()
            return it

        try:
            try:
                self.it = load({} if options.xnnpack else no_delegates)
            except (ValueError, RuntimeError) as e:
                if not options.xnnpack or "delegate" not in str(e).lower():
                    raise
                # XNNPACK refused the graph (e.g. some sparse or asymmetric int8 models): run on the builtin
                # kernels and say so, rather than fail the build. delegate_applied will read False.
                self.delegate_error = " ".join(str(e).split())[:300]
                self.it = load(no_delegates)
        except Exception as e:  # the C++ verifier's refusal arrives as ValueError/RuntimeError, or worse
            msg = " ".join(str(e).split())[:300]
            raise ArtifactError(f"{path}: LiteRT cannot load it ({msg}). Fix: re-export the model, or check that "
                                f"this runtime supports its ops.") from None
        try:  # the details decode names and types from the file: a damaged one fails here, not mid-measurement
            ins, outs = self.it.get_input_details(), self.it.get_output_details()
            self._delegate_applied = any(op["op_name"] == "DELEGATE" for op in self.it._get_ops_details())
        except Exception as e:
            raise ArtifactError(f"{path}: corrupt TFLite model ({type(e).__name__} reading its tensors and ops). "
                                f"Fix: re-export the model.") from None
        check_token_model(path, [(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"])) for d in ins],
                          [(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"])) for d in outs])
        self._in, self._out = ins[0], outs[0]
        self._batch = int(self._in["shape"][0])
        self.version = metadata.version("ai-edge-litert")

    @property
    def delegate_applied(self) -> bool:
        return self._delegate_applied  # read from the loaded graph at load time

    @property
    def input_shape(self) -> tuple:
        return tuple(int(d) for d in self._in["shape"])

    def _quant_in(self, x: np.ndarray) -> np.ndarray:
        dt = self._in["dtype"]
        if dt in (np.int8, np.uint8) and self._in["quantization"][0]:
            scale, zp = self._in["quantization"]
            x = np.clip(np.round(x / scale + zp), np.iinfo(dt).min, np.iinfo(dt).max)
        return x.astype(dt)

    def _dequant_out(self, y: np.ndarray) -> np.ndarray:
        if y.dtype in (np.int8, np.uint8, np.int16) and self._out["quantization"][0]:
            scale, zp = self._out["quantization"]
            return (y.astype(np.float32) - zp) * scale
        return y.astype(np.float32)

    def run(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] != self.input_shape[1]:
            raise ArtifactError(f"{self.path}: takes token ids of shape (N, {self.input_shape[1]}), was given "
                                f"{tokens.shape}: it was built with another tokenizer (seq_len). Fix: use the spec it "
                                f"was built from.")
        b = self._batch
        outs = []
        for i in range(0, len(tokens), b):
            chunk = tokens[i:i + b]
            n = len(chunk)
            if n < b:
                chunk = np.concatenate([chunk, np.zeros((b - n, chunk.shape[1]), chunk.dtype)])
            if self.variable_tensors:
                self.it.reset_all_variables()
            self.it.set_tensor(self._in["index"], self._quant_in(chunk))
            try:
                self.it.invoke()
            except RuntimeError as e:  # e.g. "gather index out of bounds": ids from another vocabulary
                raise_invoke_error(self.path, e)
            outs.append(self._dequant_out(self.it.get_tensor(self._out["index"]))[:n])
        return np.concatenate(outs) if outs else np.zeros((0,) + tuple(self._out["shape"][1:]), np.float32)

    def benchmark(self, tokens: np.ndarray, warmup: int = 20, iterations: int = 200) -> LatencyStats:
        """Per-call latency of one batch: (reset state,) set input, invoke, read output: what an app pays."""
        b = self._batch
        batches = [self._quant_in(np.asarray(tokens[i:i + b])) for i in range(0, len(tokens) - b + 1, b)]
        if not batches:
            raise RuntimeFailure("benchmark needs at least one input batch")
        it, i_idx, o_idx, stateful = self.it, self._in["index"], self._out["index"], bool(self.variable_tensors)

        def call(k):
            if stateful:
                it.reset_all_variables()
            it.set_tensor(i_idx, batches[k])
            it.invoke()
            it.get_tensor(o_idx)

        times = time_calls(call, len(batches), warmup, iterations)
        return stats_from(times, runtime=f"litert-interpreter {self.version}", options=self.options,
                          delegate_applied=self.delegate_applied, warmup=warmup, delegate_error=self.delegate_error)
