"""The ``distill`` pass: train the student against a teacher's temperature-softened logits plus the labels.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(labels, student).
Early stopping on dev accuracy, as in ``train``.
"""
from __future__ import annotations

import numpy as np

from ..tf import keras, set_seed, tf
from .common import PassContext


def distill(ctx: PassContext, training, cfg, teacher_train_logits: np.ndarray):
    K, T_ = keras(), tf()
    from .train import _progress_callback

    set_seed(ctx.seed)
    model = ctx.start()
    temp, alpha = float(cfg.temperature), float(cfg.alpha)

    def loss(y_true, y_pred):
        labels = T_.cast(y_true[:, 0], T_.int32)
        hard = K.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=ctx.from_logits)
        if not ctx.from_logits:  # a softmax output: its log is a logit vector (up to a constant per row)
            y_pred = T_.math.log(y_pred + 1e-7)
        soft = K.losses.kl_divergence(T_.nn.softmax(y_true[:, 1:] / temp), T_.nn.softmax(y_pred / temp))
        return alpha * temp * temp * soft + (1.0 - alpha) * hard

    def label_accuracy(y_true, y_pred):
        return K.metrics.sparse_categorical_accuracy(y_true[:, 0], y_pred)

    y = np.concatenate([ctx.y_train[:, None].astype(np.float32), teacher_train_logits.astype(np.float32)], axis=1)
    y_dev = np.concatenate([ctx.y_dev[:, None].astype(np.float32),
                            np.zeros((len(ctx.y_dev), teacher_train_logits.shape[1]), np.float32)], axis=1)
    model.compile(optimizer=K.optimizers.Adam(training.learning_rate), loss=loss, metrics=[label_accuracy])
    stop = K.callbacks.EarlyStopping(monitor="val_label_accuracy", mode="max", patience=training.patience,
                                     restore_best_weights=True)
    epochs = cfg.epochs or training.epochs
    hist = model.fit(ctx.x_train, y, validation_data=(ctx.x_dev, y_dev), epochs=epochs, batch_size=training.batch_size,
                     shuffle=True, verbose=0, callbacks=[stop, _progress_callback(epochs, ctx.quiet, "distill")])
    dev = hist.history["val_label_accuracy"]
    return model, {"epochs_run": len(dev), "best_dev_accuracy": round(float(max(dev)), 6),
                   "temperature": temp, "alpha": alpha}
