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
def _load_target(path: str) -> TargetProfile:
    return load_target_file(path)


def load_target(ref: str) -> TargetProfile:
    return _load_target(str(_resolve(ref, "targets").resolve()))


def load_model_spec(ref: str) -> ModelSpec:
    return load_model_spec_file(_resolve(ref, "models"))


def list_targets() -> list[TargetProfile]:
    return [load_target(n) for n in builtin_names("targets")]


def list_models() -> list[ModelSpec]:
    return [load_model_spec(n) for n in builtin_names("models")]
