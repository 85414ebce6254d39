"""The instruction counter's qemu plugin (``count.c``): whether it is built for an emulator root, and building it
with the system's C compiler. The lowest floor of the emulator package: ``env`` reports its status and builds it
during setup, ``counter`` loads it into qemu."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from ..console import log
from ..errors import EmulatorError

SOURCE = Path(__file__).with_name("count.c")
QEMU_USER_INSTALL = "apt-get install -y qemu-user"


def plugin_path(r: Path) -> Path:
    return r / "plugins" / "libcount.so"


def _source_sha() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def qemu_dynamic() -> Optional[str]:
    return shutil.which("qemu-aarch64")


def status(r: Path) -> dict:
    problems = []
    if qemu_dynamic() is None:
        problems.append(f"the dynamic qemu-aarch64 is missing (Debian's qemu-user; the static one rejects -plugin). "
                        f"Fix: {QEMU_USER_INSTALL}")
    try:
        info = json.loads((r / "plugins" / "ready.json").read_text())
    except (OSError, ValueError):
        info = None
    if info is None or info.get("source_sha256") != _source_sha() or not plugin_path(r).is_file():
        problems.append("the instruction counter is not built. Fix: edgeopt emulator setup")
    return {"ready": not problems, "problems": problems, "plugin": str(plugin_path(r)), "qemu": qemu_dynamic()}


def setup(r: Path, quiet: bool = True) -> dict:
    """Compile the plugin into ``r/plugins`` (a no-op when the built one is from the same source)."""
    if qemu_dynamic() is None:
        raise EmulatorError(f"emulator setup: the instruction counter needs Debian's qemu-user (the dynamic "
                            f"qemu-aarch64; qemu-user-static rejects -plugin). Fix: {QEMU_USER_INSTALL}")
    st = status(r)
    if st["ready"]:
        return {**st, "changed": False}
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise EmulatorError("emulator setup: the instruction counter is compiled with the system's C compiler, and "
                            "none is installed. Fix: apt-get install -y gcc")
    d = r / "plugins"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".libcount.{os.getpid()}.so"
    p = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-Wall", "-o", str(tmp), str(SOURCE)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise EmulatorError(f"emulator setup: compiling {SOURCE.name} failed: {' '.join(p.stderr.split())[-300:]}. "
                            f"Fix: apt-get install -y gcc libc6-dev")
    os.replace(tmp, plugin_path(r))
    (d / "ready.json").write_text(json.dumps({"source_sha256": _source_sha(), "compiler": cc}))
    log(quiet, f"[edgeopt] emulator: instruction counter built ({plugin_path(r)})")
    return {**status(r), "changed": True}
