"""Compression/training passes. Each takes a tf_keras model and returns a new one (never mutates its input)."""

# Part of every cache key: bump when a pass's behaviour changes, so cached outputs of the old code are not reused.
# 2: collaborative QAT freezes a pruned/clustered Bidirectional (before, it kept training and lost its structure).
# 3: a tagger's train, distill and fine-tuning passes set its O threshold on dev entity F1 (shift_outside).
# 4: the cluster pass leaves a layer with fewer non-zero weights than clusters as it is (TFMOT failed on it).
PASS_IMPL_VERSION = 4
