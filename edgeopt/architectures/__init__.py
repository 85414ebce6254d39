"""tf_keras text-model builders. Configs are TF-free pydantic models; builders import TF lazily.

Every builder takes (config, vocab_size, num_classes, seq_len) and returns an uncompiled tf_keras Model with
an int32 ``tokens`` input of shape (batch, seq_len) and float32 logits (no softmax, so int8 output keeps range).
"""
from __future__ import annotations

from typing import Literal

from typing import Annotated

from pydantic import Field, StrictInt, model_validator

from ..schema import Frozen

# Upper bounds: an edge text model far past these cannot be trained on a build machine or shipped to a device;
# without them `embed_dim: 1e9` validates and then fails (or exhausts memory) deep inside TensorFlow.
MAX_WIDTH = 4096
MAX_LAYERS = 48
Width = Annotated[StrictInt, Field(ge=1, le=MAX_WIDTH)]
PRETRAINED_DIM = 384  # all-MiniLM-L6-v2's hidden size (config.json), checked against the file when read


class _Cfg(Frozen):
    pass


class TextCNNConfig(_Cfg):
    """``embeddings_init``: ``random`` (Keras's uniform), or ``all-MiniLM-L6-v2``: the Embedding starts from that
    model's input word vectors for the tokenizer's words (a word's vector the mean of its word pieces', projected on
    ``embed_dim`` principal components when narrower than 384) and trains on from there: the student knows which
    words mean alike before it sees a label."""

    embed_dim: Annotated[StrictInt, Field(ge=2, le=MAX_WIDTH)] = 128
    embeddings_init: Literal["random", "all-MiniLM-L6-v2"] = "random"
    filters: Width = 128
    kernel_sizes: Annotated[tuple[Annotated[StrictInt, Field(ge=1, le=64)], ...], Field(min_length=1, max_length=8)] \
        = (2, 3, 4)
    hidden: Annotated[StrictInt, Field(ge=0, le=MAX_WIDTH)] = 0  # optional Dense layer before the classifier
    dropout: float = Field(default=0.3, ge=0, lt=1)

    @model_validator(mode="after")
    def _distinct(self):
        if len(set(self.kernel_sizes)) != len(self.kernel_sizes):
            raise ValueError(f"kernel_sizes {list(self.kernel_sizes)} repeats a size (each names one Conv1D branch)")
        if self.embeddings_init != "random" and self.embed_dim > PRETRAINED_DIM:
            raise ValueError(f"embeddings_init {self.embeddings_init} gives {PRETRAINED_DIM}-wide vectors; set "
                             f"embed_dim to {PRETRAINED_DIM} or less, not {self.embed_dim}")
        return self


class BiLSTMConfig(_Cfg):
    embed_dim: Annotated[StrictInt, Field(ge=2, le=MAX_WIDTH)] = 128
    units: Width = 64
    pooling: Literal["max", "last"] = "max"
    dropout: float = Field(default=0.3, ge=0, lt=1)


class TransformerConfig(_Cfg):
    embed_dim: Annotated[StrictInt, Field(ge=2, le=MAX_WIDTH)] = 64
    num_heads: Annotated[StrictInt, Field(ge=1, le=64)] = 4
    ff_dim: Width = 128
    num_layers: Annotated[StrictInt, Field(ge=1, le=MAX_LAYERS)] = 2
    dropout: float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads} (each head "
                             f"gets embed_dim / num_heads dimensions)")
        return self


