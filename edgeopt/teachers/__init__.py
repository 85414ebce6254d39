"""Pretrained teachers for the ``distill`` pass (besides any ModelSpec)."""
