"""The emulated arm64 device environment: qemu-user, a Debian arm64 Python 3.11 sysroot, the aarch64 wheels of
the runtimes, and one ``/proc/cpuinfo`` per emulated CPU model.

Layout under ``$EDGEOPT_EMULATOR_DIR/arm64``, by default ``~/.cache/edgeopt/emulator/arm64``::

    sysroot/            Debian bookworm arm64 packages unpacked with dpkg -x (python3.11 and its libraries)
    site/               aarch64 wheels (pip install --target --platform ... --no-deps, exact pins)
    cpus/<model>/       a per-CPU-model root for qemu's -L: symlinks to sysroot/*, plus its own proc/cpuinfo
    ready.json          what was set up, with which pins; setup is a no-op when it matches

No root, chroot or binfmt is needed. qemu-user reads /proc/cpuinfo from the -L root: without one XNNPACK's
cpuinfo fails to parse and XNNPACK silently turns off; the host's x86 text crashes it; a CPU part that does not
match ``-cpu`` makes it choose kernels the emulated CPU lacks (SIGILL). Hence one root per CPU model, and
``check_cpuinfo`` before every run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np

from ..console import log, progress, working
from ..errors import EmulatorError, InputError
from . import plugin
from .cpus import CPU_MODELS, CpuModel  # noqa: F401 (CpuModel: re-exported)

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # edgeopt itself, as the guest and a board import it

ARCHES = ("arm64",)
SUITE = "bookworm"
APT_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "python3.11")
APT_EXTRA = ("libstdc++6",)
APT_SKIP = re.compile(r"^(debconf|perl.*|libperl.*|dpkg|install-info|base-files|debianutils|libc-bin|tzdata|"
                      r"media-types|mime-support|readline-common|sensible-utils)$")
# the guest's Python packages: exact pins (the same versions as requirements.lock; a test keeps them equal), each
# with the SHA-256 of its aarch64 (or pure-Python) wheels on PyPI: pip installs them in --require-hashes mode
GUEST_HASHES = {
    "numpy==2.4.6": ("0ab0a9c4ffb1a6d95ef519fe4247dba8eb6b18ad93999f76b7f657039acabd47", "c2d37ab77531417474168eb79d6d80b14f821a966818505d03013d0833edb7a8",),
    "ai-edge-litert==2.3.0": ("853fc608f96da87bd5f3458465dfb9abbf18d5ae6b94eceacead407146f175ae",),
    "onnxruntime==1.31.1": ("da05378364c44d4407e463982d2bf8d5e4cfea873283757e48beeb41df97b7f3",),
    "flatbuffers==25.12.19": ("7634f50c427838bb021c2d66a3d1168e9d199b0607e6329399f04846d42e20b4",),
    "protobuf==7.36.2": ("bdb3a345d48db958e6ce1f18e508beb0cc981d64f24088427549c866cd039f1e", "e11e1f0180583a2af89db6a2ecd9e8dc40aa6d2988ca175bfd0e6d12ea72d74e",),
    "ml_dtypes==0.6.0": ("7728c0420ec1c338564fc8b01015ff2d58567e70f17fedce5a0a7c0308c0d5b9",),
    "packaging==26.3": ("d7193f7c8e4e93f444fde0262bf90af30e16fa0ad0ad44cb553c87339b23cd1c",),
    "typing_extensions==4.16.0": ("481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",),
    "backports.strenum==1.2.8": ("fc297cb26971f7d5e15a478a06a78575197f81daea47975771b1aae996dcccf4",),
    "tqdm==4.70.1": ("c293e525e6fef9c20e8728fd4612df02a0aa31bb5fe91ecd93e123b1b7bffa73",),
}
GUEST_WHEELS = tuple(GUEST_HASHES)
PLATFORMS = ("manylinux_2_27_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64")
QEMU_INSTALL = "apt-get update && apt-get install -y qemu-user-static"
# 2: the per-CPU roots link into the sysroot by relative paths, so the directory works wherever it is moved
LAYOUT_VERSION = 2


def root(arch: str = "arm64") -> Path:
    from ..data.datasets import cache_dir

    if arch not in ARCHES:
        raise InputError(f"--arch {arch!r}: the emulator supports {', '.join(ARCHES)}. Fix: use --arch arm64.")
    base = os.environ.get("EDGEOPT_EMULATOR_DIR")  # to share one environment between caches (CI, tests)
    return (Path(base) if base else cache_dir() / "emulator") / arch


def qemu_binary() -> Optional[str]:
    for name in ("qemu-aarch64-static", "qemu-aarch64"):
        p = shutil.which(name)
        if p:
            return p
    return None


def require_qemu() -> str:
    q = qemu_binary()
    if q is None:
        raise EmulatorError(f"qemu-user is not installed (no qemu-aarch64-static or qemu-aarch64 on PATH). Fix: "
                            f"{QEMU_INSTALL}")
    return q


def qemu_version(q: str) -> str:
    out = subprocess.run([q, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "unknown"


def _expected(arch: str) -> dict:
    return {"layout": LAYOUT_VERSION, "arch": arch, "suite": SUITE, "apt_packages": list(APT_PACKAGES + APT_EXTRA),
            "wheels": list(GUEST_WHEELS), "cpus": {n: asdict(m) for n, m in CPU_MODELS.items()}}


def status(arch: str = "arm64") -> dict:
    """What is there, without changing anything."""
    r = root(arch)
    q = qemu_binary()
    ready_file = r / "ready.json"
    info = json.loads(ready_file.read_text()) if ready_file.is_file() else None
    problems = []
    if q is None:
        problems.append(f"qemu-user missing ({QEMU_INSTALL})")
    if info is None:
        problems.append("not set up (edgeopt emulator setup)")
    elif {k: info.get(k) for k in _expected(arch)} != _expected(arch):
        problems.append("set up by another edgeopt version (edgeopt emulator setup rebuilds it)")
    elif not (r / "sysroot" / "usr" / "bin" / "python3.11").is_file():
        problems.append("sysroot incomplete (edgeopt emulator setup rebuilds it)")
    cpus = []
    for name, m in CPU_MODELS.items():
        err = None
        if info is not None:
            try:
                check_cpuinfo(r, name)
            except EmulatorError as e:
                err = str(e)
        cpus.append({"cpu": name, "cpu_part": f"0x{m.part:03x}", "like": m.like,
                     "ready": not problems and err is None, "problem": err})
    return {"arch": arch, "root": str(r), "qemu": q, "qemu_version": qemu_version(q) if q else None,
            "ready": not problems, "problems": problems, "cpus": cpus, "instruction_counter": plugin.status(r),
            "setup_seconds": info.get("setup_seconds") if info else None}


def require_cpu_model(cpu: str) -> CpuModel:
    if cpu not in CPU_MODELS:
        raise InputError(f"qemu CPU model {cpu!r} is not one edgeopt emulates. Fix: use one of "
                         f"{', '.join(CPU_MODELS)} (edgeopt emulator list).")
    return CPU_MODELS[cpu]


def check_cpuinfo(r: Path, cpu: str) -> Path:
    """The -L root for ``cpu``, after checking its /proc/cpuinfo names the same CPU part as ``-cpu cpu``."""
    want = require_cpu_model(cpu)
    f = r / "cpus" / cpu / "proc" / "cpuinfo"
    if not f.is_file():
        raise EmulatorError(f"{f} is missing: XNNPACK would fail to parse cpuinfo and silently turn off. Fix: "
                            f"edgeopt emulator setup")
    parts = set(re.findall(r"^CPU part\s*:\s*(0x[0-9a-fA-F]+)", f.read_text(), flags=re.M))
    if parts != {f"0x{want.part:03x}"}:
        raise EmulatorError(f"{f}: CPU part {', '.join(sorted(parts)) or 'absent'} does not match -cpu {cpu} "
                            f"(0x{want.part:03x}); XNNPACK would pick kernels for another core (SIGILL or wrong "
                            f"kernels). Fix: edgeopt emulator setup (rewrites it)")
    return f.parent.parent


def debian_mirror() -> str:
    env = os.environ.get("EDGEOPT_DEBIAN_MIRROR")
    if env:
        return env.rstrip("/")
    for f in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = f.read_text()
        except OSError:
            continue
        for m in re.finditer(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+/debian)/?\s", text, flags=re.M):
            return m.group(1)
    return "http://deb.debian.org/debian"


def run_tool(cmd: list[str], what: str, cwd: Optional[Path] = None, error=None, prefix: str = "emulator setup",
             missing_fix: str = "run setup on a Debian/Ubuntu host with apt-get and dpkg.",
             failed_fix: str = "") -> str:
    """Run a setup tool (apt-get, dpkg, pip); a missing tool or a failure is ``error`` in one line."""
    from ..proc import run_group

    error = error or EmulatorError
    try:
        p = run_group(cmd, cwd=cwd)  # interrupted: the tool and its children end with edgeopt
    except FileNotFoundError:
        raise error(f"{prefix}: {cmd[0]} not found ({what}). Fix: {missing_fix}") from None
    if p.returncode != 0:
        tail = " ".join((p.stderr or p.stdout).split())[-300:]
        raise error(f"{prefix}: {what} failed (exit {p.returncode}): {tail}" + (f". Fix: {failed_fix}" if failed_fix
                                                                                 else ""))
    return p.stdout


_run = run_tool


def _write_cpu_roots(r: Path, sysroot: Path) -> None:
    for name, m in CPU_MODELS.items():
        d = r / "cpus" / name
        if d.exists():
            shutil.rmtree(d)
        (d / "proc").mkdir(parents=True)
        for entry in sysroot.iterdir():  # relative links: the directory may be moved or copied whole
            if entry.name != "proc":
                os.symlink(os.readlink(entry) if entry.is_symlink() else os.path.relpath(entry, d), d / entry.name)
        (d / "proc" / "cpuinfo").write_text(m.cpuinfo())


def setup(arch: str = "arm64", quiet: bool = False, force: bool = False) -> dict:
    """Build the environment into the cache; a no-op when it is already there with the same pins. Processes doing
    it at once (a build's first count, ``edgeopt emulator setup``, a test session's warm-up) take turns on a lock
    beside it, and the later ones find it ready."""
    import fcntl

    require_qemu()  # before anything is made: a missing qemu leaves nothing behind
    r = root(arch)
    r.parent.mkdir(parents=True, exist_ok=True)
    with open(r.parent / f".{arch}.setup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _setup(arch, quiet, force)


def _setup(arch: str, quiet: bool, force: bool) -> dict:
    q = require_qemu()
    r = root(arch)
    st = status(arch)
    if st["ready"] and not force and all(c["ready"] for c in st["cpus"]):
        built = plugin.setup(r, quiet)["changed"]
        log(quiet, f"[edgeopt] emulator {arch}: already set up at {r}")
        return {**status(arch), "changed": built}
    t0 = time.perf_counter()
    r.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=r.parent, prefix=f".{arch}."))
    try:
        apt = work / "apt"
        (apt / "lists" / "partial").mkdir(parents=True)
        (apt / "cache" / "archives" / "partial").mkdir(parents=True)
        mirror = debian_mirror()
        (apt / "sources.list").write_text(f"deb {mirror} {SUITE} main\n")
        a64 = ["-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64", "-o", "Dir::State::status=/dev/null",
               "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/dev/null",
               "-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache={apt / 'cache'}"]
        log(quiet, f"[edgeopt] emulator {arch}: apt index of {mirror} {SUITE} (arm64)")
        _run(["apt-get", *a64, "update"], f"apt-get update for arm64 from {mirror}")
        deps = _run(["apt-cache", *a64, "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                     "--no-breaks", "--no-replaces", "--no-enhances", "--no-pre-depends", *APT_PACKAGES],
                    "apt-cache depends")
        pkgs = sorted({ln.strip() for ln in deps.splitlines() if re.match(r"^[a-z0-9]", ln)} - {""})
        pkgs = [p for p in pkgs if not APT_SKIP.match(p)] + list(APT_EXTRA)
        debs = work / "debs"
        debs.mkdir()
        log(quiet, f"[edgeopt] emulator {arch}: downloading {len(pkgs)} Debian arm64 packages")
        with working(f"emulator {arch}: apt-get download of {len(pkgs)} packages", quiet):
            _run(["apt-get", *a64, "download", *pkgs], "apt-get download", cwd=debs)
        sysroot = work / "sysroot"
        all_debs = sorted(debs.glob("*.deb"))
        with progress(len(all_debs), f"emulator {arch}: unpacking packages", quiet) as bar:
            for deb in all_debs:
                _run(["dpkg", "-x", str(deb), str(sysroot)], f"dpkg -x {deb.name}")
                bar.update(1)
        if not (sysroot / "usr" / "bin" / "python3.11").is_file():
            raise EmulatorError(f"emulator setup: the unpacked sysroot has no usr/bin/python3.11 (packages: "
                                f"{len(pkgs)}). Fix: check EDGEOPT_DEBIAN_MIRROR points at a Debian mirror.")
        log(quiet, f"[edgeopt] emulator {arch}: aarch64 wheels {' '.join(GUEST_WHEELS[:3])} ...")
        plat = [a for p in PLATFORMS for a in ("--platform", p)]
        reqs = work / "guest-requirements.txt"
        reqs.write_text("".join(f"{pin} " + " ".join(f"--hash=sha256:{h}" for h in hs) + "\n"
                                for pin, hs in GUEST_HASHES.items()))
        with working(f"emulator {arch}: pip install of the aarch64 wheels", quiet):
            _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--require-hashes", "--target",
                  str(work / "site"), *plat, "--python-version", "3.11", "--only-binary=:all:", "--no-compile",
                  "-r", str(reqs)], "pip install of the aarch64 wheels")
        reqs.unlink()
        shutil.rmtree(apt, ignore_errors=True)
        shutil.rmtree(debs, ignore_errors=True)
        # move into place: sysroot and site first, then per-CPU roots pointing at the final sysroot
        for name in ("sysroot", "site"):
            if (r / name).exists():
                shutil.rmtree(r / name)
        r.mkdir(parents=True, exist_ok=True)
        (r / "ready.json").unlink(missing_ok=True)
        os.rename(work / "sysroot", r / "sysroot")
        os.rename(work / "site", r / "site")
        _write_cpu_roots(r, r / "sysroot")
        info = {**_expected(arch), "mirror": mirror, "qemu": q, "qemu_version": qemu_version(q),
                "setup_seconds": round(time.perf_counter() - t0, 1)}
        smoke = guest_python(r, "cortex-a53", ["-c", "import numpy, ai_edge_litert.interpreter, onnxruntime; "
                                                     "print(numpy.__version__, onnxruntime.__version__)"], timeout=300)
        if smoke.returncode != 0:
            raise EmulatorError(f"emulator setup: the emulated python cannot import the runtimes (exit "
                                f"{smoke.returncode}): {' '.join(smoke.stderr.split())[-300:]}")
        info["smoke"] = smoke.stdout.strip()
        (r / "ready.json").write_text(json.dumps(info, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    plugin.setup(r, quiet)
    log(quiet, f"[edgeopt] emulator {arch}: ready at {r} ({time.perf_counter() - t0:.0f} s)")
    return {**status(arch), "changed": True}


def guest_python(r: Path, cpu: str, args: list[str], timeout: float = 1800, extra_path: Optional[list] = None,
                 env: Optional[dict] = None, qemu: Optional[str] = None,
                 qemu_args: tuple = ()) -> subprocess.CompletedProcess:
    """Run the sysroot's python3.11 under ``qemu -cpu cpu`` with that CPU's -L root (``qemu``: another qemu binary,
    e.g. the dynamic one that loads plugins; ``qemu_args``: options before ``-L``, e.g. ``-plugin``)."""
    q = qemu or require_qemu()
    cpu_root = check_cpuinfo(r, cpu)
    py = r / "sysroot" / "usr" / "bin" / "python3.11"
    path = [str(r / "site"), *(str(p) for p in (extra_path or []))]
    genv = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.pathsep.join(path), "PYTHONNOUSERSITE": "1",
            "PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8", "HOME": str(r), **(env or {})}
    cmd = [q, *qemu_args, "-L", str(cpu_root), "-cpu", cpu, str(py), "-s", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, env=genv, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise EmulatorError(f"emulated python on {cpu} ran past {timeout:.0f} s; nothing was reported.") from None


def runtime_for(artifact: Path) -> str:
    suffix = Path(artifact).suffix
    if suffix == ".tflite":
        return "litert"
    if suffix == ".onnx":
        return "onnxruntime"
    raise EmulatorError(f"{artifact}: not a .tflite or .onnx file. Fix: give the artifact a build wrote.")


def stage_request(work: Path, artifact: Path, tokens: np.ndarray, threads: int, xnnpack: bool, **extra) -> dict:
    """The guest's request in ``work``: ``request.json``, the inputs, and ``pkgs/`` holding only edgeopt (not the
    host's packages) for the guest's PYTHONPATH. Returns the request."""
    pkgs = work / "pkgs"
    pkgs.mkdir()
    os.symlink(PACKAGE_DIR, pkgs / "edgeopt")
    np.save(work / "inputs.npy", np.ascontiguousarray(tokens, dtype=np.int32))
    req = {"artifact": str(Path(artifact).resolve()), "runtime": runtime_for(artifact), "threads": threads,
           "xnnpack": xnnpack, "inputs": str(work / "inputs.npy"), "outputs": str(work / "outputs.npy"),
           "result": str(work / "result.json"), **extra}
    (work / "request.json").write_text(json.dumps(req))
    return req
