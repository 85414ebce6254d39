"""`edgeopt cache list|clean`: every download and environment edgeopt makes, under EDGEOPT_CACHE_DIR unless its own
variable says otherwise, with its size; clean removes only what edgeopt wrote."""
from __future__ import annotations

import json

from conftest import run_cli


def test_list_shows_every_entry_under_the_cache_dir_with_sizes(tmp_path, monkeypatch):
    for var in ("EDGEOPT_CLIENT_DIR", "EDGEOPT_EMULATOR_DIR", "EDGEOPT_GPU_DIR"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGEOPT_CACHE_DIR", str(cache))
    (cache / "counts").mkdir(parents=True)
    (cache / "counts" / "a.json").write_bytes(b"x" * 1500)
    env = cache / "clients" / "mediapipe-client"
    env.mkdir(parents=True)
    (env / "ready.json").write_text("{}")
    (env / "big").write_bytes(b"y" * 2_000_000)
    r = run_cli(["cache", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert set(rows) == {"artifacts", "counts", "datasets", "teachers", "data", "clients/mediapipe-client",
                         "clients/mediapipe-writer", "emulator", "gpu"}
    for x in rows.values():  # everything under EDGEOPT_CACHE_DIR: the MediaPipe environments too
        assert x["path"].startswith(str(cache)), x
    assert rows["counts"]["size_bytes"] == 1500 and rows["clients/mediapipe-client"]["size_bytes"] == 2_000_002
    text = run_cli(["cache", "list"]).stdout
    assert "2.00 MB" in text and "1.50 KB" in text and "total" in text

    gone = run_cli(["cache", "clean", "counts", "clients"])
    assert gone.exit_code == 0, gone.output
    assert not (cache / "counts").exists() and not env.exists()
    assert "removed counts (1.50 KB)" in gone.stdout


def test_clean_never_removes_what_edgeopt_did_not_write(tmp_path, monkeypatch):
    mine = tmp_path / "my-gpu-dir"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    monkeypatch.setenv("EDGEOPT_GPU_DIR", str(mine))
    r = run_cli(["cache", "clean", "gpu"])
    assert r.exit_code == 2 and "no ready.json" in r.output and len(r.output.strip().splitlines()) == 1
    assert (mine / "notes.txt").read_text() == "mine"
    assert run_cli(["cache", "clean", "bogus"]).exit_code == 2
    assert run_cli(["cache", "clean"]).exit_code == 2  # nothing named, no --all
