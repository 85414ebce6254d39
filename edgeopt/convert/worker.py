"""The TFLite converter, run in a process of its own.

TF 2.21's converter can kill the process it runs in: full-int8 conversion of a GRU or SimpleRNN dies with SIGSEGV
(exit 139, measured here). edgeopt therefore never converts in its own process: :class:`Worker` starts this module
once per edgeopt process (``python -m edgeopt.convert.worker``; TensorFlow is imported once there), hands it each
model as a SavedModel with one ``tokens`` signature, and reads the .tflite it writes. A worker that dies is reported
as :class:`ConverterCrash` (the signal and the mode) and a fresh one is started for the next conversion.

Requests and replies are JSON lines on the worker's stdin and a duplicate of its original stdout; its own stdout and
stderr both go to the parent's stderr (the native log).
"""
from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import threading

from ..errors import ConverterCrash


def convert_saved_model(saved: str, mode: str, rep_path: str | None, out: str) -> None:
    from ..tf import tf

    T = tf()
    import numpy as np

    conv = T.lite.TFLiteConverter.from_saved_model(saved)
    if mode != "float32":
        conv.optimizations = [T.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [T.float16]
    if mode in ("int8", "int16x8"):
        rep = np.load(rep_path).astype(np.int32)

        def gen():
            for row in rep:
                yield [row[None, :]]

        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [T.lite.OpsSet.TFLITE_BUILTINS_INT8 if mode == "int8" else
                                          T.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    data = conv.convert()
    with open(out + ".part", "wb") as f:
        f.write(data)
    os.replace(out + ".part", out)


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything TF prints goes to stderr, not into the protocol
    sys.stdout = sys.stderr
    for line in sys.stdin:
        req = json.loads(line)
        try:
            convert_saved_model(req["saved"], req["mode"], req.get("rep"), req["out"])
            reply = {"ok": True}
        except Exception as e:  # the converter raises many types; the parent words the error
            reply = {"ok": False, "error": str(e), "type": type(e).__name__}
        proto.write(json.dumps(reply) + "\n")


class Worker:
    """A converter process, started on first use and restarted after a crash."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def _start(self):
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        self.proc = subprocess.Popen([sys.executable, "-m", "edgeopt.convert.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def convert(self, saved: str, mode: str, rep: str | None, out: str) -> dict:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                self.proc.stdin.write(json.dumps({"saved": saved, "mode": mode, "rep": rep, "out": out}) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                rc = self.proc.wait()
                self.proc = None
                raise ConverterCrash(mode, rc)
            return json.loads(line)

    def kill(self):
        """At an interrupt: the converter ends now (nothing it writes is kept: each .tflite is renamed into place
        only when whole)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
        self.proc = None


_WORKER = Worker()
atexit.register(_WORKER.close)


def worker() -> Worker:
    return _WORKER


if __name__ == "__main__":
    main()
