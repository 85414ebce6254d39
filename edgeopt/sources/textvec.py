"""A model whose first layer is Keras' ``TextVectorization`` (it takes raw strings): split into the layer, read
as a tokenizer, and the integer sub-model edgeopt compresses, converts and deploys.

The converters and the passes need integer token ids in, so the vectorizer cannot stay inside the file (LiteRT
has no string ops for it). Its vocabulary and settings become a Hugging Face ``tokenizers`` pipeline that gives
the layer's ids exactly, so the app can use the standard ``tokenizer.json`` and edgeopt's own runtime the same
ids:

- ``standardize``: ``tf.strings.lower`` lowers ASCII letters only (``ÉCOLE`` -> ``École``), so it is 26
  replacements, not the ``Lowercase`` normalizer (which lowers every script); punctuation is stripped by the layer's
  own regular expression;
- ``split="whitespace"``: ``tf.strings.split`` splits on ASCII whitespace only (a no-break space stays inside a
  word): a regex split on ``[ \\t\\n\\v\\f\\r]+``, not the ``WhitespaceSplit`` pre-tokenizer (which splits on every
  Unicode space);
- a word outside the vocabulary gets the ``[UNK]`` id (1), padding id 0 (the layer's ``''``), truncation keeps the
  start, like ``output_sequence_length``.

No library turns a TextVectorization layer into a portable tokenizer, hence this module. The equivalence is not
assumed: :func:`check_ids` compares the tokenizer's ids with the layer's own on every text of the data, and a
difference is an error naming the text. A setting with no exact equivalent (a custom ``standardize`` callable,
``split`` other than ``"whitespace"``, ``ngrams``, an output mode other than ``int``) is refused in one line.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import InputError

# tf_keras' and Keras 3's DEFAULT_STRIP_REGEX (the same expression in both)
STRIP_REGEX = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
ASCII_SPACE = r"[ \t\n\x0b\x0c\r]+"
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
SPLIT = ("whitespace",)


def find(model):
    """The model's first TextVectorization layer, or None."""
    return next((layer for layer in model.layers if type(layer).__name__ == "TextVectorization"), None)


@dataclass
class Vectorizer:
    """The layer (kept to compare ids), its settings and vocabulary."""

    layer: Any
    where: str
    vocabulary: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    full_model: Any = None  # the model as given (strings in), for its own accuracy

    @property
    def length(self) -> Optional[int]:
        return self.settings.get("output_sequence_length")

    def record(self) -> dict:
        return {"layer": self.layer.name, "vocabulary_size": len(self.vocabulary),
                **{k: self.settings.get(k) for k in ("standardize", "split", "output_sequence_length", "max_tokens")}}

    def tokenizer(self, seq_len: int):
        """The HFTokenizer giving the layer's ids, truncated and padded to ``seq_len``."""
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

        from ..data.tokenizer import HFTokenizer

        vocab = {w: i for i, w in enumerate(self.vocabulary)}
        tok = Tokenizer(models.WordLevel(vocab, unk_token=self.vocabulary[1]))
        steps = []
        std = self.settings.get("standardize")
        if std in ("lower", "lower_and_strip_punctuation"):
            steps += [normalizers.Replace(c, c.lower()) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
        if std in ("strip_punctuation", "lower_and_strip_punctuation"):
            steps.append(normalizers.Replace(Regex(STRIP_REGEX), ""))
        if steps:
            tok.normalizer = normalizers.Sequence(steps)
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(ASCII_SPACE), behavior="removed")
        text = tok.to_str()
        return HFTokenizer(tok, seq_len, 0, hashlib.sha256(text.encode()).hexdigest(), origin="textvectorization")

    def layer_ids(self, texts, seq_len: int):
        """The layer's own ids of ``texts``, cut or padded (with 0) to ``seq_len``."""
        import numpy as np

        from ..tf import tf

        out = np.zeros((len(texts), seq_len), np.int64)
        for i in range(0, len(texts), 2048):
            ids = np.asarray(self.layer(tf().constant(list(texts[i:i + 2048]))))
            ids = ids.reshape(len(ids), -1)[:, :seq_len]
            out[i:i + len(ids), :ids.shape[1]] = ids
        return out

    def own_predictions(self, texts):
        """The given model's class ids on the raw strings (what its author measured)."""
        import numpy as np

        from ..tf import tf

        shape = tuple(self.full_model.inputs[0].shape)
        x = tf().constant(list(texts))
        if len(shape) == 2:
            x = tf().reshape(x, (-1, 1))
        out = self.full_model.predict(x, batch_size=256, verbose=0)
        return np.asarray(out).argmax(-1)


