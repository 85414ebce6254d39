"""Instructions per inference on an emulated CPU: a deterministic cost signal that belongs to the device's core.

qemu-user runs the guest Python with ``-cpu MODEL`` (so XNNPACK picks that core's kernels) and loads
``count.c``, a TCG plugin of our own (no Debian package ships one), compiled at ``edgeopt emulator setup`` with
the system's C compiler. The guest brackets each ``invoke()`` with two marker syscalls; the plugin writes the
instructions executed between them. Plugins need the dynamic ``qemu-aarch64`` from Debian's ``qemu-user`` (the
static binary rejects ``-plugin``).

What made counts drift, and is fixed here (TOOLCHAIN section 6): the environment (only the variables below,
absolute paths, stdout/stderr to pipes), numpy's second thread (``OPENBLAS_NUM_THREADS=1``), hash randomisation
(``PYTHONHASHSEED=0``), the first invokes (warm-up); found here: the artifact's path and the working directory's
name (a count runs in one fixed directory with the artifact copied in), glibc malloc's history
(``MALLOC_TUNABLES``) and, under callgrind, address-space randomisation (``setarch -R``). The count per
inference is the typical count over the measured invokes, minus the typical count of empty windows (the markers'
and the Python call's own cost), so the figure is what ``invoke()`` costs. It is an instruction count, not a time.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np

from ..console import log
from ..errors import EmulatorError
from .env import guest_python, stage_request
from .plugin import plugin_path, setup, status

WARMUP, MEASURED, EMPTY = 10, 20, 20
VALGRIND_INSTALL = "apt-get install -y valgrind"
# glibc's malloc does more or less work per call depending on its free lists' history: ONNX Runtime allocates its
# outputs on every run, and its counts moved by 0.3-0.8% between runs of the same file at the same path (measured
# under callgrind). A large tcache, no fastbins and no trimming or mmap make malloc's cost the same in every run.
MALLOC_TUNABLES = ("glibc.malloc.tcache_count=65535:glibc.malloc.mxfast=0:glibc.malloc.trim_threshold=1000000000:"
                   "glibc.malloc.mmap_threshold=1000000000")
QEMU_COUNTER, X86_COUNTER = "qemu TCG plugin (edgeopt count.c)", "valgrind callgrind"
QEMU_NOTE = ("emulated instructions per inference (batch 1, 1 thread): an instruction count on the CPU model, not "
             "a time")
X86_NOTE = ("valgrind's callgrind on the build machine: its synthetic CPU has AVX2 and FMA but not AVX-512, so these "
            "are the runtime's AVX2 kernels' instructions; an instruction count, not a time")


MARKER = ".edgeopt-count"


@contextlib.contextmanager
def _work_dir(artifact: Path, scope: Path | None = None, quiet: bool = False):
    """The directory a count runs in, at the same path every time for one emulator directory
    (``<tmp>/edgeopt-count-<uid>-<8 hex digits of the emulator directory>``; x86 counts: of the temporary directory),
    with the artifact copied in as ``model.<ext>``: the guest's paths are strings the interpreter and the runtime
    hash and copy, so a different directory name or artifact path changes the count by up to 0.5% (measured: ONNX
    Runtime under callgrind, a build's staging path vs the final one). One count at a time per emulator directory
    (a lock beside the work directory, named for the same scope); a count that has to wait says so, with the lock
    it waits on. The directory is edgeopt's own (a marker file) and is removed afterwards."""
    import fcntl
    import hashlib

    base = Path(tempfile.gettempdir())
    key = hashlib.sha256(str(Path(scope or base).resolve()).encode()).hexdigest()[:8]
    work = base / f"edgeopt-count-{os.getuid()}-{key}"
    lock_path = base / f"edgeopt-count-{os.getuid()}-{key}.lock"
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(quiet, f"[edgeopt] counting instructions of {Path(artifact).name}: waiting for another count of "
                       f"{scope or 'this machine'} to finish (lock {lock_path})")
            t0 = time.perf_counter()
            fcntl.flock(lock, fcntl.LOCK_EX)
            log(quiet, f"[edgeopt] counting instructions of {Path(artifact).name}: waited "
                       f"{time.perf_counter() - t0:.0f} s for the lock")
        if work.exists():
            if not (work / MARKER).is_file():
                raise EmulatorError(f"{work}: exists and is not edgeopt's; edgeopt will not remove it. Fix: move it "
                                    f"away.")
            shutil.rmtree(work)
        work.mkdir(mode=0o700)
        (work / MARKER).touch()
        try:
            model = work / f"model{Path(artifact).suffix}"
            shutil.copyfile(artifact, model)
            yield work, model
        finally:
            shutil.rmtree(work, ignore_errors=True)


def mode_of(values: list[int]) -> int:
    """The typical count: the most common one when it is at least half of them (the first invokes warm up; an
    occasional one does a little more), else the median (ONNX Runtime's run allocates its outputs, and glibc's
    malloc then does a little more or less work per call, so no two counts need be equal)."""
    value, n = Counter(values).most_common(1)[0]
    return value if 2 * n >= len(values) else int(np.median(values))


def count(r: Path, artifact: Path, tokens: np.ndarray, cpu: str, xnnpack: bool, timeout: float = 600,
          quiet: bool = False) -> dict:
    """Instructions per inference of ``artifact`` (batch 1, one thread) on ``cpu``; XNNPACK on or off (LiteRT)."""
    st = status(r)
    if not st["ready"]:
        raise EmulatorError("; ".join(st["problems"]))
    with _work_dir(artifact, r, quiet) as (work, model):
        req = stage_request(work, model, tokens[:1], 1, bool(xnnpack),
                            count={"empty": EMPTY, "invokes": WARMUP + MEASURED})
        out = work / "counts.txt"
        t0 = time.perf_counter()
        p = guest_python(r, cpu, ["-m", "edgeopt.emulator.guest", str(work / "request.json")], timeout=timeout,
                         extra_path=[work / "pkgs"], env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                                                          "GLIBC_TUNABLES": MALLOC_TUNABLES},
                         qemu=st["qemu"], qemu_args=("-plugin", f"{plugin_path(r)},out={out}"))
        seconds = round(time.perf_counter() - t0, 2)
        counts = [int(x) for x in out.read_text().split()] if out.is_file() else []
        return _from_windows(cpu, xnnpack, p, work, req, counts, seconds)


