"""The ``distill`` pass: train the student against a teacher's temperature-softened logits plus the labels.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(labels, student).
Early stopping on dev accuracy, as in ``train``. A tagger is distilled per token: the teacher's logits for each
token position, the padding (tag -1) left out of both terms, early stopping on the dev entity F1.
"""
from __future__ import annotations

import numpy as np

from ..tf import keras, set_seed, tf
from .common import PassContext


def kd_loss(ctx: PassContext, temperature: float, alpha: float):
    """The distillation loss on y_true = [label id, teacher logits...] in the last axis (see the module doc); a
    tagger's padding (tag -1) is in neither term, and its loss is the mean over a sentence's real tokens."""
    K, T_ = keras(), tf()
    temp, alpha = float(temperature), float(alpha)

    def loss(y_true, y_pred):
        labels = T_.cast(y_true[..., 0], T_.int32)
        real = T_.cast(labels >= 0, y_pred.dtype)  # a tagger's padding (tag -1) is in neither term
        labels = T_.maximum(labels, 0)
        hard = K.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=ctx.from_logits)
        if not ctx.from_logits:  # a softmax output: its log is a logit vector (up to a constant per row)
            y_pred = T_.math.log(y_pred + 1e-7)
        soft = K.losses.kl_divergence(T_.nn.softmax(y_true[..., 1:] / temp), T_.nn.softmax(y_pred / temp))
        per = (alpha * temp * temp * soft + (1.0 - alpha) * hard) * real
        if not ctx.tagging:
            return per
        return T_.reduce_sum(per, -1) / T_.maximum(T_.reduce_sum(real, -1), 1.0)  # mean over a sentence's tokens

    return loss


def train_logits(model, ctx: PassContext) -> np.ndarray:
    """``model``'s outputs over ``ctx``'s training split as :func:`kd_loss` takes a teacher's: logits (a model
    ending in a softmax gives its log-probabilities)."""
    out = model.predict(ctx.x_train, batch_size=256, verbose=0)
    return out if ctx.from_logits else np.log(np.maximum(out, 1e-7))


def with_teacher(ctx: PassContext, teacher_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, list, str]:
    """Targets in :func:`kd_loss`'s layout for the training split, the dev split's (labels, zero logits: only the
    metrics read them), the label-accuracy metric and the monitor it feeds."""
    K = keras()
    teacher = teacher_logits.astype(np.float32)
    y = np.concatenate([ctx.y_train[..., None].astype(np.float32), teacher], axis=-1)
    y_dev = np.concatenate([ctx.y_dev[..., None].astype(np.float32),
                            np.zeros(ctx.y_dev.shape + teacher.shape[-1:], np.float32)], axis=-1)
    if ctx.tagging:
        from .common import masked_token_accuracy

        return y, y_dev, [masked_token_accuracy(labels_first=True)], ctx.monitor

    def label_accuracy(y_true, y_pred):
        return K.metrics.sparse_categorical_accuracy(y_true[:, 0], y_pred)

    return y, y_dev, [label_accuracy], "val_label_accuracy"


def distill(ctx: PassContext, training, cfg, teacher_train_logits: np.ndarray):
    K = keras()
    from .train import _progress_callback

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
                                                         _progress_callback(epochs, ctx.quiet, "distill")])
    dev = hist.history[monitor]
    best = "best_dev_entity_f1" if ctx.tagging else "best_dev_accuracy"
    rec = {"epochs_run": len(dev), best: round(float(max(dev)), 6), "temperature": temp, "alpha": alpha}
    if ctx.tagging:
        from .common import shift_outside

        rec.update(shift_outside(model, ctx))
    return model, rec
