"""``edgeopt gpu setup``: download Mesa's lavapipe from bookworm-backports and the Vulkan loader with apt-get into a
private apt directory (no root, nothing installed system-wide), unpack them with ``dpkg -x`` and keep lavapipe and
the loader under ``env.root()`` (see env.py for the layout); Dawn's adapter on it is probed (``run.list_adapters``)
before the setup is marked ready. The top floor of the GPU package: it imports ``env`` and ``run``."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

from ..console import log
from ..errors import GpuError
from .env import BACKPORTS, DROP, KEYRING, LAYOUT_VERSION, LIB, PACKAGES, SETUP_CMD, SUITE, root, status
from .run import list_adapters


def _run(cmd: list[str], what: str, cwd: Optional[Path] = None) -> str:
    from ..emulator.env import run_tool

    return run_tool(cmd, what, cwd, error=GpuError, prefix="gpu setup",
                    missing_fix="run it on a Debian/Ubuntu host with apt-get and dpkg, or install a Vulkan driver for "
                                "the GPU.", failed_fix="check that the Debian archive (EDGEOPT_DEBIAN_MIRROR) is reachable")


def _installed() -> set[str]:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n"], capture_output=True,
                             text=True).stdout
    except FileNotFoundError:
        return set()
    return {ln.split()[0].split(":")[0] for ln in out.splitlines() if ln.endswith(" installed")}


def setup(quiet: bool = False, force: bool = False) -> dict:
    """Download and unpack Mesa's lavapipe and the Vulkan loader into the cache; a no-op when already there.
    Processes doing it at once take turns on a lock beside it, and the later ones find it ready."""
    import fcntl

    st = status()
    if st["ready"] and not force:
        log(quiet, f"[edgeopt] gpu: the software Vulkan driver is already set up at {st['root']}")
        return {**st, "changed": False}
    for tool in ("apt-get", "apt-cache", "dpkg"):  # before anything is made
        if shutil.which(tool) is None:
            raise GpuError(f"gpu setup: {tool} is not on PATH; the software Vulkan driver comes from Debian's archive. "
                           f"Fix: run {SETUP_CMD} on a Debian/Ubuntu host, or install a Vulkan driver for the GPU.")
    r = root()
    r.mkdir(parents=True, exist_ok=True)
    with open(r / ".setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _setup(quiet, force)


def _setup(quiet: bool, force: bool) -> dict:
    st = status()  # again, under the lock: another process may have set it up meanwhile
    if st["ready"] and not force:
        log(quiet, f"[edgeopt] gpu: the software Vulkan driver is already set up at {st['root']}")
        return {**st, "changed": False}
    from ..emulator.env import debian_mirror

    t0 = time.perf_counter()
    r = root()
    r.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=r.parent, prefix=".gpu."))
    try:
        apt = work / "apt"
        (apt / "lists" / "partial").mkdir(parents=True)
        (apt / "cache" / "archives" / "partial").mkdir(parents=True)
        mirror = debian_mirror()
        signed = f"[signed-by={KEYRING}] " if os.path.isfile(KEYRING) else ""
        (apt / "sources.list").write_text(f"deb {signed}{mirror} {SUITE} main\ndeb {signed}{mirror} {BACKPORTS} main\n")
        o = ["-o", f"Dir::Etc::SourceList={apt / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/dev/null",
             "-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache={apt / 'cache'}",
             "-o", "Debug::NoLocking=1"]
        log(quiet, f"[edgeopt] gpu: apt index of {mirror} {SUITE} and {BACKPORTS}")
        _run(["apt-get", *o, "update"], f"apt-get update from {mirror}")
        if not any((apt / "lists").glob(f"*{BACKPORTS}*Packages*")):  # apt-get update exits 0 when it fetched nothing
            raise GpuError(f"gpu setup: no package index of {BACKPORTS} could be fetched from {mirror}. Fix: check "
                           f"the network, or point EDGEOPT_DEBIAN_MIRROR at a reachable Debian mirror")
        # the packages and what they need that this machine does not have (a bare machine lacks the loader and
        # may lack LLVM 15, which lavapipe links)
        deps = _run(["apt-cache", *o, "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                     "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", "mesa-vulkan-drivers",
                     "libvulkan1"], "apt-cache depends")
        have = _installed()
        extra = sorted({ln.strip() for ln in deps.splitlines() if re.match(r"^[a-z0-9]", ln)}
                       - have - {"mesa-vulkan-drivers", "libvulkan1", "libc6", "libgcc-s1", "libstdc++6"})
        extra = [p for p in extra if re.match(r"^(lib|zlib)", p) and not p.endswith(("-dev", "-bin"))]  # libraries
        debs = work / "debs"
        debs.mkdir()
        log(quiet, f"[edgeopt] gpu: downloading {' '.join(PACKAGES)}"
                    + (f" and {len(extra)} libraries this machine lacks" if extra else ""))
        _run(["apt-get", *o, "download", *PACKAGES, *extra], "apt-get download", cwd=debs)
        unpacked = work / "unpacked"
        versions = {}
        for deb in sorted(debs.glob("*.deb")):
            _run(["dpkg", "-x", str(deb), str(unpacked)], f"dpkg -x {deb.name}")
            name, ver = deb.name.split("_")[:2]
            versions[name] = ver.replace("%3a", ":")
        lib = work / "lib"
        lib.mkdir()
        for d in (unpacked / LIB, unpacked / LIB.removeprefix("usr/")):  # bookworm: some libraries still in /lib
            for f in sorted(d.glob("*")) if d.is_dir() else []:
                if not f.is_dir() and not DROP.match(f.name) and not (lib / f.name).exists():
                    os.rename(f, lib / f.name)
        if not (lib / "libvulkan_lvp.so").is_file():
            raise GpuError(f"gpu setup: mesa-vulkan-drivers from {BACKPORTS} has no libvulkan_lvp.so. Fix: check "
                           f"EDGEOPT_DEBIAN_MIRROR points at a Debian mirror with {BACKPORTS}.")
        missing = _missing_libs(lib)
        if missing:
            raise GpuError(f"gpu setup: lavapipe needs {', '.join(missing)}, which neither this machine nor the "
                           f"downloaded packages have. Fix: apt-get install the Debian packages that provide them.")
        icd = json.loads((unpacked / "usr/share/vulkan/icd.d/lvp_icd.json").read_text())
        shutil.rmtree(apt, ignore_errors=True)
        shutil.rmtree(debs, ignore_errors=True)
        shutil.rmtree(unpacked, ignore_errors=True)
        (r / "ready.json").unlink(missing_ok=True)  # from here on the old setup is replaced
        if r.exists():
            for name in ("lib", "lvp_icd.json", "probe.tflite"):
                p = r / name
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        r.mkdir(parents=True, exist_ok=True)
        os.rename(lib, r / "lib")
        icd["ICD"]["library_path"] = str(r / "lib" / "libvulkan_lvp.so")
        (r / "lvp_icd.json").write_text(json.dumps(icd, indent=1))
        size = sum(f.stat().st_size for f in (r / "lib").iterdir() if f.is_file() and not f.is_symlink())
        info = {"layout": LAYOUT_VERSION, "mirror": mirror, "packages": versions, "size_bytes": size,
                "setup_seconds": None}
        probe = list_adapters(software_only=True)
        sw = probe["software"]
        if not sw.get("adapter"):
            raise GpuError(f"gpu setup: lavapipe was unpacked but Dawn found no adapter on it ({sw.get('reason')}). "
                           f"Fix: {SETUP_CMD} --force, or report the log with EDGEOPT_DEBUG=1")
        info["adapter"] = sw["adapter"]
        info["setup_seconds"] = round(time.perf_counter() - t0, 1)
        (r / "ready.json").write_text(json.dumps(info, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(quiet, f"[edgeopt] gpu: software Vulkan driver ready at {r} ({info['setup_seconds']:.0f} s, "
                f"{info['size_bytes'] / 1e6:.1f} MB): {info['adapter']['name']}")
    return {**status(), "changed": True}


def _missing_libs(lib: Path) -> list[str]:
    """Shared libraries lavapipe links that neither ``lib`` nor the system has (``ldd``'s "not found")."""
    if shutil.which("ldd") is None:
        return []
    env = {**os.environ, "LD_LIBRARY_PATH": str(lib)}
    out = subprocess.run(["ldd", str(lib / "libvulkan_lvp.so")], capture_output=True, text=True, env=env).stdout
    return sorted({ln.split()[0] for ln in out.splitlines() if "not found" in ln})