def _from_windows(cpu: str, xnnpack: bool, p: subprocess.CompletedProcess, work: Path, req: dict,
                  windows: list[int], seconds: float, **extra) -> dict:
    """The count per inference from the marker windows (empty, warm-up, measured), or why there is none."""
    res = json.loads((work / "result.json").read_text()) if (work / "result.json").is_file() else {}
    if p.returncode != 0 or not res.get("loaded") or len(windows) != EMPTY + WARMUP + MEASURED or -1 in windows:
        why = res.get("load_error") or " ".join(p.stderr.split())[-300:] or f"exit {p.returncode}"
        return {"cpu": cpu, "xnnpack": bool(xnnpack), "instructions": None, "error": why, "seconds": seconds}
    empty, measured = windows[:EMPTY], windows[EMPTY + WARMUP:]
    base, per = mode_of(empty[5:]), mode_of(measured)
    return {"cpu": cpu, "xnnpack": bool(xnnpack), "delegate_applied": bool(res.get("delegate_applied")),
            "instructions": per - base, "marker_overhead": base, "spread": max(measured) - min(measured),
            "identical": measured.count(per), "of": len(measured), "seconds": seconds,
            "runtime": f"{req['runtime']} {res.get('runtime_version', '')}".strip(), **extra}


def _no_aslr() -> list[str]:
    """``setarch -R`` (util-linux) where it is there: with address-space randomisation, hash tables keyed by
    addresses probe differently from run to run, and one x86 count in five moved by about 150 instructions."""
    sa = shutil.which("setarch")
    if sa is None or subprocess.run([sa, "-R", "true"], capture_output=True).returncode != 0:
        return []  # a sandbox that forbids personality(2): counted as it is
    return [sa, "-R"]


