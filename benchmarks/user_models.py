"""Users' own Keras models, built as they are: keras.io's examples as people write them, trained on Banking77 by
this script and saved, then `edgeopt build FILE --data banking77 --target pixel-7` run on each as a user runs it
(a subprocess; wall time includes loading TensorFlow). For each: the file's format, the exit status, the
quantization deployed (int8, or the target's fallback), the model's own test accuracy (the Keras model on the test
split, raw strings for a TextVectorization model) against the deployed file's, its size, and the instructions per
inference on the emulated Cortex-A76. Writes benchmarks/results/user_models.{json,md}.

    EDGEOPT_DATA_PATH=../shared/data python benchmarks/user_models.py [--models tv-tf_keras ...]

The models: keras.io "Text classification from scratch" (raw strings in through TextVectorization, Conv1D) in
tf_keras (output_sequence_length 64) and in Keras 3 (no output length: edgeopt picks one); keras.io "Text
classification with Transformer" (custom TokenAndPositionEmbedding and TransformerBlock layers) in tf_keras and in
Keras 3; a BiLSTM with Embedding(mask_zero=True) (int8 crashes the converter: the target's fallback); a subclassed
tf_keras model in a SavedModel. Training is seeded but not bit-reproducible across machines.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from _common import parse_args, write_results

MODELS = ["tv-tf_keras", "tv-keras3", "transformer-tf_keras", "transformer-keras3", "masked-bilstm", "subclassed"]
SEQ = 48
LAYERS = textwrap.dedent('''
    import {k} as K
    {ops}


    @K.{reg}(package="KerasIO")
    class TokenAndPositionEmbedding(K.layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim, **kw):
            super().__init__(**kw)
            self.maxlen, self.vocab_size, self.embed_dim = maxlen, vocab_size, embed_dim
            self.token_emb = K.layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = K.layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            return self.token_emb(x) + self.pos_emb({arange})

        def get_config(self):
            return {{**super().get_config(), "maxlen": self.maxlen, "vocab_size": self.vocab_size,
                    "embed_dim": self.embed_dim}}


    @K.{reg}(package="KerasIO")
    class TransformerBlock(K.layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kw):
            super().__init__(**kw)
            self.embed_dim, self.num_heads, self.ff_dim, self.rate = embed_dim, num_heads, ff_dim, rate
            self.att = K.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
            self.ffn = K.Sequential([K.layers.Dense(ff_dim, activation="relu"), K.layers.Dense(embed_dim)])
            self.layernorm1 = K.layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = K.layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = K.layers.Dropout(rate)
            self.dropout2 = K.layers.Dropout(rate)

        def call(self, inputs, training=False):
            attn_output = self.dropout1(self.att(inputs, inputs), training=training)
            out1 = self.layernorm1(inputs + attn_output)
            ffn_output = self.dropout2(self.ffn(out1), training=training)
            return self.layernorm2(out1 + ffn_output)

        def get_config(self):
            return {{**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                    "ff_dim": self.ff_dim, "rate": self.rate}}


    @K.{reg}(package="Mine")
    class Classifier(K.Model):
        def __init__(self, vocab=20000, classes=77, **kw):
            super().__init__(**kw)
            self.vocab, self.classes = vocab, classes
            self.emb = K.layers.Embedding(vocab, 64)
            self.conv = K.layers.Conv1D(128, 3, activation="relu")
            self.pool = K.layers.GlobalMaxPooling1D()
            self.out = K.layers.Dense(classes)

        def call(self, x):
            return self.out(self.pool(self.conv(self.emb(x))))

        def get_config(self):
            return {{"vocab": self.vocab, "classes": self.classes}}
''')


def _module(d: Path, keras3: bool) -> str:
    name = "kio_k3" if keras3 else "kio_tk"
    (d / f"{name}.py").write_text(LAYERS.format(
        k="keras" if keras3 else "tf_keras",
        reg="saving.register_keras_serializable" if keras3 else "utils.register_keras_serializable",
        ops="from keras import ops" if keras3 else "import tensorflow as tf",
        arange="ops.arange(0, ops.shape(x)[-1], 1)" if keras3 else "tf.range(0, tf.shape(x)[-1], 1)"))
    return name


def make(name: str, d: Path, ds, tok) -> tuple[str, dict, float]:
    """Train and save model ``name``: (its path, extra build arguments, its own test accuracy)."""
    import importlib

    import numpy as np

    keras3 = name.endswith("keras3")
    if keras3:
        import keras as K
        import tensorflow as tf
    else:
        import tensorflow as tf
        import tf_keras as K
    K.utils.set_random_seed(42)
    y, yt = np.asarray(ds.train.labels), np.asarray(ds.test.labels)
    args: list[str] = []
    if name.startswith("tv-"):  # keras.io "Text classification from scratch", 77 classes
        vec = K.layers.TextVectorization(max_tokens=20000, output_mode="int",
                                          output_sequence_length=None if keras3 else 64)
        vec.adapt(list(ds.train.texts))
        inp = K.Input(shape=() if keras3 else (1,), dtype="string")
        x = K.layers.Dropout(0.5)(K.layers.Embedding(20000, 128)(vec(inp)))
        x = K.layers.Conv1D(128, 7, padding="valid", activation="relu", strides=3)(x)
        x = K.layers.GlobalMaxPooling1D()(x)
        x = K.layers.Dropout(0.5)(K.layers.Dense(128, activation="relu")(x))
        model = K.Model(inp, K.layers.Dense(77)(x))
        X = tf.constant(list(ds.train.texts)) if keras3 else np.asarray(ds.train.texts, object)[:, None]
        Xt = tf.constant(list(ds.test.texts)) if keras3 else np.asarray(ds.test.texts, object)[:, None]
        epochs = 8
    else:
        X, Xt = tok.encode_batch(ds.train.texts), tok.encode_batch(ds.test.texts)
        args = ["--vocab", str(d / "vocab.txt")]
        epochs = 6
        if name.startswith("transformer"):  # keras.io "Text classification with Transformer"
            mod = importlib.import_module(_module(d, keras3))
            args += ["--custom-module", mod.__name__]
            inp = K.Input(shape=(SEQ,), dtype="int32")
            x = mod.TokenAndPositionEmbedding(SEQ, tok.vocab_size, 64)(inp)
            x = mod.TransformerBlock(64, 2, 64)(x)
            x = K.layers.Dropout(0.1)(K.layers.GlobalAveragePooling1D()(x))
            x = K.layers.Dropout(0.1)(K.layers.Dense(64, activation="relu")(x))
            model = K.Model(inp, K.layers.Dense(77)(x))
            epochs = 10
        elif name == "masked-bilstm":
            inp = K.Input(shape=(SEQ,), dtype="int32")
            x = K.layers.Embedding(tok.vocab_size, 64, mask_zero=True)(inp)
            x = K.layers.Bidirectional(K.layers.LSTM(64))(x)
            model = K.Model(inp, K.layers.Dense(77)(x))
        else:  # subclassed
            mod = importlib.import_module(_module(d, False))
            args += ["--custom-module", mod.__name__]
            model = mod.Classifier(vocab=tok.vocab_size)
    model.compile(optimizer=K.optimizers.Adam(2e-3), loss=K.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, y, epochs=epochs, batch_size=64, verbose=0)
    own = float((np.asarray(model.predict(Xt, batch_size=256, verbose=0)).argmax(-1) == yt).mean())
    path = d / {"tv-tf_keras": "tv.keras", "tv-keras3": "tv_k3.keras", "transformer-tf_keras": "transformer.keras",
                "transformer-keras3": "transformer_k3.keras", "masked-bilstm": "bilstm.h5",
                "subclassed": "subclassed"}[name]
    model.save(path, **({"save_format": "tf"} if name == "subclassed" else {}))
    return str(path), args, own


def main() -> None:
    args = parse_args(MODELS, __doc__)
    from edgeopt.data import load_dataset
    from edgeopt.data.tokenizer import WordTokenizer
    from edgeopt.specs import DataSpec

    ds = load_dataset(DataSpec(dataset="banking77"))
    tok = WordTokenizer.fit(ds.train.texts, seq_len=SEQ, max_vocab=20000)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeopt-user-models-") as td:
        d = Path(td)
        (d / "vocab.txt").write_text("\n".join(tok.vocab) + "\n", encoding="utf-8")
        sys.path.insert(0, str(d))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(d), os.environ.get("PYTHONPATH", "")])}
        for name in args.models:
            path, extra, own = make(name, d, ds, tok)
            out = d / f"out-{name}"
            cmd = [sys.executable, "-m", "edgeopt", "build", path, "--data", "banking77", "--target", "pixel-7",
                   *extra, "--out", str(out), "--quiet", "--json"]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t0
            row = {"model": name, "file": Path(path).name, "rc": r.returncode, "own_accuracy": round(own, 4),
                   "build_wall_s": round(wall, 1)}
            try:
                m = json.loads(r.stdout)
            except ValueError:
                row["error"] = (r.stderr.strip().splitlines() or ["?"])[-1][:300]
            else:
                src, met = m["model_source"], m["metrics"]
                row.update(format=src.get("format"), deployed=m["conversion"]["deployed"],
                           fell_back=m["conversion"]["fell_back"], deployed_accuracy=met["accuracy"],
                           float32_file_accuracy=met["baseline"]["accuracy"], size_bytes=met["size"]["size_bytes"],
                           instructions=(m.get("device_cost") or {}).get("instructions_per_inference"),
                           used_as_is=src.get("used_as_is"), textvectorization=src.get("textvectorization"),
                           seq_len=m["tokenizer"]["seq_len"],
                           failed_budgets=[c["name"] for c in m["budgets"]["checks"] if not c["passed"]])
            rows.append(row)
            print(json.dumps(row), flush=True)
    md = ["# Users' own Keras models on pixel-7 (Banking77 test split, 3,080 texts)", "",
          "| model | format | rc | deployed | own accuracy | deployed accuracy | size | instructions (A76) | "
          "build wall time | note |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        notes = []
        if r.get("used_as_is"):
            notes.append("used as it is (PTQ only)")
        if r.get("textvectorization"):
            notes.append(f"TextVectorization: ids equal on {r['textvectorization']['texts_compared']:,} texts")
        if r.get("fell_back"):
            notes.append("int8 crashed the converter: the target's fallback")
        if r.get("failed_budgets"):
            notes.append("failed " + ", ".join(r["failed_budgets"]))
        if r.get("error"):
            notes.append(r["error"])
        dep = f"{r['deployed_accuracy']:.4f}" if "deployed_accuracy" in r else "-"
        size = f"{r['size_bytes'] / 1e3:,.0f} KB" if "size_bytes" in r else "-"
        ins = f"{r['instructions'] / 1e6:.2f} M" if r.get("instructions") else "-"
        md.append(f"| {r['model']} | {r.get('format', '-')} | {r['rc']} | {r.get('deployed', '-')} | "
                  f"{r['own_accuracy']:.4f} | {dep} | {size} | {ins} | {r['build_wall_s']:.0f} s | {'; '.join(notes)} |")
    write_results(args.out, "user_models", rows, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
