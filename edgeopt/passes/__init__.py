"""Compression/training passes. Each takes a tf_keras model and returns a new one (never mutates its input)."""
