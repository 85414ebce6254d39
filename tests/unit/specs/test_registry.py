import subprocess
import sys
from pathlib import Path

import pytest

from edgeopt.errors import NotFoundError
from edgeopt.registry import load_model_spec, load_target

REPO = Path(__file__).resolve().parents[3]


def test_by_name_and_by_path(tmp_path):
    t = load_target("pixel-7")
    assert load_target(t.source).name == "pixel-7"
    assert load_model_spec("sst2-cnn").data.dataset == "sst2"
    with pytest.raises(NotFoundError, match="file not found"):
        load_target(str(tmp_path / "none.yaml"))


def test_builtins_found_after_non_editable_install(tmp_path):
    """`pip install .` (not -e) must ship models/ and targets/ inside the package, and the files edgeopt reads or
    compiles at run time (the client locks, the instruction counter's C source)."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(target), str(REPO)], check=True, capture_output=True)
    assert (target / "edgeopt" / "builtin" / "targets" / "pixel-7.yaml").is_file()
    for f in ("clients/mediapipe-client.lock", "clients/mediapipe-writer.lock", "clients/_writer.py",
              "clients/_client.py", "emulator/count.c"):
        assert (target / "edgeopt" / f).is_file(), f
    code = ("import edgeopt, sys; from edgeopt.registry import builtin_names, load_target; "
            "assert edgeopt.__file__.startswith(sys.argv[1]), edgeopt.__file__; "
            "assert 'banking77-cnn' in builtin_names('models'); print(load_target('pixel-7').quantization)")
    r = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "int8"
