"""Datasets, splits, the reference tokenizer and calibration samples (no TensorFlow here)."""
from .datasets import BUILTIN_DATASETS, Dataset, Split, load_dataset, locate
from .tokenizer import WordTokenizer

__all__ = ["BUILTIN_DATASETS", "Dataset", "Split", "load_dataset", "locate", "WordTokenizer"]
