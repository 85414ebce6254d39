"""The ``distill`` pass: train the student against a teacher's temperature-softened logits plus the labels.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(labels, student).
Early stopping on dev accuracy, as in ``train``. A tagger is distilled per token: the teacher's logits for each
token position, the padding (tag -1) left out of both terms, early stopping on the dev entity F1.

With a transfer set (``transfer:``, passes/transfer.py) the student also fits the teacher's outputs on augmented
copies of the training texts and on unlabeled texts: those rows are in the soft term only (they have no label).
The teacher's outputs on them are cached by (teacher, texts); the augmentation's word neighbours come from
all-MiniLM-L6-v2's word vectors.
"""
from __future__ import annotations

import numpy as np

from ..tf import keras, set_seed
from .base import KeyedPass, PassOutput, PassRun
from .common import UNLABELLED, PassContext, history_record, kd_loss, progress_callback, with_teacher


def distill(ctx: PassContext, training, cfg, teacher_train_logits: np.ndarray, extra=None):
    """``extra``: (transfer-set ids, the teacher's logits on them): rows added to the training split, unlabelled."""
    K = keras()

    set_seed(ctx.seed)
    model = ctx.start()
    temp, alpha = float(cfg.temperature), float(cfg.alpha)
    loss = kd_loss(ctx, temp, alpha)
    y, y_dev, metrics, monitor = with_teacher(ctx, teacher_train_logits)
    x = ctx.x_train
    if extra is not None:
        x_extra, t_extra = extra
        x = np.concatenate([x, x_extra.astype(x.dtype)])
        y = np.concatenate([y, np.concatenate([np.full((len(t_extra), 1), UNLABELLED, np.float32),
                                               t_extra.astype(np.float32)], axis=-1)])
    model.compile(optimizer=K.optimizers.Adam(training.learning_rate), loss=loss, metrics=metrics)
    stop = K.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=training.patience,
                                     restore_best_weights=True)
    epochs = cfg.epochs or training.epochs
    hist = model.fit(x, y, validation_data=(ctx.x_dev, y_dev), epochs=epochs, batch_size=training.batch_size,
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
        teacher = ctx.teacher()
        extra, t_rec = None, None
        if cfg.transfer is not None:
            extra, t_rec = transfer(ctx.data, cfg.transfer, teacher, ctx.quiet)
        student, meta = distill(ctx.data, ctx.spec.training, cfg, teacher.train_logits, extra)
        meta["teacher"] = teacher.record
        if t_rec is not None:
            meta["transfer"] = t_rec
        return PassOutput(student, meta)

    def key_facts(self, cfg) -> dict:
        """What the pass's output depends on beyond its settings: the unlabeled file's and an ONNX teacher's
        contents (their paths alone are in the settings)."""
        from ..files import sha256_file

        out = {}
        if cfg.transfer is not None and cfg.transfer.unlabeled:
            out["unlabeled_sha256"] = sha256_file(cfg.transfer.unlabeled)
        if cfg.teacher.lower().endswith(".onnx"):
            from ..teachers.onnx import teacher_fingerprint

            out["onnx_teacher"] = teacher_fingerprint(cfg)
        return out


def transfer(ctx: PassContext, cfg, teacher, quiet: bool) -> tuple[tuple[np.ndarray, np.ndarray], dict]:
    """(the transfer set's ids for the student, the teacher's logits on it), and its record."""
    import time

    from ..console import log
    from . import transfer as tr

    t0 = time.perf_counter()
    neighbours = {}
    if cfg.copies and cfg.replace > 0:
        from ..teachers.minilm import piece_vectors

        words = tr.vocabulary(ctx.train_texts)
        neighbours = tr.nearest_neighbours(words, piece_vectors(words), cfg.neighbours)
    tset = tr.build(ctx.train_texts, cfg, neighbours)
    build_s = time.perf_counter() - t0
    log(quiet, f"[edgeopt] distill: transfer set of {len(tset)} texts ({tset.record['augmented']} augmented copies, "
               f"{tset.record['unlabeled']} unlabeled) in {build_s:.1f} s")
    rec = {**tset.record, "build_seconds": round(build_s, 1), "student_mask": "unknown token" if ctx.mask_text
           else "word left out", "teacher_mask": teacher.mask, "examples": tset.texts(teacher.mask)[:5]}
    if not len(tset):  # every copy equalled a training text (and no unlabeled file): nothing to add
        return None, rec
    logits, rec["teacher_outputs"] = teacher.transfer_logits(tset)
    x = np.asarray(ctx.encode(tset.texts(ctx.mask_text))).reshape(len(tset), -1)
    return (x, logits), rec
