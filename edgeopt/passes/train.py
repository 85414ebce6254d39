"""The ``train`` pass: build the architecture and fit it on the train split, early-stopping on dev accuracy."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from ..architectures import build_model
from ..tf import keras, set_seed


@dataclass(frozen=True)
class TrainResult:
    model: object
    epochs_run: int
    best_epoch: int
    best_dev_accuracy: float
    seconds: float
    history: dict


def _progress_callback(total_epochs: int, quiet: bool, label: str = "train"):
    K = keras()

    class Progress(K.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if quiet:
                return
            logs = logs or {}
            extra = "".join(f" {k} {logs[k]:.4f}" for k in ("accuracy", "val_accuracy") if k in logs)
            print(f"  {label} epoch {epoch + 1}/{total_epochs}: loss {logs.get('loss', 0):.4f}{extra} "
                  f"({time.perf_counter() - self._t:.1f}s)", file=sys.stderr, flush=True)

    return Progress()


def train(spec, dataset, tokenizer, quiet: bool = False) -> TrainResult:
    K = keras()
    tr = spec.training
    set_seed(tr.seed)
    model = build_model(spec.architecture.name, spec.architecture.config(), vocab_size=tokenizer.vocab_size,
                        num_classes=dataset.num_classes, seq_len=tokenizer.seq_len)
    model.compile(optimizer=K.optimizers.Adam(tr.learning_rate),
                  loss=K.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    import numpy as np

    x_tr, y_tr = tokenizer.encode_batch(dataset.train.texts), np.asarray(dataset.train.labels, np.int32)
    x_dev, y_dev = tokenizer.encode_batch(dataset.dev.texts), np.asarray(dataset.dev.labels, np.int32)
    stop = K.callbacks.EarlyStopping(monitor="val_accuracy", patience=tr.patience, restore_best_weights=True,
                                     mode="max")
    t0 = time.perf_counter()
    hist = model.fit(x_tr, y_tr, validation_data=(x_dev, y_dev), epochs=tr.epochs, batch_size=tr.batch_size,
                     shuffle=True, verbose=0, callbacks=[stop, _progress_callback(tr.epochs, quiet)])
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    best = int(np.argmax(h["val_accuracy"]))
    return TrainResult(model, len(h["val_accuracy"]), best + 1, h["val_accuracy"][best],
                       time.perf_counter() - t0, h)
