"""The ``prune`` pass: TFMOT magnitude pruning (polynomial or constant schedule, optional m-by-n structure),
fine-tuned, then stripped back into the plain architecture."""
from __future__ import annotations

from ..recipe import M_BY_N_PRUNABLE, PRUNABLE
from ..tf import keras
from .base import KeyedPass, PassOutput, PassRun
from .common import PassContext, copy_model, fine_tune, select_layers, to_base


def _tfmot():
    keras()
    import tensorflow_model_optimization as tfmot

    return tfmot


def prunable_bidirectional_class():
    """Bidirectional is not prunable in TFMOT; this wrapper names the LSTM/GRU kernels to prune (TOOLCHAIN §2)."""
    tfmot, K = _tfmot(), keras()

    class PrunableBidirectional(K.layers.Bidirectional, tfmot.sparsity.keras.PrunableLayer):
        def get_prunable_weights(self):
            return [w for layer in (self.forward_layer, self.backward_layer)
                    for w in (layer.cell.kernel, layer.cell.recurrent_kernel)]

    return PrunableBidirectional


def schedule_steps(cfg, total_steps: int) -> tuple[int, int, int]:
    """(begin, end, frequency). TFMOT prunes only at steps where (step - begin) % frequency == 0, so the
    window is aligned to a multiple of the frequency, or the final sparsity is never reached."""
    from ..errors import InputError

    begin = cfg.begin_step
    end = cfg.end_step or max(begin + 1, int(0.7 * total_steps))
    window = end - begin
    freq = cfg.frequency or max(1, window // 10)
    if freq > window or end > total_steps:
        raise InputError(f"prune: the schedule (begin {begin}, end {end}, frequency {freq}) does not fit in the "
                         f"{total_steps} fine-tuning steps. Fix: lower end_step/frequency or raise epochs.")
    return begin, begin + (window // freq) * freq, freq


def schedule(cfg, total_steps: int):
    sk = _tfmot().sparsity.keras
    begin, end, freq = schedule_steps(cfg, total_steps)
    if cfg.schedule == "constant":
        return sk.ConstantSparsity(cfg.sparsity, begin_step=begin, end_step=end, frequency=freq)
    return sk.PolynomialDecay(initial_sparsity=cfg.initial_sparsity, final_sparsity=cfg.sparsity,
                              begin_step=begin, end_step=end, frequency=freq)


def wrap(model, cfg, total_steps: int):
    """The model with its selected layers wrapped for pruning (a copy; ``model`` is not touched)."""
    tfmot, K = _tfmot(), keras()
    sk = tfmot.sparsity.keras
    work = copy_model(model)
    chosen = select_layers(work, cfg.layers, M_BY_N_PRUNABLE if cfg.m_by_n else PRUNABLE)
    PB = prunable_bidirectional_class()
    kw = {"pruning_schedule": schedule(cfg, total_steps)}
    if cfg.m_by_n:
        kw["sparsity_m_by_n"] = tuple(cfg.m_by_n)

    def clone_fn(layer):
        if layer.name not in chosen:
            return layer
        if isinstance(layer, K.layers.Bidirectional):
            pb = PB.from_config(layer.get_config())
            pb.build(layer.input_shape)
            pb.set_weights(layer.get_weights())
            layer = pb
        return sk.prune_low_magnitude(layer, **kw)

    with K.utils.custom_object_scope({"PrunableBidirectional": PB}):
        wrapped = K.models.clone_model(work, clone_function=clone_fn)
    return wrapped, sorted(chosen), PB


def prune(model, ctx: PassContext, cfg):
    tfmot, K = _tfmot(), keras()
    total = ctx.steps_per_epoch(cfg.batch_size) * cfg.epochs
    wrapped, chosen, PB = wrap(model, cfg, total)
    hist = fine_tune(wrapped, ctx, cfg, "prune", callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
                     teacher=model)
    with K.utils.custom_object_scope({"PrunableBidirectional": PB}):
        stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    return to_base(stripped, ctx), {"layers": chosen, **hist.record}


class Prune(KeyedPass):
    """``prune``: TFMOT magnitude pruning, fine-tuned, stripped back into the plain architecture."""

    name = "prune"

    def run(self, model, ctx: PassRun, cfg) -> PassOutput:
        return PassOutput(*prune(model, ctx.data, cfg))
