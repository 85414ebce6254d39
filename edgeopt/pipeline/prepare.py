"""The input end: the spec's model source, its tokenizer and the checks of the model against the data, done before
any training or conversion.

For a built-in architecture nothing here needs TensorFlow. For a model file or a builder the model is loaded (or
built) once, here: its sequence length and Embedding size fill the tokenizer fields the spec leaves unset, and a
model that does not fit the data (inputs, class count, sequence length, vocabulary) is a one-line error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError
from ..sources import ModelSource, check_io, source_for
from ..specs import ModelSpec
from ..tasks import task_for


@dataclass
class Prepared:
    spec: ModelSpec  # with the tokenizer fields a model file decides filled in
    source: ModelSource
    facts: dict = field(default_factory=dict)  # what the checks found (manifest "model_source")


def load_spec_data(spec: ModelSpec):
    """The data of ``spec``, its labels in the model's output order when the model declares one (``model.labels``:
    a list, or a file with one label a line)."""
    from ..data import load_dataset
    from ..data.datasets import in_label_order

    ds = load_dataset(spec.data)
    declared = spec.model.labels if spec.model is not None else None
    if declared is None:
        return ds
    if isinstance(declared, str):
        from ..errors import InputError
        from ..files import read_text_capped

        order = tuple(ln.strip() for ln in read_text_capped(Path(declared), 16 << 20, "labels file",
                                                             InputError).splitlines() if ln.strip())
        where = declared
    else:
        order, where = tuple(declared), f"{spec.source or spec.name}: model.labels"
    return in_label_order(ds, order, where)


def open_inputs(spec: ModelSpec, source: ModelSource | None = None) -> None:
    """What a build reads before training, read for ``--dry-run`` the way the build reads it: a user's data files
    (parsed, with their caps) and the tokenizer a vocabulary or Hugging Face file gives (``make_tokenizer``). A
    built-in dataset with a fitted tokenizer has no file of the user's to open."""
    tk = spec.tokenizer
    if spec.data.files is not None or tk.vocab_file or tk.huggingface:
        make_tokenizer(spec, load_spec_data(spec), source)


def make_tokenizer(spec: ModelSpec, ds, source: ModelSource | None = None):
    """The spec's tokenizer: the model file's own TextVectorization (read from ``source``), a vocabulary file, a
    Hugging Face file, or edgeopt's word or regex (MediaPipe's) tokenizer fitted on the training texts
    (deterministic: the same vocabulary every build)."""
    from ..data.tokenizer import HFTokenizer, RegexTokenizer, TokenTokenizer, WordTokenizer

    tk = spec.tokenizer
    vec = vectorizer_of(spec, source)
    if vec is not None:
        return vec.tokenizer(tk.seq_len)
    tagging = task_for(getattr(ds, "task", None)).per_token
    if not tagging and tk.vocab_file:
        return WordTokenizer.from_vocab_file(tk.vocab_file, tk.seq_len, tk.lowercase, tk.pad_token, tk.unk_token)
    if not tagging and tk.huggingface:
        return HFTokenizer.from_file(tk.huggingface, tk.seq_len, tk.pad_token)
    # a tagger's words are the dataset's own tokens, never split further
    cls = TokenTokenizer if tagging else RegexTokenizer if tk.kind == "regex" else WordTokenizer
    extra = {}
    arch = spec.architecture.config() if tagging and spec.architecture is not None else None
    if getattr(arch, "pretrained", False) and arch.pretrained_words == "all":
        from ..teachers.minilm import whole_words

        extra["extra_words"] = whole_words()  # a word the training split lacks still has its pretrained vector
    if getattr(arch, "case", False):
        extra["case_ids"] = True
    tok = cls.fit(ds.train.texts, seq_len=tk.seq_len, max_vocab=tk.max_vocab, min_freq=tk.min_freq,
                  lowercase=tk.lowercase, **extra)
    if tok.vocab_size <= 2:
        raise DataError(f"dataset {ds.name!r}: the training texts hold no token (min_freq {tk.min_freq}); nothing "
                        f"can be learned. Fix: give training texts with words in them, or lower tokenizer.min_freq.")
    return tok


def vectorizer_of(spec: ModelSpec, source: ModelSource | None):
    """The model file's TextVectorization (``sources.textvec.Vectorizer``), None for a token-id model; a spec that
    also names a tokenizer is an error (the model carries its own)."""
    vec = getattr(source, "vectorizer", None) if source is not None and source.kind == "file" else None
    tk = spec.tokenizer
    if vec is not None and (tk.mode != "fitted" or tk.kind != "word"):
        from ..errors import InputError

        named = f"tokenizer.{tk.mode}" if tk.mode != "fitted" else "tokenizer.kind"
        raise InputError(f"{spec.source or spec.name}: {source.where} takes raw text through its TextVectorization "
                         f"{vec.layer.name!r}, whose vocabulary and rules edgeopt uses; {named} would give it "
                         f"other ids. Fix: remove {named} from the spec (or --vocab / --hf-tokenizer from the "
                         f"command).")
    return vec


