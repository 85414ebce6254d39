"""Helpers shared by the passes: copying a model (passes never mutate their input), layer selection,
fine-tuning with progress, and copying weights back into the plain architecture by variable name."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..tasks import PAD_TAG  # a padded position's tag id: out of the loss and every metric
from ..tf import keras, tf


@dataclass(frozen=True)
class PassContext:
    x_train: np.ndarray
    y_train: np.ndarray
    x_dev: np.ndarray
    y_dev: np.ndarray
    rebuild: Callable[[], object]  # a fresh, untrained model of the spec's structure
    seed: int
    quiet: bool = False
    initial: Callable[[], object] = None  # what training starts from (a model file's weights; else = rebuild)
    from_logits: bool = True  # False: the model outputs probabilities (ends in a softmax)
    # called after each fine-tuning epoch as on_epoch(pass label, epoch (1-based), epochs, dev accuracy); it may
    # raise to stop a hopeless candidate (edgeopt tune). It never changes what a pass computes.
    on_epoch: Callable[[str, int, int, float], None] | None = None
    # token classification: the BIO tag names; y_* are (sentences, seq_len) tag ids with PAD_TAG past each
    # sentence's end, which neither the loss nor any metric sees
    tags: tuple = ()
    # the training split's texts and the tokenizer's encode (a distillation's transfer set is tokenized with it),
    # and the string the tokenizer reads as its unknown token (a masked word of the transfer set; None: left out)
    train_texts: tuple = ()
    encode: Callable = None
    mask_text: str | None = None

    def start(self):
        return (self.initial or self.rebuild)()

    @property
    def tagging(self) -> bool:
        return bool(self.tags)

    def loss(self):
        K = keras()
        if self.tagging:
            return K.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits, ignore_class=PAD_TAG)
        return K.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)

    def metrics(self) -> list:
        """``accuracy``: of the sentences, or (token classification) of the real tokens, padding left out."""
        return [masked_token_accuracy()] if self.tagging else ["accuracy"]

    @property
    def monitor(self) -> str:
        """What early stopping and edgeopt tune's hopeless-candidate check watch on the dev split: accuracy, or
        the dev entity F1 (micro, strict spans) of a tagger."""
        return "val_entity_f1" if self.tagging else "val_accuracy"

    def callbacks(self) -> list:
        """Callbacks every fit on this context runs first: a tagger's dev entity F1 after each epoch."""
        return [dev_entity_f1(self)] if self.tagging else []

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, math.ceil(len(self.x_train) / batch_size))



def masked_token_accuracy(labels_first: bool = False):
    """Per-token accuracy over real tokens (tag id >= 0), named ``accuracy`` like Keras's own metric.
    ``labels_first``: y_true carries the tag id in its last axis' first column (distillation's layout)."""

    K, T = keras(), tf()

    class MaskedTokenAccuracy(K.metrics.Mean):
        def update_state(self, y_true, y_pred, sample_weight=None):
            if labels_first:
                y_true = y_true[..., 0]
            y = T.cast(T.reshape(y_true, T.shape(y_pred)[:-1]), "int32")
            hit = T.cast(T.equal(T.cast(T.argmax(y_pred, -1), "int32"), y), "float32")
            return super().update_state(hit, sample_weight=T.cast(y >= 0, "float32"))

    return MaskedTokenAccuracy(name="accuracy")


def tag_sequences(pred_ids, y) -> tuple[list, list]:
    """Predicted and gold tag-id rows cut to each sentence's real length (y >= 0)."""
    gold, pred = [], []
    for p, g in zip(np.asarray(pred_ids), np.asarray(y)):
        n = int((g >= 0).sum())
        gold.append(g[:n])
        pred.append(p[:n])
    return gold, pred


def entity_f1(logits, y, tags) -> dict:
    """Entity scores (data/conll.py) of (sentences, seq_len, tags) logits against padded gold tag ids."""
    from ..data.conll import entity_scores

    gold, pred = tag_sequences(np.asarray(logits).argmax(-1), y)
    return entity_scores([[tags[i] for i in g] for g in gold], [[tags[i] for i in p] for p in pred])


