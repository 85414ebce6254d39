"""``build --fit-size``: the largest configuration of a built-in architecture whose deployed file meets the targets'
``max_size_bytes``, chosen before any training.

The candidates are the spec's vocabulary cap and embedding width and smaller ones (``VOCABS`` x ``WIDTHS``, never
larger than the spec's). Each is ranked by its weight count (the model built untrained, with the vocabulary the
tokenizer fitted at that cap really has); a candidate whose weights alone (at the target's bytes per weight)
exceed the budget is out. The largest remaining one is then converted untrained, as the target converts (its
file size is the trained file's: the same tensors), plus the metadata the build adds (the vocabulary and labels
files); the first that fits is chosen. After training, the size budget checks the real file as always. No library
sizes a model to a file budget, hence this module.
"""
from __future__ import annotations

from ..errors import InputError
from ..validate.size_drivers import BYTES_PER_WEIGHT

VOCABS = (20000, 16000, 12000, 8000, 6000, 4000, 3000, 2000, 1000)
WIDTHS = (256, 192, 128, 96, 64, 48, 32, 16)
MARGIN = 0.98  # of the budget: converter versions move a file by a few hundred bytes
MAX_CONVERSIONS = 6


def fit(spec, profiles, ptq_of, ds):
    """(the spec with the chosen ``tokenizer.max_vocab`` and ``architecture.params.embed_dim``, the record for the
    manifest). ``ptq_of(profile)``: the quantization the build deploys for that target."""
    where = spec.source or spec.name
    if spec.architecture is None:
        raise InputError(f"{where}: --fit-size sizes a built-in architecture (its vocabulary and embedding width); "
                         f"this spec's model is a file or a builder, whose size is its own. Fix: drop --fit-size.")
    cfg = spec.architecture.config()
    if not spec.resizable:
        raise InputError(f"{where}: --fit-size chooses the vocabulary and embedding width, and this model's are "
                         f"fixed (a pretrained table or a given vocabulary). Fix: drop --fit-size.")
    budgets = [(p, p.budgets.max_size_bytes) for p in profiles if p.budgets.max_size_bytes is not None]
    if not budgets:
        raise InputError(f"--fit-size: no target names budgets.max_size_bytes ({', '.join(p.name for p in profiles)}). "
                         f"Fix: pick a target with a size budget, or add one to the target.")
    bad = [p.name for p, _ in budgets if p.runtime.format != "tflite"]
    if bad:
        raise InputError(f"--fit-size: target {bad[0]} deploys ONNX; the size check converts with LiteRT's "
                         f"converter. Fix: fit the size for a LiteRT target.")
    heads = getattr(cfg, "num_heads", 1) or 1
    vocabs = [v for v in VOCABS if v < spec.tokenizer.max_vocab] + [spec.tokenizer.max_vocab]
    widths = [w for w in WIDTHS if w < cfg.embed_dim and w % heads == 0] + [cfg.embed_dim]
    sizes = _vocab_sizes(spec, ds, sorted(set(vocabs), reverse=True))
    cands = _ranked(spec, cfg, ds, sizes, widths)
    tried = []
    for v, n_vocab, w, weights in cands:
        floor = {p.name: weights * BYTES_PER_WEIGHT.get(ptq_of(p), 4) for p, _ in budgets}
        if any(floor[p.name] > limit * MARGIN for p, limit in budgets):
            continue
        if len(tried) >= MAX_CONVERSIONS:
            break
        measured = _converted_sizes(spec, cfg, ds, sizes[v][1], w, budgets, ptq_of)
        tried.append({"max_vocab": v, "vocab_size": n_vocab, "embed_dim": w, "weights": weights,
                      "predicted_bytes": measured})
        if all(measured[p.name] <= limit * MARGIN for p, limit in budgets):
            chosen = tried[-1]
            return spec.resized(v, embed_dim=w), {"limits": {p.name: limit for p, limit in budgets}, "margin": MARGIN,
                         "was": {"max_vocab": spec.tokenizer.max_vocab, "embed_dim": cfg.embed_dim},
                         "chosen": chosen, "tried": tried, "candidates": len(cands),
                         "how": "the largest weight count whose untrained file, converted as the target converts, "
                                "plus the vocabulary and labels files, fits the budget"}
    smallest = min(cands, key=lambda c: c[3])
    limits = ", ".join(f"{p.name} ({limit:,} B)" for p, limit in budgets)
    if tried:
        last = tried[-1]
        raise InputError(f"--fit-size: no configuration fits {limits}: the {len(tried)} largest candidates whose "
                         f"weights fit were converted, the smallest of them (vocabulary {last['vocab_size']:,} x "
                         f"embedding {last['embed_dim']}) to {max(last['predicted_bytes'].values()):,} B. Fix: a "
                         f"smaller architecture (architecture.params), or a larger size budget.")
    raise InputError(f"--fit-size: no configuration fits {limits}: the smallest (vocabulary {smallest[1]:,} x "
                     f"embedding {smallest[2]}) has {smallest[3]:,} weights. Fix: a smaller architecture "
                     f"(architecture.params), or a larger size budget.")


def _vocab_sizes(spec, ds, caps) -> dict:
    """{cap: (the vocabulary size the tokenizer fitted at that cap has, that tokenizer)}."""
    from .prepare import make_tokenizer

    out = {}
    for v in caps:
        tok = make_tokenizer(spec.resized(v), ds)
        out[v] = (tok.vocab_size, tok)
    return out


def _ranked(spec, cfg, ds, sizes, widths) -> list:
    """(max_vocab, vocabulary size, width, weights) for every candidate, largest first."""
    from ..architectures import build_model
    from ..tf import keras

    out = []
    seen = set()
    for v, (n, _) in sizes.items():
        for w in widths:
            if (n, w) in seen:  # a cap above the data's words gives the same vocabulary
                continue
            seen.add((n, w))
            m = build_model(spec.architecture.name, cfg.model_copy(update={"embed_dim": w}), vocab_size=n,
                            num_classes=ds.num_classes, seq_len=spec.tokenizer.seq_len)
            out.append((v, n, w, int(m.count_params())))
            keras().backend.clear_session()
    return sorted(out, key=lambda c: (-c[3], -c[1]))


def metadata_bytes(tok, labels) -> int:
    """What the build's model metadata adds to a .tflite: the files it carries (the vocabulary, the labels) and
    about 4 KB of metadata (clients/mediapipe.write_metadata)."""
    from ..clients.mediapipe import metadata_vocab

    vocab = metadata_vocab(tok) or ""
    return len(vocab.encode()) + len("".join(f"{x}\n" for x in labels).encode()) + 4096


def _converted_sizes(spec, cfg, ds, tok, w, budgets, ptq_of) -> dict:
    """{target: bytes of the untrained model (``tok``'s vocabulary, width ``w``) converted as the target converts,
    plus the metadata files}."""
    import numpy as np

    from ..architectures import build_model
    from ..convert.tflite import convert

    model = build_model(spec.architecture.name, cfg.model_copy(update={"embed_dim": w}), vocab_size=tok.vocab_size,
                        num_classes=ds.num_classes, seq_len=tok.seq_len)
    rep = np.asarray(tok.encode_batch(list(ds.train.texts)[:64]), np.int32)
    extra = metadata_bytes(tok, ds.label_names)
    out, by_mode = {}, {}
    for p, _ in budgets:
        mode = ptq_of(p)
        if mode not in by_mode:
            by_mode[mode] = len(convert(model, mode, rep, tok.seq_len)) + extra
        out[p.name] = by_mode[mode]
    return out
