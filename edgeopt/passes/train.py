"""The ``train`` pass: build the model and fit it on the train split, early-stopping on dev accuracy."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..tf import keras, set_seed
from .base import KeyedPass, PassOutput, PassRun
from .common import history_record, progress_callback, shift_outside


@dataclass(frozen=True)
class TrainResult:
    model: object
    epochs_run: int
    best_epoch: int
    best_dev_accuracy: float
    seconds: float
    history: dict


def train(spec, ctx, quiet: bool = False) -> TrainResult:
    """Fit ``ctx.start()`` (a fresh model, or a model file's weights with ``training.fit``) on the train split."""
    K = keras()
    tr = spec.training
    set_seed(tr.seed)
    model = ctx.start()
    model.compile(optimizer=K.optimizers.Adam(tr.learning_rate), loss=ctx.loss(), metrics=ctx.metrics())
    import numpy as np

    x_tr, y_tr, x_dev, y_dev = ctx.x_train, ctx.y_train, ctx.x_dev, ctx.y_dev
    # a tagger stops on its dev entity F1 (DevEntityF1 writes it into the logs before EarlyStopping reads them)
    stop = K.callbacks.EarlyStopping(monitor=ctx.monitor, patience=tr.patience, restore_best_weights=True,
                                     mode="max")
    t0 = time.perf_counter()
    hist = model.fit(x_tr, y_tr, validation_data=(x_dev, y_dev), epochs=tr.epochs, batch_size=tr.batch_size,
                     shuffle=True, verbose=0, callbacks=[*ctx.callbacks(), stop, progress_callback(tr.epochs, quiet, "train", ctx.monitor,
                                                                                 tr.patience)])
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    best = int(np.argmax(h[ctx.monitor]))
    return TrainResult(model, len(h[ctx.monitor]), best + 1, h[ctx.monitor][best], time.perf_counter() - t0, h)


class Train(KeyedPass):
    """``train``: the spec's architecture (or a model file's weights with ``training.fit``) fitted on the train
    split, early-stopping on the dev split; a tagger's O threshold set on dev entity F1."""

    name = "train"
    base = True

    def run(self, model, ctx: PassRun, cfg) -> PassOutput:
        data = ctx.data
        r = train(ctx.spec, data, quiet=ctx.quiet)
        best = "best_dev_entity_f1" if data.tagging else "best_dev_accuracy"
        rec = {"epochs_run": r.epochs_run, "best_epoch": r.best_epoch, best: round(r.best_dev_accuracy, 6),
               **history_record(r.history, data.monitor)}
        if data.tagging:
            rec.update(shift_outside(r.model, data))
        return PassOutput(r.model, rec)


class Load(KeyedPass):
    """``load``: a model file's weights, as given: the float baseline."""

    name = "load"
    base = True

    def run(self, model, ctx: PassRun, cfg) -> PassOutput:
        return PassOutput(ctx.data.start(), {"weights": "as given", **{
            k: v for k, v in ctx.facts.items() if k in ("path", "format", "model_file_sha256")}})
