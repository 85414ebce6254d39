"""How people type: every build measures the deployed file on the test split in lower case, UPPER CASE, Title
Case, Capitalized and without punctuation, in edgeopt's runtime and in the real client; a case-sensitive vocabulary
fails max_robustness_drop, the case-folding one (the default) passes it, with the client's ids still edgeopt's."""
from __future__ import annotations

import json

import pytest
import yaml

from conftest import FAST_LATENCY, run_cli


def _spec(path, lowercase: bool):
    path.write_text(yaml.safe_dump({
        "name": path.stem, "description": "tiny intent model for the typing tests.",
        "data": {"dataset": "banking77", "limit": {"train": 3000, "dev": 300, "test": 600}},
        "tokenizer": {"kind": "regex", "seq_len": 24, "max_vocab": 4000, "lowercase": lowercase},
        "architecture": {"name": "text_cnn", "params": {"embed_dim": 32, "filters": 32, "kernel_sizes": [2, 3],
                                                        "dropout": 0.1}},
        "training": {"epochs": 4, "batch_size": 32, "patience": 2, "seed": 7, "learning_rate": 0.005}}))
    return path


@pytest.fixture(scope="module")
def typing_builds(tmp_path_factory):
    """The same tiny Banking77 CNN with a case-sensitive and with a case-folding regex vocabulary, built for a copy
    of pixel-7 whose budget is the robustness budget alone (MediaPipe's client runs on it), at 2 points (the
    reference targets allow 5)."""
    from edgeopt.registry import load_target

    d = tmp_path_factory.mktemp("typing")
    t = yaml.safe_load(open(load_target("pixel-7").source))
    t["name"] = "phone"
    t["budgets"] = {"max_robustness_drop": 0.02}
    (d / "phone.yaml").write_text(yaml.safe_dump(t))
    out = {}
    for name, fold in (("cased", False), ("folded", True)):
        r = run_cli(["build", str(_spec(d / f"{name}.yaml", fold)), "-t", str(d / "phone.yaml"), "--out",
                     str(d / name), "--json", "-q", "--no-count", *FAST_LATENCY])
        assert r.exit_code in (0, 3), r.output
        out[name] = (r, json.loads(r.stdout), d / name)
    return out


def _rows(man):
    return {t["transform"]: t for t in man["robustness"]["transforms"]}


@pytest.mark.client
def test_a_case_sensitive_vocabulary_fails_the_robustness_budget(typing_builds):
    r, man, d = typing_builds["cased"]
    rows = _rows(man)
    assert set(rows) == {"lower case", "UPPER CASE", "Title Case", "Capitalized", "no punctuation"}
    assert rows["UPPER CASE"]["drop"] > 0.2 and rows["UPPER CASE"]["client_drop"] > 0.2  # in both runtimes
    assert r.exit_code == 3 and "max_robustness_drop" in r.stderr
    (check,) = [c for c in man["budgets"]["checks"] if c["name"] == "max_robustness_drop"]
    assert not check["passed"] and check["value"] == man["robustness"]["worst"]["drop"]
    assert "## How people type it" in (d / "report.md").read_text()


@pytest.mark.client
def test_the_case_folding_vocabulary_holds_in_the_runtime_and_the_client(typing_builds):
    r, man, d = typing_builds["folded"]
    rows = _rows(man)
    for name in ("lower case", "UPPER CASE", "Title Case", "Capitalized"):
        assert abs(rows[name]["drop"]) <= 0.01 and abs(rows[name]["client_drop"]) <= 0.01, rows[name]
    assert man["tokenizer"]["lowercase"] is True and man["robustness"]["lowercase"] is True
    client = man["clients"][0]
    assert client["passed"] and client["agreement"] >= 0.999  # the client's ids are still edgeopt's
    (check,) = [c for c in man["budgets"]["checks"] if c["name"] == "max_robustness_drop"]
    assert check["passed"] and r.exit_code == 0, r.stderr
    cased = _rows(typing_builds["cased"][1])
    assert rows["UPPER CASE"]["drop"] < cased["UPPER CASE"]["drop"] - 0.2
