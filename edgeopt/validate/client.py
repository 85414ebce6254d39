"""The ``clients`` validator: the real libraries an app uses, run on the artifact over the split as an app runs
them (MediaPipe Tasks' TextClassifier, in its own environment; clients/mediapipe.py), each compared with
edgeopt's own run of the same file."""
from __future__ import annotations

from pathlib import Path

from ..console import log
from .base import MeasureRequest


class ClientValidator:
    name = "clients"
    section = "clients"  # a build manifest's key for its record: the real clients run on the file

    def applies(self, req: MeasureRequest) -> bool:
        return bool(req.clients)

    def measure(self, req: MeasureRequest, so_far) -> tuple:
        if not req.task.clients:
            log(req.quiet, f"[edgeopt] {req.target.name}: clients {', '.join(req.clients)} not run: they classify "
                           f"sentences, and this model tags tokens")
            return ()
        out = []
        if "mediapipe" in req.clients and Path(req.path).suffix.lower() == ".tflite":
            from ..clients import mediapipe as mp

            out.append(mp.check(Path(req.path), list(req.split.texts), req.split.y, so_far["quality"].logits,
                                list(req.label_names), req.tokenizer, req.quiet))
        return tuple(out)
