"""Compression/training passes. Each takes a tf_keras model and returns a new one (never mutates its input).

:data:`PASSES` is the one table of them (``base.py``: the ``Pass`` shape); a recipe's steps name them. A new pass is
a class with ``name`` and ``run(model, ctx, cfg) -> PassOutput`` in a module of its own, its config type in
``recipe.PASS_CONFIGS`` (what a recipe file may name), and one line here. Importing this package imports no
TensorFlow: the pass modules import it lazily, when a pass runs.
"""
from __future__ import annotations

# Part of every cache key: bump when a pass's behaviour changes, so cached outputs of the old code are not reused.
# 2: collaborative QAT freezes a pruned/clustered Bidirectional (before, it kept training and lost its structure).
# 3: a tagger's train, distill and fine-tuning passes set its O threshold on dev entity F1 (shift_outside).
# 4: the cluster pass leaves a layer with fewer non-zero weights than clusters as it is (TFMOT failed on it).
# 5: a compression pass records its best dev epoch beside the epoch it keeps (the last of its schedule).
# 6: every training pass records its per-epoch history (the report's training curves).
PASS_IMPL_VERSION = 6


from ..recipe import QAT_STEPS  # noqa: E402
from .base import Pass, RecordOnly  # noqa: E402
from .cluster import Cluster  # noqa: E402
from .distill import Distill  # noqa: E402
from .prune import Prune  # noqa: E402
from .qat import Qat  # noqa: E402
from .train import Load, Train  # noqa: E402

PASSES: dict[str, Pass] = {p.name: p for p in (
    Load(),  # a model file's weights as given
    Train(),  # the architecture fitted on the train split
    Distill(),  # the student fitted on a teacher's logits and the labels
    Prune(), RecordOnly("strip_pruning"),  # magnitude pruning (strips its own wrappers; the strip step records it)
    Cluster(), RecordOnly("strip_clustering"),  # weight clustering (likewise)
    *(Qat(v) for v in QAT_STEPS),  # quantization-aware training and its collaborative forms
)}
