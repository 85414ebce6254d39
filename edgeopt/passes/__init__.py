"""Compression/training passes. Each takes a tf_keras model and returns a new one (never mutates its input)."""

# Part of every cache key: bump when a pass's behaviour changes, so cached outputs of the old code are not reused.
# 2: collaborative QAT freezes a pruned/clustered Bidirectional (before, it kept training and lost its structure).
# 3: a tagger's train, distill and fine-tuning passes set its O threshold on dev entity F1 (shift_outside).
PASS_IMPL_VERSION = 3