class _TaggerCfg(_Cfg):
    """``embeddings``: ``trained`` (learned from the training sentences alone), or ``all-MiniLM-L6-v2``: the
    Embedding holds that model's input word vectors (teachers/minilm.word_vectors), frozen, and the vocabulary adds
    its whole words to the training tokens (``pretrained_words: all``), so a word the training split never saw still
    has a meaning. The width is the model's (384), or a smaller ``embed_dim``: the vectors projected on their
    ``embed_dim`` principal components (fitted on the table's words). ``pretrained_words: training`` cuts the table
    to the training split's tokens: the two knobs that take the table (95% of the model) from 9 MB to a few
    hundred KB."""

    embed_dim: Annotated[StrictInt, Field(ge=2, le=MAX_WIDTH)] = 100
    embeddings: Literal["trained", "all-MiniLM-L6-v2"] = "trained"
    pretrained_words: Literal["all", "training"] = "all"
    # case: the tokenizer gives 4 x word id + the token's case class (lower, Capitalized, ALL CAPS, no letter); the
    # model splits them (FloorDiv, FloorMod) and concatenates a learned 8-wide case vector to the word's
    case: bool = False

    @model_validator(mode="before")
    @classmethod
    def _pretrained_width(cls, data):
        if isinstance(data, dict) and data.get("embeddings", "trained") != "trained":
            dim = data.get("embed_dim", PRETRAINED_DIM)
            if isinstance(dim, int) and not isinstance(dim, bool) and dim > PRETRAINED_DIM:
                raise ValueError(f"embeddings {data['embeddings']} are {PRETRAINED_DIM} wide; set embed_dim to "
                                 f"{PRETRAINED_DIM} or less (fewer: projected on their principal components), "
                                 f"not {dim}")
            data = {**data, "embed_dim": dim}
        elif isinstance(data, dict) and data.get("pretrained_words", "all") != "all":
            raise ValueError("pretrained_words applies to pretrained embeddings (embeddings: all-MiniLM-L6-v2)")
        return data

    @property
    def pretrained(self) -> bool:
        return self.embeddings != "trained"


class BiLSTMTaggerConfig(_TaggerCfg):
    """Token classification: bidirectional LSTMs over the tokens (``layers`` stacked), one tag's logits per
    position."""

    units: Width = 64
    layers: Annotated[StrictInt, Field(ge=1, le=4)] = 1
    dropout: float = Field(default=0.3, ge=0, lt=1)


class CNNTaggerConfig(_TaggerCfg):
    """Token classification: stacked dilated Conv1D (each position sees 1 + (kernel_size - 1) * sum(dilations)
    tokens), which int8 and XNNPACK run well, one tag's logits per position."""

    filters: Width = 128
    kernel_size: Annotated[StrictInt, Field(ge=1, le=64)] = 3
    dilations: Annotated[tuple[Annotated[StrictInt, Field(ge=1, le=64)], ...], Field(min_length=1, max_length=8)] \
        = (1, 2, 4)
    dropout: float = Field(default=0.3, ge=0, lt=1)


CONFIGS: dict[str, type[_Cfg]] = {
    "text_cnn": TextCNNConfig,
    "bilstm": BiLSTMConfig,
    "transformer": TransformerConfig,
    "bilstm_tagger": BiLSTMTaggerConfig,
    "cnn_tagger": CNNTaggerConfig,
}
TAGGERS = ("bilstm_tagger", "cnn_tagger")  # token classification: (batch, seq_len, tags) logits

# Keras layer classes with weights that each architecture contains (for planning passes without building it).
LAYER_TYPES: dict[str, set[str]] = {
    "text_cnn": {"Embedding", "Conv1D", "Dense"},
    "bilstm": {"Embedding", "Bidirectional", "LSTM", "Dense"},
    "transformer": {"Embedding", "MultiHeadAttention", "LayerNormalization", "Dense"},
    "bilstm_tagger": {"Embedding", "Bidirectional", "LSTM", "Dense"},
    "cnn_tagger": {"Embedding", "Conv1D", "Dense"},
}

# Recurrent layers convert to TFLite only with a static batch (TOOLCHAIN §3); the converter uses batch 1.
NEEDS_FIXED_BATCH = {"bilstm", "bilstm_tagger"}


def build_model(name: str, config, vocab_size: int, num_classes: int, seq_len: int):
    from . import builders

    fn = {"text_cnn": builders.text_cnn, "bilstm": builders.bilstm, "transformer": builders.transformer,
          "bilstm_tagger": builders.bilstm_tagger, "cnn_tagger": builders.cnn_tagger}[name]
    return fn(config, vocab_size=vocab_size, num_classes=num_classes, seq_len=seq_len)
