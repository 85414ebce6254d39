"""Token classification (a tagger): one BIO tag per token. Its outputs are (sentences, seq_len, tags); padding
(tag -1 past each sentence's end) is out of every metric; the headline is entity F1 over exact spans of whole
sentences (entities past seq_len, which the model never sees, count as missed); per-token accuracy and per-tag
figures are secondary."""
from __future__ import annotations

from typing import Sequence

import numpy as np

PAD_TAG = -1  # a padded position's tag id: out of the loss and every metric


class TokenClassification:
    name = "token_classification"
    headline = "entity_f1"
    best_dev = "best_dev_entity_f1"
    unit = "real tokens"
    per_token = True
    clients = False  # MediaPipe's TextClassifier takes one score row per text, a tagger gives one per token
    gpu = False  # the GPU check compares one score row per example
    tunable = False  # tune compares candidates by sentence accuracy; by entity F1 is not built yet
    training_keys = ("best_dev_entity_f1", "outside_shift")
    dev_split = "random"  # a sentence has many tags: a seeded random share, no strata
    # measured and reported, not judged: entity recognition reads capitals (the reference WNUT-17 CNN loses 12.6
    # points of entity F1 on lower-cased tweets), so a robustness budget would fail every tagger build
    robustness_judged = False

    def reads(self, data_spec) -> bool:
        from ..catalog import tagged

        return tagged(data_spec)

    def check_spec(self, spec) -> None:
        from ..architectures import TAGGERS

        if spec.architecture is not None and spec.architecture.name not in TAGGERS:
            raise ValueError(f"architecture {spec.architecture.name} classifies sentences; task "
                             f"{self.name} needs a tagger: one of {', '.join(TAGGERS)}")
        if spec.tokenizer.kind != "word":
            raise ValueError(f"task {self.name} looks up the given tokens in a word vocabulary; remove "
                             f"tokenizer.kind regex (MediaPipe's regex tokenizer splits text, not tokens)")
        if spec.tokenizer.mode != "fitted":
            raise ValueError(f"task {self.name} fits its word vocabulary on the given tokens; remove "
                             f"tokenizer.vocab_file/huggingface")

    def check_labels(self, name, label_names, train_labels) -> None:
        from ..errors import DataError

        if len(label_names) < 3:
            raise DataError(f"dataset {name!r}: the training sentences have no entity tag (only 'O'); a tagger "
                            f"needs B-TYPE/I-TYPE tags to learn. Fix: give tagged training sentences.")

    def labels(self, gold: Sequence, seq_len: int) -> np.ndarray:
        from ..data.conll import padded_tags

        return padded_tags(gold, seq_len, PAD_TAG)

    def output_shape(self, seq_len: int, num_labels: int) -> tuple:
        return (seq_len, num_labels)

    def outputs(self) -> str:
        return "tag scores per token"

    def rows(self, logits, y):
        from ..validate.accuracy import real_rows

        return real_rows(logits, y)

    def entities(self, logits, gold, label_names):
        from ..data.conll import split_scores

        return split_scores(np.asarray(logits).argmax(-1), gold, list(label_names))

    def chance(self, rows, y, entities, gold, label_names) -> dict:
        from ..validate.chance import entity_chance

        return entity_chance(entities, gold, label_names)

    def headline_value(self, quality) -> float:
        return quality.entities["micro"]["f1"]

    def check_plan(self, spec, steps, target, where: str, teacher=None) -> None:
        """What the tagger path does not do yet, refused before training: a sentence teacher or one of another
        seq_len (its logits are matched token by token), a GPU target."""
        from ..errors import InputError

        if steps[0].name == "distill":
            if getattr(teacher, "task", None) is None:  # all-MiniLM-L6-v2, an ONNX classifier: a row per text
                raise InputError(f"{where}: {teacher.name} teaches sentence classifiers (one logit row per "
                                 f"text); a tagger needs a tagger teacher. Fix: give a token_classification spec "
                                 f"as the teacher.")
            if steps[0].config.transfer is not None:
                raise InputError(f"{where}: a transfer set (distill.transfer) is built for sentence classifiers; "
                                 f"a tagger's augmented copies would need their tags moved with their words. Fix: "
                                 f"drop distill.transfer for this tagger.")
            if teacher.task != self.name or teacher.tokenizer.seq_len != spec.tokenizer.seq_len:
                raise InputError(f"{where}: teacher {teacher.name} must be a tagger with the student's seq_len "
                                 f"({spec.tokenizer.seq_len}): its logits are matched token by token. Fix: give a "
                                 f"token_classification teacher with tokenizer.seq_len {spec.tokenizer.seq_len}.")
        if target.uses_gpu:
            raise InputError(f"{where}: {target.name} is a GPU target; GPU validation of a tagger's per-token "
                             f"outputs is not built yet. Fix: use a CPU target such as pixel-7.")