def count_x86(artifact: Path, tokens: np.ndarray, xnnpack: bool, timeout: float = 900, quiet: bool = False) -> dict:
    """Instructions per inference of ``artifact`` on x86 (batch 1, one thread), counted by valgrind's callgrind in
    the build machine's Python: callgrind dumps its counters at every marker syscall the guest protocol makes (the
    same windows as on the emulated CPU), so only the inference and the markers are counted; the markers' own cost
    (the empty windows) is subtracted. The runtime sees callgrind's CPU (AVX2, no AVX-512)."""
    import glob
    import re
    import sys

    vg = shutil.which("valgrind")
    if vg is None:
        raise EmulatorError(f"x86 instruction counts are taken with valgrind, which is not installed. Fix: "
                            f"{VALGRIND_INSTALL}")
    with _work_dir(artifact, None, quiet) as (work, model):
        req = stage_request(work, model, tokens[:1], 1, bool(xnnpack),
                            count={"empty": EMPTY, "invokes": WARMUP + MEASURED})
        env = {"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
               "LC_ALL": "C.UTF-8", "PYTHONPATH": str(work / "pkgs"), "PYTHONNOUSERSITE": "1",
               "GLIBC_TUNABLES": MALLOC_TUNABLES}
        no_aslr = _no_aslr()
        t0 = time.perf_counter()
        try:
            p = subprocess.run([*no_aslr, vg, "--tool=callgrind", "--dump-before=sched_get_priority_max",
                                f"--callgrind-out-file={work / 'cg.out'}", sys.executable, "-s", "-m",
                                "edgeopt.emulator.guest", str(work / "request.json")],
                               capture_output=True, text=True, env=env, cwd=work, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"cpu": "x86", "xnnpack": bool(xnnpack), "instructions": None,
                    "error": f"valgrind ran past {timeout:.0f} s", "seconds": round(time.perf_counter() - t0, 2)}
        seconds = round(time.perf_counter() - t0, 2)
        dumps = sorted(glob.glob(str(work / "cg.out.*")), key=lambda f: int(f.rsplit(".", 1)[1]))
        totals = []
        for f in dumps:
            m = re.search(r"^totals: (\d+)", Path(f).read_text(), re.M)
            totals.append(int(m.group(1)) if m else -1)
        windows = totals[1::2]  # a dump before every marker: the odd dumps are the bracketed windows
        return _from_windows("x86", xnnpack, p, work, req, windows, seconds, counter="callgrind",
                             aslr_off=bool(no_aslr))


def count_artifact(artifact, cpu: str = "cortex-a76", xnnpack: bool = True, text: Optional[str] = None) -> dict:
    """Instructions per inference of one ``.tflite``/``.onnx`` file on ``cpu`` (an emulated arm64 core of
    ``edgeopt emulator list``, or ``"x86"`` for valgrind on this machine), batch 1, one thread. ``text`` is
    tokenized by the tokenizer beside the artifact (a build directory); without it the input is all-<unk> ids.
    The public counterpart of what builds, ``verify`` and ``tune`` count (``edgeopt.count_instructions``)."""
    from .. import runtimes
    from ..data.tokenizer import CONFIG, load_tokenizer
    from ..errors import InputError
    from . import env

    artifact = Path(artifact)
    if not artifact.is_file() or artifact.suffix.lower() not in (".tflite", ".onnx"):
        raise InputError(f"{artifact}: not a .tflite or .onnx file. Fix: give a built artifact.")
    if text is not None:
        if not (artifact.parent / CONFIG).is_file():
            raise InputError(f"{artifact.parent / CONFIG}: no tokenizer beside the artifact to encode the text. "
                             f"Fix: count a file inside its build directory, or leave the text out.")
        tokens = np.asarray(load_tokenizer(artifact.parent).encode_batch([text]), np.int32)
    else:
        seq_len = runtimes.load(artifact, runtimes.RuntimeOptions(threads=1, xnnpack=False)).input_shape[1]
        tokens = np.ones((1, seq_len), np.int32)
    if cpu == "x86":
        return count_x86(artifact, tokens, xnnpack)
    env.require_cpu_model(cpu)
    r = env.root()
    setup(r)
    return count(r, artifact, tokens, cpu, xnnpack)
