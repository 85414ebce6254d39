"""The names specs are checked against, on the ground floor: the built-in data sets, which of them (and which file
formats) hold tagged tokens, and the emulated CPU models. ``specs.py`` reads these (and the architectures' TF-free configs)
without importing the modules that load data or run the emulator; those modules take their tables from here."""
from __future__ import annotations

BUILTIN_DATASETS = ("banking77", "sst2", "smsspam", "wnut17")  # data/datasets.py SOURCES has one entry for each
TOKEN_DATASETS = ("wnut17",)  # tokens tagged one by one (CoNLL, BIO tags): tasks/tokens.py reads them
TAGGED_FORMATS = ("conll",)  # data.files formats of tagged tokens


def tagged(data_spec) -> bool:
    """Whether a ``data:`` section holds tokens tagged one by one (WNUT-17, CoNLL files): what a tagger reads, and a
    sentence classifier does not."""
    if data_spec.dataset is not None:
        return data_spec.dataset in TOKEN_DATASETS
    return data_spec.files.format in TAGGED_FORMATS
