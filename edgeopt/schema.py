"""The base of every typed config edgeopt reads from a user (specs, targets, recipes, manifests, baselines), and
``parse_file``: a YAML file (duplicate keys refused, size capped) validated into one of them, every error one line
naming the file, the field and the fix.

Frozen, unknown keys forbidden, no NaN or infinity, and no YAML/JSON boolean where a number is expected:
pydantic's lax mode would read ``max_size_bytes: true`` as a 1-byte budget, which silently changes a build.
"""
from __future__ import annotations

import types
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from .errors import SpecError, suggest
from .files import read_text_capped
from .urls import scrub

MAX_SPEC_BYTES = 1 << 20  # a spec/target/recipe YAML larger than 1 MiB is not a hand-written config


def _wants_number(annotation) -> bool:
    """True when the annotation accepts int or float but not bool (Optional and Annotated are looked through)."""
    seen, stack = set(), [annotation]
    while stack:
        a = stack.pop()
        if a is bool:
            return False
        if a in (int, float):
            seen.add(a)
        origin = typing.get_origin(a)
        if origin in (typing.Union, types.UnionType, typing.Annotated):
            stack.extend(typing.get_args(a)[:1] if origin is typing.Annotated else typing.get_args(a))
    return bool(seen)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, v, info: ValidationInfo):
        if isinstance(v, bool) and _wants_number(cls.model_fields[info.field_name].annotation):
            raise ValueError(f"expected a number, got the boolean {v!r}")
        return v


# ------------------------------------------------------------------------------------------ loading
def _format_validation_error(path: str, model: type[BaseModel], err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = model
        for part in first["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(part, str) else None
            ann = getattr(field, "annotation", None) if field else None
            ann = getattr(ann, "__args__", (ann,))[0] if ann is not None and not isinstance(ann, type) else ann
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                parent = ann
            else:
                parent = None
                break
        allowed = sorted(k for k in (parent.model_fields if parent else {}) if k != "source")
        bad = str(first["loc"][-1])
        hint = suggest(bad, allowed) or ""
        return (f"{path}: unknown field '{loc}'.{hint} Allowed here: {', '.join(allowed)}. "
                f"Fix: rename or remove it.")
    if kind == "missing":
        return f"{path}: missing required field '{loc}'. Fix: add it."
    if kind == "edgeopt_located":  # the message names its own location (architecture.params.*)
        return f"{path}: {first['msg']}"
    msg = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    got_s = "" if isinstance(got, (dict, list)) else f" (got {scrub(repr(got))})"  # never a URL's password
    return f"{path}: field '{loc}': {msg}{got_s}. Fix: correct '{loc}' in that file."


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with a key given twice (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            k = self.construct_object(key_node, deep=True)
            if isinstance(k, (str, int, float, bool)) and k in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {k!r}", key_node.start_mark)
            seen.add(k) if isinstance(k, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> dict:
    text = read_text_capped(path, MAX_SPEC_BYTES, "YAML file")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None)
        what = f" ({problem})" if problem and "duplicate key" in problem else ""
        raise SpecError(f"{path}: not valid YAML{where}{what}. Fix: correct the syntax"
                        + (", giving each key once." if what else ".")) from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be a config file. Fix: give a spec, target or recipe "
                        f"YAML.") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level. Fix: see `edgeopt targets show`.")
    return data


def parse_file(path: Path, model: type[BaseModel]):
    path = Path(path)
    data = _read_yaml(path)
    try:
        extra = {"source": str(path)} if "source" in model.model_fields else {}
        return model.model_validate({**data, **extra})
    except ValidationError as e:
        raise SpecError(_format_validation_error(str(path), model, e)) from None
    except RecursionError:
        raise SpecError(f"{path}: nested too deeply to be a config file. Fix: give a spec, target or recipe "
                        f"YAML.") from None