def settings_of(layer, where: str) -> dict:
    cfg = layer.get_config()
    name = layer.name
    std, split = cfg.get("standardize"), cfg.get("split")
    fix = ("Fix: keep the layer's standard settings (standardize 'lower_and_strip_punctuation', 'lower', "
           "'strip_punctuation' or None; split 'whitespace'; output_mode 'int'), or take the "
           "TextVectorization out of the model and give its vocabulary as tokenizer.vocab_file")
    if callable(getattr(layer, "_standardize", None)) or std not in STANDARDIZE:
        raise InputError(f"{where}: TextVectorization {name!r} uses a custom standardize ({std!r}), which edgeopt "
                         f"cannot reproduce outside TensorFlow, so the app could not give the model its ids. {fix}.")
    if callable(getattr(layer, "_split", None)) or split not in SPLIT:
        raise InputError(f"{where}: TextVectorization {name!r} uses split={split!r}; edgeopt reproduces "
                         f"'whitespace' only. {fix}.")
    if cfg.get("ngrams"):
        raise InputError(f"{where}: TextVectorization {name!r} makes ngrams={cfg['ngrams']!r}, which a token-id "
                         f"model file cannot take. {fix}.")
    if cfg.get("output_mode") != "int":
        raise InputError(f"{where}: TextVectorization {name!r} has output_mode={cfg.get('output_mode')!r}; edgeopt "
                         f"deploys token-id models (output_mode 'int'). {fix}.")
    return {k: cfg.get(k) for k in ("standardize", "split", "output_sequence_length", "max_tokens")}


def split_off(model, where: str, keras_module):
    """(the integer sub-model, Vectorizer), or (model, None) when the model has no TextVectorization. The
    vectorizer must be the layer right after the model's only input (a string)."""
    layer = find(model)
    if layer is None:
        return model, None
    inp = layer.input
    if len(model.inputs) != 1 or not (inp is model.inputs[0] or getattr(inp, "name", 0) == model.inputs[0].name):
        raise InputError(f"{where}: its TextVectorization {layer.name!r} is not applied to the model's one input, "
                         f"so edgeopt cannot feed it token ids instead. Fix: make the TextVectorization the first "
                         f"layer after a single string Input.")
    settings = settings_of(layer, where)
    vocab = [str(w) for w in layer.get_vocabulary()]
    if len(vocab) < 2 or vocab[0] != "" or vocab[1] != "[UNK]":
        raise InputError(f"{where}: TextVectorization {layer.name!r} has the vocabulary {vocab[:3]!r}...; edgeopt "
                         f"expects the layer's standard layout ('' for padding, '[UNK]', then the words). Fix: adapt "
                         f"the layer (or set its vocabulary) with the default mask and OOV tokens.")
    try:
        sub = keras_module.Model(layer.output, model.outputs)
    except Exception as e:  # noqa: BLE001 -- Keras' own message, on one line
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"{where}: the model after its TextVectorization cannot be taken as a model of its own "
                         f"({type(e).__name__}: {msg}). Fix: build it as Input(string) -> TextVectorization -> the "
                         f"rest, one path.") from None
    return sub, Vectorizer(layer, where, vocab, settings, model)


def check_ids(vec: Vectorizer, tok, splits: dict) -> dict:
    """Compare the tokenizer's ids with the layer's own on every text of ``splits`` ({name: texts}); a difference is
    an error naming the first text that differs. The record for the manifest otherwise."""
    import numpy as np

    n = 0
    for name, texts in splits.items():
        texts = list(texts)
        if not texts:
            continue
        ours, theirs = tok.encode_batch(texts), vec.layer_ids(texts, tok.seq_len)
        bad = np.flatnonzero((ours != theirs).any(axis=1))
        if len(bad):
            i = int(bad[0])
            raise InputError(f"{vec.where}: edgeopt's tokenizer gives other ids than TextVectorization "
                             f"{vec.layer.name!r} for {len(bad)} of {len(texts)} {name} texts (first: "
                             f"{json.dumps(texts[i][:80], ensure_ascii=False)}: {ours[i][:8].tolist()} vs "
                             f"{theirs[i][:8].tolist()}). Fix: report it; meanwhile take the TextVectorization out "
                             f"of the model and give its vocabulary as tokenizer.vocab_file.")
        n += len(texts)
    return {"texts_compared": n, "texts_with_equal_ids": n}
