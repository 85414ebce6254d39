"""The ``qat`` pass and its collaborative forms: quantization-aware training ending in a full-int8 .tflite.

TFMOT cannot quantize a token model whole (TOOLCHAIN §2): the Embedding must stay unannotated (its int32 input
breaks FakeQuant), and Conv1D, LayerNormalization and MultiHeadAttention need quantize configs its registry
lacks; they are here. LSTM/Bidirectional stay unannotated and get their int8 ranges from the converter's
calibration. The planner picks the scheme: ``qat`` (default 8-bit), ``pqat`` (prune-preserving), ``cqat``
(cluster-preserving) or ``pcqat`` (sparsity- and cluster-preserving). The schemes preserve structure only in
the layers they wrap with their own quantizers (Dense); every other pruned or clustered layer is frozen during
QAT, or fine-tuning would re-densify it (TOOLCHAIN §2: sparsity 0.50 -> 0.025).
"""
from __future__ import annotations

from ..recipe import CLUSTERABLE, PRESERVED_BY_SCHEME, PRUNABLE
from ..tf import keras
from .base import KeyedPass, PassOutput, PassRun
from .common import PassContext, copy_model, fine_tune, layer_class


def _tfmot():
    keras()
    import tensorflow_model_optimization as tfmot

    return tfmot


def _configs():
    tfmot = _tfmot()
    qk = tfmot.quantization.keras
    LVQ, MAQ = qk.quantizers.LastValueQuantizer, qk.quantizers.MovingAverageQuantizer
    q = dict(num_bits=8, narrow_range=False, per_axis=False)

    class Conv1DQuantizeConfig(qk.QuantizeConfig):
        def get_weights_and_quantizers(self, layer):
            return [(layer.kernel, LVQ(symmetric=True, **q))]

        def get_activations_and_quantizers(self, layer):
            return [(layer.activation, MAQ(symmetric=False, **q))]

        def set_quantize_weights(self, layer, w):
            layer.kernel = w[0]

        def set_quantize_activations(self, layer, a):
            layer.activation = a[0]

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}

    class OutputQuantizeConfig(qk.QuantizeConfig):
        """LayerNormalization: quantize only the output (its gamma/beta stay float in QAT)."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, w):
            pass

        def set_quantize_activations(self, layer, a):
            pass

        def get_output_quantizers(self, layer):
            return [MAQ(symmetric=False, **q)]

        def get_config(self):
            return {}

    class NoOpQuantizeConfig(OutputQuantizeConfig):
        """MultiHeadAttention: an output quantizer fails (compute_output_shape needs value_shape); the converter
        calibrates it instead."""

        def get_output_quantizers(self, layer):
            return []

    return {"Conv1DQuantizeConfig": Conv1DQuantizeConfig, "OutputQuantizeConfig": OutputQuantizeConfig,
            "NoOpQuantizeConfig": NoOpQuantizeConfig}


def scheme(variant: str):
    tfmot = _tfmot()
    qk = tfmot.quantization.keras
    comb = tfmot.experimental.combine
    if variant == "qat":
        return qk.default_8bit.Default8BitQuantizeScheme()
    inner = (comb.Default8BitPrunePreserveQuantizeScheme() if variant == "pqat"
             else comb.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=(variant == "pcqat")))
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as d8)

    default = d8.Default8BitQuantizeRegistry()

    class Registry:
        """The collaborative registries claim every layer without trainable weights (e.g. the TFOpLambda
        residual add before a LayerNorm), then ask the default registry, which raises for it. Claim only what
        the default registry supports."""

        def __init__(self, reg):
            self.reg = reg

        def supports(self, layer):
            return default.supports(layer) and self.reg.supports(layer)

        def get_quantize_config(self, layer):
            return self.reg.get_quantize_config(layer)

    class Scheme(qk.QuantizeScheme):
        def get_layout_transformer(self):
            return inner.get_layout_transformer()

        def get_quantize_registry(self):
            return Registry(inner.get_quantize_registry())

    return Scheme()


def quantize(model, variant: str):
    """Annotate (a copy of) ``model`` layer by layer and apply the variant's scheme. No training."""
    tfmot, K = _tfmot(), keras()
    qk = tfmot.quantization.keras
    cfgs = _configs()
    per_class = {"Conv1D": cfgs["Conv1DQuantizeConfig"], "LayerNormalization": cfgs["OutputQuantizeConfig"],
                 "MultiHeadAttention": cfgs["NoOpQuantizeConfig"]}
    work = copy_model(model)

    def annotate(layer):
        cls = layer_class(layer)
        if cls == "Dense":
            return qk.quantize_annotate_layer(layer)
        if cls in per_class:
            return qk.quantize_annotate_layer(layer, per_class[cls]())
        return layer

    annotated = K.models.clone_model(work, clone_function=annotate)
    # clone_model re-creates the layers it annotates with fresh weights (TOOLCHAIN §2): copy them back, or QAT
    # starts the annotated layers from a random initialization (and a frozen one stays random).
    annotated.set_weights(work.get_weights())
    from ..architectures.builders import PositionEmbedding

    with qk.quantize_scope({**cfgs, "PositionEmbedding": PositionEmbedding}):
        return qk.quantize_apply(annotated, scheme(variant))


