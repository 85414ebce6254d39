"""The client environments: virtual environments of their own for the real MediaPipe Tasks packages.

Two, because no single MediaPipe release both writes metadata and shares nothing with edgeopt's pins:

- ``mediapipe-client``: mediapipe 1.2.2, the release apps use today. Its ``TextClassifier`` is the check. Its
  metadata writer does not import (``mediapipe.tasks.cc`` is missing from the wheel).
- ``mediapipe-writer``: mediapipe 0.10.21, whose metadata writer works. It needs numpy < 2 and protobuf < 5,
  which edgeopt's TensorFlow cannot share (numpy 2.4.6, protobuf 7.36.2).

Each is ``python -m venv`` plus ``pip install --no-deps --require-hashes`` of an exact lock file beside this
module (mediapipe's declared dependencies include jax and the full OpenCV, which the text tasks never import; the
lock lists what they do import, 390-460 MB a venv instead of 990 MB). Layout under ``$EDGEOPT_CLIENT_DIR``, by
default ``$EDGEOPT_CACHE_DIR/clients`` (``~/.cache/edgeopt/clients``)::

    mediapipe-client/      the venv; ready.json inside records the lock's SHA-256 (setup is a no-op when it matches)
    mediapipe-writer/

A venv is built in a temporary sibling directory and renamed into place, so an interrupted setup leaves nothing
that looks ready. Only directories edgeopt made (their ready.json, or its temporary prefix) are ever replaced.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..errors import ClientError
from ..files import tree_size
from ..console import log, working

HERE = Path(__file__).resolve().parent
ENVS = {
    "mediapipe-client": {"lock": "mediapipe-client.lock", "package": "mediapipe==1.2.2",
                         "smoke": "from mediapipe.tasks.python.text import text_classifier",
                         "role": "runs the artifact as an app does (TextClassifier)"},
    "mediapipe-writer": {"lock": "mediapipe-writer.lock", "package": "mediapipe==0.10.21",
                         "smoke": "from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer",
                         "role": "writes the TFLite model metadata (labels, tokenizer, vocabulary)"},
}
LAYOUT_VERSION = 1


def root() -> Path:
    base = os.environ.get("EDGEOPT_CLIENT_DIR")
    if base:
        return Path(base).expanduser()
    from ..data.datasets import cache_dir

    return cache_dir() / "clients"


def _expected(name: str) -> dict:
    lock = HERE / ENVS[name]["lock"]
    return {"layout_version": LAYOUT_VERSION, "package": ENVS[name]["package"], "python": sys.version.split()[0],
            "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest()}


def python(name: str) -> Path:
    return root() / name / "bin" / "python"


def status(name: str) -> dict:
    d = root() / name
    info = None
    try:
        info = json.loads((d / "ready.json").read_text())
    except (OSError, ValueError):
        pass
    want = _expected(name)
    problems = []
    if info is None:
        problems.append("not set up")
    elif any(info.get(k) != v for k, v in want.items()):
        problems.append(f"set up from another lock ({info.get('package')}, lock {str(info.get('lock_sha256'))[:12]})")
    elif not python(name).is_file():
        problems.append(f"{python(name)} is missing")
    return {"name": name, "path": str(d), "package": ENVS[name]["package"], "role": ENVS[name]["role"],
            "ready": not problems, "problems": problems,
            "size_bytes": info.get("size_bytes") if info else None,
            "setup_seconds": info.get("setup_seconds") if info else None}


def _run(cmd: list, what: str) -> None:
    from ..proc import run_group

    try:
        p = run_group(cmd)  # interrupted: venv's ensurepip and pip's children end with edgeopt
    except FileNotFoundError:
        raise ClientError(f"client setup: {cmd[0]} not found ({what}). Fix: install python3-venv "
                          f"(apt-get install python3-venv).") from None
    if p.returncode != 0:
        tail = " ".join((p.stderr or p.stdout).split())[-300:]
        hint = ("Fix: install Debian's python3-venv package." if "ensurepip" in tail else
                "Fix: check that PyPI is reachable (pip's index settings) and rerun edgeopt client setup.")
        raise ClientError(f"client setup: {what} failed (exit {p.returncode}): {tail}. {hint}")


def setup_one(name: str, quiet: bool = False, force: bool = False) -> dict:
    """Set one environment up; processes doing it at once take turns (a lock in EDGEOPT_CLIENT_DIR), and the
    second finds it ready."""
    import fcntl

    st = status(name)
    if st["ready"] and not force:
        log(quiet, f"[edgeopt] client {name}: already set up at {st['path']}")
        return {**st, "changed": False}
    root().mkdir(parents=True, exist_ok=True)
    with open(root() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        st = status(name)
        if st["ready"] and not force:
            return {**st, "changed": False}
        return _build_env(name, quiet)


def _build_env(name: str, quiet: bool) -> dict:
    t0 = time.perf_counter()
    d = root() / name
    d.parent.mkdir(parents=True, exist_ok=True)
    _refuse_foreign(name)
    work = Path(tempfile.mkdtemp(dir=d.parent, prefix=f".{name}.tmp-"))
    try:
        log(quiet, f"[edgeopt] client {name}: creating a venv with {ENVS[name]['package']} (exact lock, hashes)")
        venv = work / name
        _run([sys.executable, "-m", "venv", str(venv)], "python -m venv")
        # the venv's paths are absolute: it is built where it will live, under a temporary name, then renamed
        with working(f"client {name}: pip install of {ENVS[name]['lock']} (a few minutes on first use)", quiet):
            _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                  "--no-deps", "--require-hashes", "--only-binary=:all:", "-r", str(HERE / ENVS[name]["lock"])],
                 f"pip install of {ENVS[name]['lock']}")
        if d.exists():
            shutil.rmtree(d)
        os.rename(venv, d)
        # venv scripts name their interpreter by absolute path: fix the temporary one
        for f in (d / "bin").iterdir():
            if f.is_file() and not f.is_symlink():
                try:
                    text = f.read_text()
                except (UnicodeDecodeError, OSError):
                    continue
                if str(venv) in text:
                    f.write_text(text.replace(str(venv), str(d)))
        (d / "pyvenv.cfg").write_text((d / "pyvenv.cfg").read_text().replace(str(venv), str(d)))
        from ..proc import run_group

        smoke = run_group([str(python(name)), "-I", "-c", ENVS[name]["smoke"]])
        if smoke.returncode != 0:
            raise ClientError(f"client setup: {name} cannot import MediaPipe: "
                              f"{' '.join(smoke.stderr.split())[-300:]}. Fix: rerun edgeopt client setup --force.")
        info = {**_expected(name), "setup_seconds": round(time.perf_counter() - t0, 1), "size_bytes": tree_size(d)}
        (d / "ready.json").write_text(json.dumps(info, indent=1))
    except BaseException:
        if d.exists() and not (d / "ready.json").is_file():
            shutil.rmtree(d, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(quiet, f"[edgeopt] client {name}: ready at {d} ({time.perf_counter() - t0:.0f} s)")
    return {**status(name), "changed": True}


def _refuse_foreign(name: str) -> None:
    d = root() / name
    if d.exists() and not (d / "ready.json").is_file() and (not d.is_dir() or any(d.iterdir())):
        raise ClientError(f"{d}: exists and is not an edgeopt client environment; edgeopt replaces only its own. "
                          f"Fix: remove it or point EDGEOPT_CLIENT_DIR elsewhere.")


def setup(quiet: bool = False, force: bool = False) -> list[dict]:
    for n in ENVS:  # refuse before building anything
        _refuse_foreign(n)
    return [setup_one(n, quiet, force) for n in ENVS]


def ensure(name: str, quiet: bool = False) -> Path:
    """The env's python, setting the env up first when it is not (idempotent, like ``edgeopt client setup``)."""
    if not status(name)["ready"]:
        setup_one(name, quiet)
    return python(name)
