"""LiteRT's GPU accelerator on a software Vulkan device (Mesa lavapipe from bookworm-backports): setup, adapter
listing, the partition parser pinned to real LiteRT logs, and honest reports without an adapter."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

LOGS = Path(__file__).parent / "data" / "gpu"


def test_partition_parser_is_pinned_to_real_logs():
    """The logs were captured from this stack (ai-edge-litert 2.3.0, Mesa 25.0.7 lavapipe): the reference CNN's
    int8 file (its embedding lookup refused), a file whose lookup takes 1-D ids (every op on the GPU) and a run
    without any Vulkan adapter."""
    from edgeopt.gpu import partition

    p = partition.parse((LOGS / "cnn_int8_partial.log").read_text(), total_ops=14)
    assert (p["gpu_ops"], p["cpu_ops"], p["fully_delegated"]) == (13, 1, False)
    assert p["refused"] == [{"op": "GATHER", "reason": "Only support 1D indices"}]
    assert p["adapter"] == {"name": "llvmpipe (LLVM 15.0.6, 256 bits)", "arch": "software", "vendor": "mesa",
                            "backend": "Vulkan", "type": "CPU / Software", "software": True}
    full = partition.parse((LOGS / "flat_int8_full.log").read_text(), total_ops=8)
    assert (full["gpu_ops"], full["cpu_ops"], full["refused"], full["fully_delegated"]) == (8, 0, [], True)
    none = (LOGS / "no_adapter.log").read_text()
    p = partition.parse(none, total_ops=14)
    assert p["adapter"] is None and not p["fully_delegated"] and not p["gpu_kernel"]
    assert "No adapters found" in partition.no_adapter_reason(none)
    # robust to what it does not know: two refused types, repeated blocks, a split over two partitions
    log = ("ERROR: Following operations are not supported by GPU delegate:\nGATHER: Only support 1D indices\n"
           "UNIDIRECTIONAL_SEQUENCE_LSTM: Operation is not supported.\n10 operations will run on the GPU, and the "
           "remaining 5 operations will run on the CPU.\nERROR: Following operations are not supported by GPU "
           "delegate:\nGATHER: Only support 1D indices\nsomething else\n")
    p = partition.parse(log, total_ops=15)
    assert [r["op"] for r in p["refused"]] == ["GATHER", "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert (p["gpu_ops"], p["cpu_ops"], p["fully_delegated"]) == (10, 5, False)
    assert partition.parse("", total_ops=3) == {"adapter": None, "gpu_ops": 0, "cpu_ops": 3, "total_ops": 3,
                                                "refused": [], "gpu_kernel": False, "fully_delegated": False}


@pytest.fixture
def no_system_driver(tmp_path, monkeypatch):
    """A machine without a hardware Vulkan driver (CI's), whatever this one has."""
    monkeypatch.setattr("edgeopt.gpu.env.SYSTEM_ICD_DIRS", (str(tmp_path / "no-icd.d"),))


def test_gpu_setup_is_idempotent_and_lists_a_software_adapter(gpu_dir, no_system_driver):
    info = json.loads((gpu_dir / "ready.json").read_text())
    assert info["packages"]["mesa-vulkan-drivers"].startswith("25.") and info["packages"]["libvulkan1"]
    assert (gpu_dir / "lib" / "libvulkan_lvp.so").is_file() and info["size_bytes"] < 40_000_000
    before = (gpu_dir / "ready.json").stat().st_mtime_ns
    r = run_cli(["gpu", "setup", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["changed"] is False
    assert (gpu_dir / "ready.json").stat().st_mtime_ns == before
    ls = json.loads(run_cli(["gpu", "list", "--json"]).stdout)
    sel = ls["selected"]
    assert sel["software"] is True and "llvmpipe" in sel["name"] and sel["backend"] == "Vulkan", ls
    text = run_cli(["gpu", "list"]).stdout
    assert "would use llvmpipe" in text and "software" in text and "no latency" in text


def test_no_adapter_is_a_clear_result_not_a_crash(tmp_path, monkeypatch, no_system_driver):
    import numpy as np

    from edgeopt.gpu import run

    monkeypatch.setenv("EDGEOPT_GPU_DIR", str(tmp_path / "nothing"))
    r = run_cli(["gpu", "list"])
    assert r.exit_code == 0 and "no GPU adapter" in r.stdout and "edgeopt gpu setup" in r.stdout, r.output
    res = run.check(LOGS / "cnn_int8_partial.log", np.ones((1, 32), np.int32))  # never even opened
    assert res == {"available": False, "reason": res["reason"], "setup": "edgeopt gpu setup", "latency_ms": None}
    assert "no GPU adapter" in res["reason"]
