"""The ``distill`` pass: train the student against a teacher's temperature-softened logits plus the labels.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(labels, student).
Early stopping on dev accuracy, as in ``train``. A tagger is distilled per token: the teacher's logits for each
token position, the padding (tag -1) left out of both terms, early stopping on the dev entity F1.
"""
from __future__ import annotations

import numpy as np

from ..tf import keras, set_seed
from .base import KeyedPass, PassOutput, PassRun
from .common import PassContext, history_record, kd_loss, progress_callback, with_teacher


def distill(ctx: PassContext, training, cfg, teacher_train_logits: np.ndarray):
    K = keras()

    set_seed(ctx.seed)
    model = ctx.start()
    temp, alpha = float(cfg.temperature), float(cfg.alpha)
    loss = kd_loss(ctx, temp, alpha)
    y, y_dev, metrics, monitor = with_teacher(ctx, teacher_train_logits)
    model.compile(optimizer=K.optimizers.Adam(training.learning_rate), loss=loss, metrics=metrics)
    stop = K.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=training.patience,
                                     restore_best_weights=True)
    epochs = cfg.epochs or training.epochs
    hist = model.fit(ctx.x_train, y, validation_data=(ctx.x_dev, y_dev), epochs=epochs, batch_size=training.batch_size,
                     shuffle=True, verbose=0, callbacks=[*ctx.callbacks(), stop,
                                                         progress_callback(epochs, ctx.quiet, "distill", monitor,
                                                                           training.patience)])
    dev = hist.history[monitor]
    best = "best_dev_entity_f1" if ctx.tagging else "best_dev_accuracy"
    rec = {"epochs_run": len(dev), "best_epoch": int(np.argmax(dev)) + 1, best: round(float(max(dev)), 6),
           "temperature": temp, "alpha": alpha, **history_record(hist.history, monitor)}
    if ctx.tagging:
        from .common import shift_outside

        rec.update(shift_outside(model, ctx))
    return model, rec


class Distill(KeyedPass):
    """``distill``: the student trained on the teacher's softened logits and the labels (the teacher's logits
    come through the context: a spec teacher trained, or all-MiniLM-L6-v2's head fitted, once and cached)."""

    name = "distill"
    base = True

    def run(self, model, ctx: PassRun, cfg) -> PassOutput:
        logits, teacher = ctx.teacher()
        student, meta = distill(ctx.data, ctx.spec.training, cfg, logits)
        meta["teacher"] = teacher
        return PassOutput(student, meta)
