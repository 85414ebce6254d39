"""The ``cluster`` pass: TFMOT weight clustering (k-means++, linear, density-based or random centroids),
optionally sparsity-preserving after pruning, fine-tuned, then stripped and copied back by variable name."""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..recipe import CLUSTERABLE
from ..tf import keras
from .base import KeyedPass, PassOutput, PassRun
from .common import PassContext, copy_model, fine_tune, select_layers, to_base


def cluster(model, ctx: PassContext, cfg):
    K = keras()
    import tensorflow_model_optimization as tfmot

    ck = tfmot.clustering.keras
    CI = ck.CentroidInitialization
    init = {"kmeans++": CI.KMEANS_PLUS_PLUS, "linear": CI.LINEAR, "density": CI.DENSITY_BASED,
            "random": CI.RANDOM}[cfg.init]
    work = copy_model(model)
    chosen = select_layers(work, cfg.layers, CLUSTERABLE)
    # k-means++ needs at least as many weights as centroids (and, preserving sparsity, as many non-zero ones: TFMOT
    # splits the centroids between the negative and positive weights and fails with "Expected num_to_sample <=
    # points.rows()"). A layer that small (a tagger's case Embedding: 4 x 8) holds no more values than the
    # clusters already, so it is left as it is and recorded
    skipped = {}
    for layer in work.layers:
        if layer.name in chosen:
            nonzero = min((int(np.count_nonzero(w)) for w in layer.get_weights() if w.ndim >= 2), default=0)
            if nonzero < cfg.clusters:
                skipped[layer.name] = nonzero
    chosen -= set(skipped)
    if not chosen:
        raise InputError(f"cluster: no layer has {cfg.clusters} or more non-zero weights to put in {cfg.clusters} "
                         f"clusters ({', '.join(f'{k}: {v}' for k, v in sorted(skipped.items()))}). Fix: fewer "
                         f"clusters, or a lower sparsity before clustering.")
    # TFMOT clusters only trainable weights (its registry treats a layer without any as weightless): a frozen
    # layer (a tagger's pretrained Embedding) chosen here trains while its clusters settle; the pass's output is
    # the plain architecture again, frozen as the spec has it
    thawed = sorted(layer.name for layer in work.layers if layer.name in chosen and not layer.trainable)
    for layer in work.layers:
        if layer.name in thawed:
            layer.trainable = True
    kw = {"number_of_clusters": cfg.clusters, "cluster_centroids_init": init}
    if cfg.preserve_sparsity:
        kw["preserve_sparsity"] = True

    def clone_fn(layer):
        return ck.cluster_weights(layer, **kw) if layer.name in chosen else layer

    wrapped = K.models.clone_model(work, clone_function=clone_fn)
    hist = fine_tune(wrapped, ctx, cfg, "cluster", teacher=model)
    stripped = ck.strip_clustering(wrapped)
    return to_base(stripped, ctx), {"layers": sorted(chosen), **({"thawed": thawed} if thawed else {}),
                                    **({"skipped_nonzero_weights": dict(sorted(skipped.items()))} if skipped else {}),
                                    **hist.record}


class Cluster(KeyedPass):
    """``cluster``: TFMOT weight clustering, fine-tuned, stripped and copied back by variable name."""

    name = "cluster"

    def run(self, model, ctx: PassRun, cfg) -> PassOutput:
        return PassOutput(*cluster(model, ctx.data, cfg))
