"""The base of every typed config edgeopt reads from a user (specs, targets, recipes, manifests, baselines), and
``parse_file``: a YAML file (duplicate keys refused, size capped) validated into one of them, every error one line
naming the file, the field and the fix.

Frozen, unknown keys forbidden, no NaN or infinity, and no YAML/JSON boolean or quoted text where a number is
expected: pydantic's lax mode would read ``max_size_bytes: true`` as a 1-byte budget and ``"5e6"`` as a number.
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


def _leaves(annotation) -> list:
    """The types an annotation accepts (Optional, Union and Annotated looked through; Literal kept whole)."""
    out, stack = [], [annotation]
    while stack:
        a = stack.pop()
        origin = typing.get_origin(a)
        if origin in (typing.Union, types.UnionType, typing.Annotated):
            stack.extend(typing.get_args(a)[:1] if origin is typing.Annotated else typing.get_args(a))
        else:
            out.append(a)
    return out


def _wants_number(annotation) -> bool:
    """True when the annotation accepts int or float but not bool."""
    leaves = _leaves(annotation)
    return bool(bool not in leaves and {int, float} & set(leaves))


def _wants_bool(annotation) -> bool:
    leaves = _leaves(annotation)
    return bool in leaves and not {int, float} & set(leaves)


def _takes_text(annotation) -> bool:
    return any(a is str or typing.get_origin(a) is typing.Literal or a is typing.Any for a in _leaves(annotation))


def _number_only(annotation) -> bool:
    """A number and nothing a text could be (no str, Literal or Any among its types)."""
    return _wants_number(annotation) and not _takes_text(annotation)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_coerced_scalars(cls, v, info: ValidationInfo):
        """What pydantic's lax mode would convert is refused: a boolean or text for a number (a list item too),
        text or a number for a boolean."""
        ann = cls.model_fields[info.field_name].annotation
        if isinstance(v, bool) and _wants_number(ann):
            raise ValueError(f"expected a number, got the boolean {v!r}")
        if isinstance(v, str) and _number_only(ann):
            raise ValueError("expected a number, got text (write it without quotes)")
        if isinstance(v, (list, tuple)):  # a list of numbers: no item given as text or a boolean
            items = [typing.get_args(a) for a in _leaves(ann) if typing.get_origin(a) in (list, tuple)]
            if any(args and _number_only(args[0]) for args in items) and any(isinstance(x, (str, bool)) for x in v):
                raise ValueError("expected a list of numbers, got an item in quotes or a boolean")
        if isinstance(v, (str, int, float)) and not isinstance(v, bool) and _wants_bool(ann) and not _takes_text(ann):
            raise ValueError(f"expected true or false, got {type(v).__name__} {v!r}")
        return v


# ------------------------------------------------------------------------------------------ loading
def _shorten(text: str) -> str:
    """A message quoting a very long value: each run of more than 80 characters without a space cut to 60."""
    import re

    return re.sub(r"\S{81,}", lambda m: f"{m.group(0)[:60]}...", text)


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
    msg = _shorten(first["msg"].removeprefix("Value error, "))
    got = first.get("input")
    shown = scrub(repr(got))  # never a URL's password
    shown = shown if len(shown) <= 80 else f"{shown[:60]}... ({len(got) if isinstance(got, str) else len(shown):,} characters)"
    got_s = "" if isinstance(got, (dict, list)) else f" (got {shown})"
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