def dev_entity_f1(ctx: "PassContext"):
    """After each epoch: the dev split's micro entity F1 into the logs as ``val_entity_f1``."""
    K = keras()

    class DevEntityF1(K.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logits = self.model.predict(ctx.x_dev, batch_size=256, verbose=0)
            if logs is not None:
                logs["val_entity_f1"] = entity_f1(logits, ctx.y_dev, ctx.tags)["micro"]["f1"]

    return DevEntityF1()


OUTSIDE_SHIFTS = tuple(x / 4 for x in range(17))  # 0, 0.25, ..., 4.0 logits


def shift_outside(model, ctx: "PassContext") -> dict:
    """A tagger's decision threshold, set on the dev split and kept in the weights: the ``O`` tag's bias in the
    final Dense layer is lowered by the shift in :data:`OUTSIDE_SHIFTS` with the best dev entity F1 (the smallest
    on ties). Trained on a few thousand sentences where nine tokens in ten are ``O``, a tagger leans to ``O`` and
    finds few entities (WNUT-17: precision twice recall); the cross-entropy optimum is not the F1 optimum. The
    shift lives in the bias, so every exported file carries it and an app needs no post-processing. Returns the
    record (``{}`` when the model has no ``O`` tag or does not end in a Dense layer with a bias)."""
    layer = model.layers[-1]
    layer = getattr(layer, "layer", layer)  # a pruning, clustering or QAT wrapper holds the Dense (same variables)
    if "O" not in ctx.tags or type(layer).__name__ != "Dense" or not layer.use_bias:
        return {}
    o = ctx.tags.index("O")
    logits = np.asarray(model.predict(ctx.x_dev, batch_size=256, verbose=0))
    scores = []
    for shift in OUTSIDE_SHIFTS:
        moved = logits.copy()
        moved[..., o] -= shift
        scores.append(entity_f1(moved, ctx.y_dev, ctx.tags)["micro"]["f1"])
    best = int(np.argmax(scores))  # first maximum: the smallest shift
    bias = layer.bias.numpy().copy()
    bias[o] -= OUTSIDE_SHIFTS[best]
    layer.bias.assign(bias)
    return {"outside_shift": OUTSIDE_SHIFTS[best], "dev_entity_f1_unshifted": round(float(scores[0]), 6),
            "dev_entity_f1_shifted": round(float(scores[best]), 6)}


def copy_model(model):
    """An independent copy (same architecture, same weights)."""
    K = keras()
    m = K.models.clone_model(model)
    m.set_weights(model.get_weights())
    return m


def layer_class(layer) -> str:
    return type(layer).__name__.replace("Prunable", "")


def select_layers(model, select, supported: set[str]) -> set[str]:
    """Names of the layers a pass touches: supported types, filtered by ``select.types`` / ``select.names``."""
    out = set()
    for layer in model.layers:
        cls = layer_class(layer)
        if cls not in supported or not layer.weights:
            continue
        if select.types and cls not in select.types:
            continue
        if select.names and not re.fullmatch(select.names, layer.name):
            continue
        out.add(layer.name)
    return out


# ------------------------------------------------------------------------------ distillation targets
UNLABELLED = -2  # a transfer-set text's label: the teacher's outputs only (the hard term leaves it out)


def kd_loss(ctx: PassContext, temperature: float, alpha: float):
    """The distillation loss on y_true = [label id, teacher logits...] in the last axis (see the module doc); a
    tagger's padding (tag -1) is in neither term, and its loss is the mean over a sentence's real tokens; a
    transfer-set text (label :data:`UNLABELLED`) is in the soft term only."""
    K, T_ = keras(), tf()
    temp, alpha = float(temperature), float(alpha)

    def loss(y_true, y_pred):
        labels = T_.cast(y_true[..., 0], T_.int32)
        labelled = T_.cast(labels >= 0, y_pred.dtype)  # a tagger's padding (tag -1) is in neither term
        real = T_.cast(T_.logical_or(labels >= 0, T_.equal(labels, UNLABELLED)), y_pred.dtype)
        labels = T_.maximum(labels, 0)
        hard = K.losses.sparse_categorical_crossentropy(labels, y_pred, from_logits=ctx.from_logits)
        if not ctx.from_logits:  # a softmax output: its log is a logit vector (up to a constant per row)
            y_pred = T_.math.log(y_pred + 1e-7)
        soft = K.losses.kl_divergence(T_.nn.softmax(y_true[..., 1:] / temp), T_.nn.softmax(y_pred / temp))
        per = alpha * temp * temp * soft * real + (1.0 - alpha) * hard * labelled
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
        return y, y_dev, [masked_token_accuracy(labels_first=True)], ctx.monitor

    def label_accuracy(y_true, y_pred):
        return K.metrics.sparse_categorical_accuracy(y_true[:, 0], y_pred)

    return y, y_dev, [label_accuracy], "val_label_accuracy"


def progress_callback(total_epochs: int, quiet: bool, label: str = "train", monitor: str = "",
                      patience: int = 0):
    """A Keras callback: a bar over the epochs (console.progress), each epoch's loss and dev figures, and, when
    early stopping ended the fit before ``total_epochs``, a line saying so and which epoch is kept."""
    K = keras()
    from ..console import log, progress

    class Progress(K.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self._cm = progress(total_epochs, f"{label} epochs", quiet)
            self._bar = self._cm.__enter__()
            self._dev: list = []

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            if monitor and monitor in logs:
                self._dev.append(float(logs[monitor]))
            extra = "".join(f" {k.replace('val_', 'dev ')} {logs[k]:.4f}" for k in
                            ("accuracy", "val_accuracy", "val_entity_f1") if k in logs)
            self._bar.update(1, f"loss {logs.get('loss', 0):.4f}{extra}")

        def on_train_end(self, logs=None):
            self._cm.__exit__(None, None, None)
            run = len(self._dev)
            if monitor and patience and 0 < run < total_epochs:
                best = max(range(run), key=lambda i: (self._dev[i], -i))
                name = {"val_accuracy": "dev accuracy", "val_entity_f1": "dev entity F1"}.get(monitor, monitor)
                log(quiet, f"  {label}: early stop after epoch {run} of {total_epochs}: {name} has not improved for "
                           f"{run - best - 1} epochs (patience {patience}); keeping epoch {best + 1} "
                           f"({100 * self._dev[best]:.2f}%)")

    return Progress()


def fine_tune(model, ctx: PassContext, cfg, label: str, callbacks=(), loss=None, y_train=None, teacher=None):
    """Fit a compression pass's wrapped ``model`` for ``cfg.epochs``. With ``cfg.self_distill``, the targets are
    the labels and ``teacher``'s outputs (the pass's input model), under the distillation loss."""
    K = keras()
    from ..tf import set_seed

    set_seed(ctx.seed)
    sd = getattr(cfg, "self_distill", None)
    monitor, y_fit = ctx.monitor, ctx.y_train if y_train is None else y_train
    if sd is not None and loss is None and teacher is not None:
        y_fit, y_dev, metrics, monitor = with_teacher(ctx, train_logits(teacher, ctx))
        model.compile(optimizer=K.optimizers.Adam(cfg.learning_rate), loss=kd_loss(ctx, sd.temperature, sd.alpha),
                      metrics=metrics)
        val = (ctx.x_dev, y_dev)
    else:
        model.compile(optimizer=K.optimizers.Adam(cfg.learning_rate),
                      loss=loss or ctx.loss(),
                      metrics=ctx.metrics() if loss is None else [])
        val = (ctx.x_dev, ctx.y_dev) if loss is None else None
    hooks = []
    if ctx.on_epoch is not None and val is not None:
        hooks.append(K.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ctx.on_epoch(
            label, epoch + 1, cfg.epochs, float((logs or {}).get(monitor, float("nan"))))))
    hist = model.fit(ctx.x_train, y_fit, validation_data=val,
                     epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True, verbose=0,
                     callbacks=[*(ctx.callbacks() if val is not None else []), *callbacks,
                                progress_callback(cfg.epochs, ctx.quiet, label), *hooks])
    hist.record = epochs_record(hist.history.get(monitor), hist.history, monitor)
    if ctx.tagging and loss is None:  # fine-tuning on cross-entropy moves the O threshold back: set it again
        hist.record.update(shift_outside(model, ctx))
    return hist


def history_record(history: dict, monitor: str) -> dict:
    """A training pass's per-epoch history for the report's training curves: the dev figure it stops or selects
    on (``monitor``), the training loss and, where Keras logs them, the training accuracy and the dev loss."""
    keep = {"dev": monitor, "loss": "loss", "train_accuracy": "accuracy", "dev_loss": "val_loss"}
    out = {k: [round(float(v), 6) for v in history[src]] for k, src in keep.items() if history.get(src)}
    return {"history": {"monitor": monitor, **out}} if out.get("dev") or out.get("loss") else {}


def epochs_record(dev, history: dict | None = None, monitor: str = "") -> dict:
    """A compression pass's epochs: it runs every epoch of its schedule and keeps the last (a pruning or
    clustering schedule ends there), so its record names the best dev epoch beside the epoch kept."""
    if not dev:
        return history_record(history or {}, monitor)
    dev = [float(v) for v in dev]
    best = int(np.argmax(dev))
    return {"epochs_run": len(dev), "best_epoch": best + 1, "best_dev": round(dev[best], 6),
            "kept_epoch": len(dev), "kept_dev": round(dev[-1], 6), **history_record(history or {}, monitor)}


def _norm(name: str) -> str:
    name = name.split(":")[0]
    return name.split("/", 1)[1] if "/" in name else name


def copy_weights_by_name(src, dst) -> None:
    """Copy every weight of ``src`` into the same-named layer of ``dst``, matching variables by shape and name
    suffix rather than position: strip_clustering reorders MultiHeadAttention weights and leaves Dense/Conv
    weights named bare 'kernel:0' (TOOLCHAIN §2)."""
    by_name = {layer.name: layer for layer in src.layers}
    for layer in dst.layers:
        if not layer.weights:
            continue
        s = by_name.get(layer.name)
        if s is None:
            raise ValueError(f"layer {layer.name!r} not found in the pass output")
        pool = list(zip([_norm(w.name) for w in s.weights], s.get_weights()))
        values = []
        for w in layer.weights:
            n, shape = _norm(w.name), tuple(w.shape)
            cands = [i for i, (_, v) in enumerate(pool) if v.shape == shape]
            if len(cands) > 1:
                named = [i for i in cands if pool[i][0].endswith(n) or n.endswith(pool[i][0])]
                cands = named or cands
            if not cands:
                raise ValueError(f"no weight for {w.name} {shape} in {layer.name!r}")
            values.append(pool.pop(cands[0])[1])
        layer.set_weights(values)


def to_base(model, ctx: PassContext):
    """The plain architecture holding ``model``'s weights (after a strip step)."""
    base = ctx.rebuild()
    copy_weights_by_name(model, base)
    return base
