"""Find ModelSpecs and TargetProfiles by built-in name or by path.

Built-ins are the YAML files of the repository's top-level ``models/`` and ``targets/``. A wheel (``pip install
.``) copies them into ``edgeopt/builtin/{models,targets}`` (see setup.py), so both layouts are searched: the
installed copy first, then the source checkout.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .errors import NotFoundError, suggest
from .specs import ModelSpec, TargetProfile, load_model_spec_file, load_target_file

_PKG = Path(__file__).resolve().parent


def builtin_dir(kind: str) -> Path:
    for d in (_PKG / "builtin" / kind, _PKG.parent / kind):
        if d.is_dir() and any(d.glob("*.yaml")):
            return d
    raise NotFoundError(f"no built-in {kind} found (looked in {_PKG / 'builtin' / kind} and {_PKG.parent / kind}). "
                        f"Fix: reinstall edgeopt.")


def builtin_names(kind: str) -> list[str]:
    return sorted(p.stem for p in builtin_dir(kind).glob("*.yaml"))


def _looks_like_path(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml")) or "/" in ref or Path(ref).is_file()


def _resolve(ref: str, kind: str) -> Path:
    if _looks_like_path(ref):
        p = Path(ref)
        if p.exists() and not p.is_file():
            from .files import regular_file

            regular_file(p, "YAML file")  # raises: a directory or a device
        if not p.is_file():
            raise NotFoundError(f"{ref}: file not found. Fix: check the path, or give a built-in {kind[:-1]} name "
                                f"({', '.join(builtin_names(kind))}).")
        return p
    names = builtin_names(kind)
    if ref not in names:
        raise NotFoundError(f"unknown {kind[:-1]} {ref!r}.{suggest(ref, names)} Built-in {kind}: {', '.join(names)}. "
                            f"Fix: use one of them or give a path to a YAML file.")
    return builtin_dir(kind) / f"{ref}.yaml"


@lru_cache(maxsize=64)
def _load_target(path: str, stamp: tuple) -> TargetProfile:
    return load_target_file(path)


def load_target(ref: str) -> TargetProfile:
    """A target by name or path; parsed once per file version (an edited file is read again)."""
    path = _resolve(ref, "targets").resolve()
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = ()
    return _load_target(str(path), stamp)


def load_model_spec(ref: str) -> ModelSpec:
    return load_model_spec_file(_resolve(ref, "models"))


def list_targets() -> list[TargetProfile]:
    return [load_target(n) for n in builtin_names("targets")]


def list_models() -> list[ModelSpec]:
    return [load_model_spec(n) for n in builtin_names("models")]


MODEL_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def is_model_file(ref: str) -> bool:
    p = Path(ref)
    return p.suffix.lower() in MODEL_FILE_SUFFIXES or p.is_dir()  # a directory: a SavedModel (or told why not)


def model_from_args(ref: str, data=None, vocab=None, hf_tokenizer=None, fit: bool = False,
                    trust_model_code: bool = False, custom_module=None, labels=None, pad_token=None,
                    unk_token=None) -> ModelSpec:
    """The ModelSpec that ``edgeopt build MODEL`` means: a built-in name or spec YAML as is, or, for a Keras model
    file, a spec made from it and the flags (``--data`` required)."""
    from .errors import InputError
    from .specs import DataSpec, ModelFileSpec, TokenizerSpec, TrainingSpec, parse_file

    if not is_model_file(ref):
        given = [f for f, v in (("--data", data), ("--vocab", vocab), ("--hf-tokenizer", hf_tokenizer),
                                ("--fit", fit), ("--labels", labels), ("--pad-token", pad_token),
                                ("--unk-token", unk_token)) if v]
        if given:
            raise InputError(f"{given[0]} applies when MODEL is a model file (.keras, .h5, a SavedModel directory); "
                             f"{ref} is a spec. Fix: set it in the spec (data:, tokenizer:, training.fit, model.labels).")
        spec = load_model_spec(ref)
        if trust_model_code or custom_module:
            if spec.model is None or spec.model.path is None:
                raise InputError(f"--trust-model-code/--custom-module apply to a model file; {ref} names "
                                 f"{spec.model_label}. Fix: drop the flag.")
            upd = {"trust_model_code": spec.model.trust_model_code or trust_model_code,
                   "custom_module": custom_module or spec.model.custom_module}
            spec = spec.model_copy(update={"model": spec.model.model_copy(update=upd)})
        return spec
    path = Path(ref)
    if not data:
        raise InputError(f"{ref}: a model file needs its data. Fix: add --data DATASET (banking77, sst2, smsspam) or "
                         f"--data FILE.yaml (a YAML with a 'data:' section, as in a ModelSpec).")
    if data.endswith((".yaml", ".yml")):
        from .specs import DataFile, data_relative_to

        ds = data_relative_to(parse_file(Path(data), DataFile).data, Path(data).resolve().parent)
    else:
        from .data.datasets import BUILTIN_DATASETS

        if data not in BUILTIN_DATASETS:
            raise NotFoundError(f"--data {data!r}: not a built-in dataset ({', '.join(BUILTIN_DATASETS)}) nor a "
                                f"YAML file.{suggest(data, BUILTIN_DATASETS)} Fix: give one of them.")
        ds = DataSpec(dataset=data)
    if vocab and hf_tokenizer:
        raise InputError("--vocab and --hf-tokenizer: give one (the tokenizer the model was trained with).")
    if pad_token is not None and not (vocab or hf_tokenizer):
        raise InputError("--pad-token applies with --vocab or --hf-tokenizer (edgeopt's own tokenizer pads with id 0). "
                         "Fix: add the vocabulary the model was trained with, or drop --pad-token.")
    if unk_token is not None and not vocab:
        raise InputError("--unk-token applies with --vocab (a tokenizers file names its own unknown token). Fix: add "
                         "--vocab FILE, or drop --unk-token.")
    for flag, v in (("--pad-token", pad_token), ("--unk-token", unk_token)):
        if v is not None and (not v.strip() or len(v) > 100):
            raise InputError(f"{flag} {v[:40]!r}: not a token. Fix: give the token as it appears in the vocabulary, "
                             f"e.g. [PAD].")
    tok = TokenizerSpec(**({"vocab_file": str(Path(vocab).resolve())} if vocab else {}),
                        **({"huggingface": str(Path(hf_tokenizer).resolve())} if hf_tokenizer else {}),
                        pad_token=pad_token, unk_token=unk_token)
    import re

    name = re.sub(r"[^A-Za-z0-9._-]", "-", path.resolve().name.rsplit(".", 1)[0] if path.is_file()
                  else path.resolve().name).lstrip("._-") or "model"
    return ModelSpec(name=name, description=f"model file {path}", data=ds, tokenizer=tok,
                     model=ModelFileSpec(path=str(path.resolve()), trust_model_code=trust_model_code,
                                         custom_module=custom_module,
                                         labels=str(Path(labels).resolve()) if labels else None),
                     training=TrainingSpec(fit=True if fit else None))