def resolve_spec(spec: ModelSpec, source: ModelSource) -> ModelSpec:
    """A model file decides what the spec leaves unset: ``seq_len`` (its input length; for a TextVectorization
    without ``output_sequence_length``, the 95th percentile of the training texts' word counts) and, for the
    fitted word tokenizer, ``max_vocab`` (its Embedding's rows)."""
    if source.kind != "file":
        return spec
    from ..sources import first_embedding

    model = source.model
    tk, upd = spec.tokenizer, {}
    shape = tuple(model.inputs[0].shape) if len(model.inputs) == 1 else ()
    if "seq_len" not in tk.model_fields_set and len(shape) == 2 and shape[1] is not None:
        upd["seq_len"] = int(shape[1])
    elif "seq_len" not in tk.model_fields_set and vectorizer_of(spec, source) is not None:
        from ..ownspec import seq_len_for

        upd["seq_len"] = seq_len_for(load_spec_data(spec).train.texts)
    emb = first_embedding(model)
    if tk.mode == "fitted" and "max_vocab" not in tk.model_fields_set and emb is not None:
        upd["max_vocab"] = max(10, int(emb.input_dim))
    if not upd:
        return spec
    return spec.model_copy(update={"tokenizer": tk.model_copy(update=upd)})


def prepare(spec: ModelSpec) -> Prepared:
    """Load/build the user's model and check it against the data (no-op for built-in architectures)."""
    source = source_for(spec)
    if source.kind == "architecture":
        return Prepared(spec, source)
    spec = resolve_spec(spec, source)
    ds = load_spec_data(spec)
    tok = make_tokenizer(spec, ds, source)
    if source.kind == "builder":
        source.prepare(tok.vocab_size, ds.num_classes, tok.seq_len)
    facts = check_io(source.model, source.where, ds.num_classes, tok.seq_len, tok.vocab_size, ds.name,
                     tagging=task_for(ds.task).per_token)
    rows = facts.get("embedding_rows")
    if source.kind == "file" and spec.tokenizer.mode == "fitted" and rows and spec.tokenizer.max_vocab > rows:
        from ..errors import InputError

        raise InputError(f"{spec.source or spec.name}: tokenizer.max_vocab {spec.tokenizer.max_vocab} exceeds the "
                         f"{rows} rows of {source.where}'s Embedding (ids past them would index nothing). Fix: set "
                         f"tokenizer.max_vocab: {rows}, or leave it unset.")
    facts = {"kind": source.kind, **source.fingerprint(), **facts}
    if source.kind == "file":
        facts["path"] = str(source.path)
        facts["weights"] = "trained on the data first (training.fit)" if spec.training.fit else "used as given"
        vec = vectorizer_of(spec, source)
        if vec is not None:
            facts["textvectorization"] = text_vectorization_facts(vec, tok, ds, task_for(ds.task).per_token)
        if getattr(source, "native", None):
            version = f"Keras {source.keras3['keras_version']}" if source.keras3 else "tf_keras"
            facts["used_as_is"] = f"used as it is in {version}: {source.native}"
        elif getattr(source, "keras3", None) is not None:
            from ..sources.keras3 import compare

            x = tok.encode_batch(ds.dev.texts[:256] or ds.train.texts[:256])
            facts["keras3_rebuild"] = compare(source.keras3, source.model, x, source.path)
    return Prepared(spec, source, facts)


def text_vectorization_facts(vec, tok, ds, tagging: bool) -> dict:
    """The vectorizer's settings, the ids compared on every text of the data (an error when one differs), and the
    given model's own test accuracy on the raw strings (a classifier's), which the deployed file's is set beside."""
    import numpy as np

    from ..sources.textvec import check_ids

    splits = {"train": ds.train.texts, "dev": ds.dev.texts, "test": ds.test.texts}
    out = {**vec.record(), "seq_len": tok.seq_len, **check_ids(vec, tok, splits)}
    if not tagging and len(ds.test):
        pred = vec.own_predictions(ds.test.texts)
        out["own_test_accuracy"] = float(np.mean(pred == np.asarray(ds.test.labels)))
    return out


def first_step(spec: ModelSpec, source: ModelSource):
    """``load`` (a model file's weights, as they are) or ``train``."""
    from ..recipe import Step

    if source.pretrained and not spec.training.fit:
        return Step("load", note="the model file's weights, as given (training.fit to train them first)")
    if source.pretrained:
        return Step("train", note="from the model file's weights (training.fit)")
    return Step("train")