def frozen_layers(qmodel, variant: str) -> list[str]:
    """Layers to freeze during collaborative QAT: pruned/clustered kinds the scheme does not preserve."""
    if variant == "qat":
        return []
    out = []
    for layer in qmodel.layers:
        # the layer a QuantizeWrapper wraps; not Bidirectional's own ``.layer`` (an unbuilt template without
        # weights: taking it left pruned/clustered BiLSTMs training freely through QAT, losing their structure)
        inner = layer.layer if type(layer).__name__.startswith("QuantizeWrapper") else layer
        cls = layer_class(inner)
        if cls in (PRUNABLE | CLUSTERABLE) and cls not in PRESERVED_BY_SCHEME and inner.weights:
            out.append(layer.name)
    return out


def freeze(qmodel, names) -> dict:
    """Hold layers fixed through QAT fine-tuning; returns a snapshot for :func:`restore`.

    ``trainable = False`` works for plain layers (the Embedding), but not inside TFMOT's QuantizeWrapper: the
    wrapper keeps its own handles on the wrapped kernel and the optimizer still moves it. So the wrapped layers'
    weights are snapshotted here and put back by :func:`restore` after fine-tuning (re-applied exactly)."""
    snap = {}
    for layer in qmodel.layers:
        if layer.name in names:
            layer.trainable = False
            # the wrapper's variables minus the quantizer state (the wrapped layer no longer lists its kernel)
            state = ("optimizer_step", "_min:0", "_max:0")
            snap[layer.name] = [(v, v.numpy()) for v in layer.weights if not any(t in v.name for t in state)]
    return snap


def restore(qmodel, snap: dict) -> None:
    for name, pairs in snap.items():
        for v, value in pairs:
            v.assign(value)
        wrapper = qmodel.get_layer(name)
        # The weight quantizers' ranges were computed from the moving kernel during fine-tuning: let each quantizer
        # recompute its range from the restored kernel (its own rule; e.g. symmetric 8-bit is [-m, m*127/128], so
        # the int8 filter's zero point is exactly 0, which the conv kernels require).
        for weight, quantizer, qvars in getattr(wrapper, "_weight_vars", []):
            quantizer(weight, True, qvars)


def qat(model, ctx: PassContext, cfg, variant: str):
    q = quantize(model, variant)
    frozen = frozen_layers(q, variant)
    snap = freeze(q, frozen)
    hist = fine_tune(q, ctx, cfg, variant, teacher=model)
    restore(q, snap)
    return q, {"scheme": variant, "frozen": frozen, **hist.record}


class Qat(KeyedPass):
    """``qat`` and its collaborative forms (``pqat``, ``cqat``, ``pcqat``: the planner picks the form that preserves
    what the passes before did): quantization-aware training; its graph converts to a full-int8 .tflite."""

    quantization_aware = True

    def __init__(self, variant: str):
        self.name = variant

    def run(self, model, ctx: PassRun, cfg) -> PassOutput:
        return PassOutput(*qat(model, ctx.data, cfg, self.name))

    def structure(self, parent, ctx: PassRun):
        """The cluster-preserving schemes add variables only for layers that really are clustered: a cached
        output's structure is rebuilt from its parent pass's output."""
        return lambda: quantize(parent, self.name)
