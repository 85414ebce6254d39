"""Runs inside the mediapipe-client environment (mediapipe 1.2.2), never in edgeopt's: MediaPipe Tasks'
TextClassifier on a ``.tflite`` with metadata, as an app runs it (MediaPipe tokenizes the text itself).

stdin: ``{"model": PATH, "texts": PATH (a JSON list of strings), "out": PATH (.npz)}``. Writes ``top`` (the index
of the first category the client returns, its top-1), ``scores`` (every category's score, by index) and
``label`` (the top-1's category name); prints ``{"seconds", "examples"}``.
"""
import json
import sys
import time

import numpy as np
from mediapipe.tasks.python.core import base_options
from mediapipe.tasks.python.text import text_classifier


def main():
    req = json.load(sys.stdin)
    with open(req["texts"], encoding="utf-8") as f:
        texts = json.load(f)
    opts = text_classifier.TextClassifierOptions(base_options=base_options.BaseOptions(model_asset_path=req["model"]),
                                                 max_results=-1)
    clf = text_classifier.TextClassifier.create_from_options(opts)
    t0 = time.perf_counter()
    top, labels, scores = [], [], None
    try:
        for i, text in enumerate(texts):
            cats = clf.classify(text).classifications[0].categories
            if scores is None:
                scores = np.zeros((len(texts), len(cats)), np.float32)
            for c in cats:
                scores[i, c.index] = c.score
            top.append(cats[0].index)
            labels.append(cats[0].category_name or "")
    finally:
        clf.close()
    seconds = time.perf_counter() - t0
    np.savez(req["out"], top=np.asarray(top, np.int64), label=np.asarray(labels),
             scores=scores if scores is not None else np.zeros((0, 0), np.float32))
    sys.stdout.write(json.dumps({"seconds": round(seconds, 3), "examples": len(texts)}))


if __name__ == "__main__":
    main()
