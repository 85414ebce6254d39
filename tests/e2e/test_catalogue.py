"""The catalogue of bad inputs: every field of a target profile and a model spec given each kind of wrong value
(text for a number, a boolean, a list, a mapping, NaN, infinity, a number past its bound, a name too long, an
unknown word), plus an unknown key at every level. Each must end in one line naming the file and the field, exit
2, with nothing written: never a traceback, a hang or a silent acceptance.

The cases are generated from the built-in reference files as `targets show` / `models show` print them (every
field present), so a new field is in the catalogue the day it is added.
"""
from __future__ import annotations

import copy
import functools
import math

import pytest
import yaml

from conftest import run_cli

pytestmark = pytest.mark.slow

NUMBER_BAD = {"text": "12", "boolean": True, "list": [1], "mapping": {"a": 1}, "NaN": math.nan,
              "infinity": math.inf, "huge": 10 ** 18, "very negative": -10 ** 18}
TEXT_BAD = {"number": 12345, "list": ["a"], "mapping": {"a": "b"}, "boolean": False}
LONG = "x" * 5000
# sub-sections that are null in the reference files, filled so their own fields are tried too
FILL = {("device", "cost_model"): {"ipc": 1.5, "clock_ghz": 2.0, "source": "a datasheet"},
        ("data", "limit"): {"train": 100, "dev": 50, "test": 50}}
SKIP_TEXT = {("description",), ("device", "cpu"), ("device", "cost_model", "source"), ("notes",)}


@functools.lru_cache(maxsize=None)
def _shown(kind: str, name: str) -> str:
    return run_cli([kind, "show", name]).stdout


def _reference(kind: str, name: str) -> dict:
    d = yaml.safe_load(_shown(kind, name))
    for path, value in FILL.items():
        node = d
        for k in path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node and node[path[-1]] is None and (
                path[0] != "device" or d["device"].get("qemu_cpu")):  # a cost model needs an emulated core
            node[path[-1]] = copy.deepcopy(value)
    return d


def _leaves(d: dict, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, prefix + (k,))
            yield prefix + (k, "not_a_field"), "unknown key"
        else:
            yield prefix + (k,), v
    if not prefix:
        yield ("not_a_field",), "unknown key"


def _cases(kind: str, name: str) -> list:
    base = _reference(kind, name)
    out = []
    for path, value in _leaves(base):
        dotted = ".".join(path)
        if value == "unknown key":
            out.append(pytest.param(kind, name, path, 1, "unknown field", id=f"{kind}:{dotted}"))
            continue
        if isinstance(value, bool):
            out += [pytest.param(kind, name, path, v, f"'{dotted}'", id=f"{kind}:{dotted}={label}")
                    for label, v in (("text", "yes"), ("number", 2), ("list", [True]))]
        elif isinstance(value, (int, float)):
            out += [pytest.param(kind, name, path, v, f"'{dotted}'", id=f"{kind}:{dotted}={label}")
                    for label, v in NUMBER_BAD.items()]
        elif isinstance(value, str) and path not in SKIP_TEXT:
            bad = dict(TEXT_BAD, **{"5,000 characters": LONG})
            out += [pytest.param(kind, name, path, v, f"'{dotted}'", id=f"{kind}:{dotted}={label}")
                    for label, v in bad.items()]
        elif isinstance(value, list) and value and all(isinstance(x, int) for x in value):
            out += [pytest.param(kind, name, path, v, f"'{dotted}", id=f"{kind}:{dotted}={label}")
                    for label, v in (("text item", ["3"]), ("boolean item", [True]), ("huge item", [10 ** 12]),
                                     ("negative item", [-3]), ("not a list", "3"))]
        elif isinstance(value, list):
            out += [pytest.param(kind, name, path, v, f"'{dotted}", id=f"{kind}:{dotted}={label}")
                    for label, v in (("number", 7), ("mapping", {"a": 1}))]
    return out


CASES = (_cases("targets", "pixel-7") + _cases("targets", "x86-avx2-server") + _cases("models", "banking77-cnn")
         + _cases("models", "wnut17-bilstm") + _cases("models", "banking77-transformer"))


def test_the_catalogue_is_large():
    assert len(CASES) >= 600, len(CASES)


@pytest.mark.parametrize("kind,name,path,value,want", CASES)
def test_every_bad_value_is_one_line_naming_the_field(tmp_path, kind, name, path, value, want):
    d = _reference(kind, name)
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(d, allow_unicode=True))
    before = sorted(p.name for p in tmp_path.iterdir())
    cmd = ["targets", "check", str(f)] if kind == "targets" else ["models", "show", str(f)]
    r = run_cli(cmd)
    assert r.exit_code == 2, (cmd, r.output[-600:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"edgeopt: error: {f}"), r.stderr
    parent = want.rsplit(".", 1)[0] + "'" if "." in want else want  # a section's own check names the section
    assert (want in lines[0] or parent in lines[0]) and "Traceback" not in r.output and len(lines[0]) < 1500, lines[0][:600]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
