"""tf_keras text-model builders. Configs are TF-free pydantic models; builders import TF lazily.

Every builder takes (config, vocab_size, num_classes, seq_len) and returns an uncompiled tf_keras Model with
an int32 ``tokens`` input of shape (batch, seq_len) and float32 logits (no softmax, so int8 output keeps range).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextCNNConfig(_Cfg):
    embed_dim: int = Field(default=128, ge=2)
    filters: int = Field(default=128, ge=1)
    kernel_sizes: tuple[int, ...] = (2, 3, 4)
    hidden: int = Field(default=0, ge=0)  # optional Dense layer before the classifier
    dropout: float = Field(default=0.3, ge=0, lt=1)


class BiLSTMConfig(_Cfg):
    embed_dim: int = Field(default=128, ge=2)
    units: int = Field(default=64, ge=1)
    pooling: Literal["max", "last"] = "max"
    dropout: float = Field(default=0.3, ge=0, lt=1)


class TransformerConfig(_Cfg):
    embed_dim: int = Field(default=64, ge=2)
    num_heads: int = Field(default=4, ge=1)
    ff_dim: int = Field(default=128, ge=1)
    num_layers: int = Field(default=2, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)


CONFIGS: dict[str, type[_Cfg]] = {
    "text_cnn": TextCNNConfig,
    "bilstm": BiLSTMConfig,
    "transformer": TransformerConfig,
}

# Keras layer classes with weights that each architecture contains (for planning passes without building it).
LAYER_TYPES: dict[str, set[str]] = {
    "text_cnn": {"Embedding", "Conv1D", "Dense"},
    "bilstm": {"Embedding", "Bidirectional", "LSTM", "Dense"},
    "transformer": {"Embedding", "MultiHeadAttention", "LayerNormalization", "Dense"},
}

# Recurrent layers convert to TFLite only with a static batch (TOOLCHAIN §3); the converter uses batch 1.
NEEDS_FIXED_BATCH = {"bilstm"}


def build_model(name: str, config, vocab_size: int, num_classes: int, seq_len: int):
    from . import builders

    fn = {"text_cnn": builders.text_cnn, "bilstm": builders.bilstm, "transformer": builders.transformer}[name]
    return fn(config, vocab_size=vocab_size, num_classes=num_classes, seq_len=seq_len)
