"""ONNX Runtime session on the CPU execution provider, N intra-op threads."""
from __future__ import annotations

from importlib import metadata

import numpy as np

from ..errors import ArtifactError, RuntimeFailure
from .base import LatencyStats, RuntimeOptions, check_token_model, raise_invoke_error, stats_from, time_calls


class OnnxRuntimeSession:
    runtime = "onnxruntime"
    variable_tensors = 0  # ONNX recurrent ops are stateless between runs
    delegate_error = None

    def __init__(self, path, options: RuntimeOptions):
        import onnxruntime as ort

        from ..files import regular_file

        p = regular_file(path, ".onnx file", ArtifactError)
        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self.sess = ort.InferenceSession(str(p), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as e:
            msg = " ".join(str(e).split())[:300]
            raise ArtifactError(f"{p}: ONNX Runtime cannot load it ({msg}). Fix: re-export the model.") from None
        self.path, self.options = str(p), options
        _types = {"tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(float)": np.float32,
                  "tensor(float16)": np.float16, "tensor(double)": np.float64, "tensor(int8)": np.int8,
                  "tensor(uint8)": np.uint8}

        def desc(args):
            return [(a.name, tuple(d if isinstance(d, int) else -1 for d in a.shape),
                     np.dtype(_types.get(a.type, np.object_))) for a in args]

        ins = desc(self.sess.get_inputs())
        if ins and ins[0][1][:1] == (-1,):  # a dynamic batch is fine here (ONNX exports keep one)
            ins = [(ins[0][0], (1,) + ins[0][1][1:], ins[0][2])]
        check_token_model(p, ins, desc(self.sess.get_outputs()))
        self._in = self.sess.get_inputs()[0]
        self._dtype = np.dtype(_types[self._in.type])
        self.provider = self.sess.get_providers()[0]
        self.version = metadata.version("onnxruntime")

    @property
    def delegate_applied(self) -> bool:
        return False  # no delegate: the execution provider is recorded instead

    @property
    def input_shape(self) -> tuple:
        return tuple(d if isinstance(d, int) else -1 for d in self._in.shape)

    def run(self, tokens: np.ndarray) -> np.ndarray:
        tokens = np.asarray(tokens)
        seq = self._in.shape[1]
        if tokens.ndim != 2 or (isinstance(seq, int) and tokens.shape[1] != seq):
            raise ArtifactError(f"{self.path}: takes token ids of shape (N, {seq}), was given {tokens.shape}: it was "
                                f"built with another tokenizer (seq_len). Fix: use the spec it was built from.")
        if len(tokens) == 0:
            return np.zeros((0, self.sess.get_outputs()[0].shape[1]), np.float32)
        tokens = tokens.astype(self._dtype)
        try:
            outs = [self.sess.run(None, {self._in.name: tokens[i:i + 256]})[0] for i in range(0, len(tokens), 256)]
        except Exception as e:  # onnxruntime's own exception types (e.g. INVALID_ARGUMENT for out-of-range ids)
            raise_invoke_error(self.path, e)
        return np.concatenate(outs).astype(np.float32)

    def benchmark(self, tokens: np.ndarray, warmup: int = 20, iterations: int = 200) -> LatencyStats:
        rows = [np.asarray(tokens[i:i + 1], self._dtype) for i in range(len(tokens))]
        if not rows:
            raise RuntimeFailure("benchmark needs at least one input")
        sess, name = self.sess, self._in.name

        def call(k):
            sess.run(None, {name: rows[k]})

        times = time_calls(call, len(rows), warmup, iterations)
        return stats_from(times, runtime=f"onnxruntime {self.version} ({self.provider})",
                          options=RuntimeOptions(self.options.threads, xnnpack=False),
                          delegate_applied=False, warmup=warmup)
