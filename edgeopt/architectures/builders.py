"""tf_keras builders for the reference architectures (imported lazily: this module imports TF)."""
from __future__ import annotations

from ..tf import keras, tf

K = keras()
L = K.layers


@K.utils.register_keras_serializable(package="edgeopt")
class PositionEmbedding(L.Layer):
    """Adds a learned position embedding to a (batch, seq, dim) tensor."""

    def __init__(self, seq_len: int, dim: int, **kw):
        super().__init__(**kw)
        self.seq_len, self.dim = seq_len, dim

    def build(self, input_shape):
        self.pos = self.add_weight(name="pos", shape=(self.seq_len, self.dim),
                                   initializer=K.initializers.RandomNormal(stddev=0.02))
        super().build(input_shape)

    def call(self, x):
        return x + self.pos[None, :, :]

    def get_config(self):
        return {**super().get_config(), "seq_len": self.seq_len, "dim": self.dim}


def _inputs(seq_len):
    return K.Input(shape=(seq_len,), dtype="int32", name="tokens")


def text_cnn(cfg, vocab_size, num_classes, seq_len):
    tokens = _inputs(seq_len)
    x = L.Embedding(vocab_size, cfg.embed_dim, name="embedding")(tokens)
    branches = []
    for k in cfg.kernel_sizes:
        c = L.Conv1D(cfg.filters, k, padding="same", activation="relu", name=f"conv{k}")(x)
        branches.append(L.GlobalMaxPooling1D(name=f"pool{k}")(c))
    x = branches[0] if len(branches) == 1 else L.Concatenate(name="concat")(branches)
    x = L.Dropout(cfg.dropout, name="dropout")(x)
    if cfg.hidden:
        x = L.Dense(cfg.hidden, activation="relu", name="hidden")(x)
    logits = L.Dense(num_classes, name="logits")(x)
    return K.Model(tokens, logits, name="text_cnn")


def bilstm(cfg, vocab_size, num_classes, seq_len):
    tokens = _inputs(seq_len)
    x = L.Embedding(vocab_size, cfg.embed_dim, name="embedding")(tokens)
    seq = cfg.pooling == "max"
    x = L.Bidirectional(L.LSTM(cfg.units, return_sequences=seq), name="bilstm")(x)
    if seq:
        x = L.GlobalMaxPooling1D(name="pool")(x)
    x = L.Dropout(cfg.dropout, name="dropout")(x)
    logits = L.Dense(num_classes, name="logits")(x)
    return K.Model(tokens, logits, name="bilstm")


def transformer(cfg, vocab_size, num_classes, seq_len):
    if cfg.embed_dim % cfg.num_heads:
        raise ValueError("embed_dim must be divisible by num_heads")
    tokens = _inputs(seq_len)
    x = L.Embedding(vocab_size, cfg.embed_dim, name="embedding")(tokens)
    x = PositionEmbedding(seq_len, cfg.embed_dim, name="position")(x)
    # No additive attention mask: Keras adds about -1e9 at masked keys, which sets the int8 scale of the score
    # tensor and quantizes every real score to zero (int8 accuracy 0.22 vs float 0.87 on Banking77). Padding is
    # handled by the masked mean below, which only averages real tokens.
    T = tf()
    for i in range(cfg.num_layers):
        a = L.MultiHeadAttention(cfg.num_heads, cfg.embed_dim // cfg.num_heads, dropout=cfg.dropout,
                                 name=f"mha{i}")(x, x)
        x = L.LayerNormalization(epsilon=1e-6, name=f"ln{i}a")(x + L.Dropout(cfg.dropout, name=f"drop{i}a")(a))
        f = L.Dense(cfg.ff_dim, activation="relu", name=f"ff{i}a")(x)
        f = L.Dense(cfg.embed_dim, name=f"ff{i}b")(f)
        x = L.LayerNormalization(epsilon=1e-6, name=f"ln{i}b")(x + L.Dropout(cfg.dropout, name=f"drop{i}b")(f))
    # Masked mean over real tokens; max(count, 1) keeps an all-padding (empty) input finite.
    m = T.expand_dims(T.cast(T.not_equal(tokens, 0), "float32"), -1)
    x = T.reduce_sum(x * m, axis=1) / T.maximum(T.reduce_sum(m, axis=1), 1.0)
    x = L.Dropout(cfg.dropout, name="dropout")(x)
    logits = L.Dense(num_classes, name="logits")(x)
    return K.Model(tokens, logits, name="transformer")


def _tagger(name, vocab_size, num_classes, seq_len, cfg, body):
    """Token classification: ids -> embedding -> ``body`` (one vector per token) -> one row of tag logits per token
    (``num_classes`` is the number of BIO tags; output (batch, seq_len, tags))."""
    tokens = _inputs(seq_len)
    words = tokens
    if cfg.case:  # ids are len(CASES) x word + case class (data/tokenizer.py)
        from ..data.tokenizer import CASES

        T = tf()
        words, case = T.math.floordiv(tokens, len(CASES)), T.math.floormod(tokens, len(CASES))
    x = L.Embedding(vocab_size, cfg.embed_dim, name="embedding", trainable=not cfg.pretrained)(words)
    if cfg.case:
        x = L.Concatenate(name="with_case")([x, L.Embedding(len(CASES), 8, name="case_embedding")(case)])
    x = body(L.Dropout(cfg.dropout, name="embed_dropout")(x))
    x = L.Dropout(cfg.dropout, name="dropout")(x)
    return K.Model(tokens, L.Dense(num_classes, name="logits")(x), name=name)


def bilstm_tagger(cfg, vocab_size, num_classes, seq_len):
    def body(x):
        for i in range(cfg.layers):  # the first keeps its old name: cached and exported weights map by name
            x = L.Bidirectional(L.LSTM(cfg.units, return_sequences=True), name="bilstm" if i == 0 else f"bilstm{i}")(x)
        return x

    return _tagger("bilstm_tagger", vocab_size, num_classes, seq_len, cfg, body)


def cnn_tagger(cfg, vocab_size, num_classes, seq_len):
    """Dilated Conv1D ('same' padding keeps one output per token)."""
    def body(x):
        for i, d in enumerate(cfg.dilations):
            x = L.Conv1D(cfg.filters, cfg.kernel_size, padding="same", dilation_rate=d, activation="relu",
                         name=f"conv{i}")(x)
        return x

    return _tagger("cnn_tagger", vocab_size, num_classes, seq_len, cfg, body)
