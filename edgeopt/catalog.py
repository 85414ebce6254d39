"""The names specs are checked against, on the ground floor: the built-in data sets and which task each one's
examples are for, and the emulated CPU models. ``specs.py`` reads these (and the architectures' TF-free configs)
without importing the modules that load data or run the emulator; those modules take their tables from here."""
from __future__ import annotations

BUILTIN_DATASETS = ("banking77", "sst2", "smsspam", "wnut17")  # data/datasets.py SOURCES has one entry for each
TOKEN_DATASETS = ("wnut17",)  # token classification (CoNLL, BIO tags)


def task_of(data_spec) -> str:
    """The task a ``data:`` section's examples are for: CoNLL files and WNUT-17 are token classification."""
    if data_spec.dataset is not None:
        return "token_classification" if data_spec.dataset in TOKEN_DATASETS else "text_classification"
    return "token_classification" if data_spec.files.format == "conll" else "text_classification"
