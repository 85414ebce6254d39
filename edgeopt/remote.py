"""Real boards over SSH: copy a deployed artifact and a small runner to a board, check what the board is, and
measure the artifact's latency there. These are the only figures edgeopt reports as device latency.

The runner is the emulator's guest protocol (``edgeopt.emulator.guest`` with the runtime sessions it imports: ten
small files, no TensorFlow, no pydantic), so the board needs Python 3.9+, numpy and the artifact's runtime
(ai-edge-litert or onnxruntime) and nothing else. Everything is sent as one tar stream into one ``mktemp -d``
directory on the board, which the same shell removes on exit (a trap), also when the run fails.

The transport is the system's OpenSSH client, not a Python SSH library: it is what device labs already configure
(keys, agents, ``~/.ssh/config`` with ProxyJump), and it verifies host keys exactly as the user's own ``ssh`` does.
Host-key checking is forced on (``StrictHostKeyChecking=yes`` on the command line, which no config file
overrides): an unknown host is refused with the command that trusts it. Only key authentication is tried
(``BatchMode``; a password in the URL is refused). Neither the key nor its path is written to a manifest or
report; the board is identified by ``ssh://user@host:port`` and what it says about itself.
"""
from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import numpy as np

from .errors import InputError, RemoteError
from .urls import mask, ssh_url_problem

# what the runner imports, relative to the edgeopt package
RUNNER_FILES = ("__init__.py", "_version.py", "errors.py", "files.py", "inspect.py", "runtimes/__init__.py", "runtimes/base.py",
                "runtimes/litert.py", "runtimes/onnxrt.py", "emulator/__init__.py", "emulator/guest.py")
PACKAGES = {"litert": "ai-edge-litert", "onnxruntime": "onnxruntime"}
MODULES = {"litert": "ai_edge_litert", "onnxruntime": "onnxruntime"}
ARCH_NAMES = {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}
CONNECT_TIMEOUT = 10
LABEL = "measured on the board over SSH: device latency"


@dataclass(frozen=True)
class Remote:
    user: str
    host: str
    port: int
    key_file: Path
    python: str = "python3"
    known_hosts: Optional[Path] = None

    @property
    def url(self) -> str:  # no secret in it: passwords are refused, the key is a file
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{self.user}@{host}:{self.port}"


def parse(url: str, key_file: str, python: str = "python3", known_hosts: Optional[str] = None,
          where: str = "--remote", base: Optional[Path] = None) -> Remote:
    """``ssh://user@host[:port]`` and a key file (relative paths are taken from ``base``, e.g. the target file's
    directory) -> Remote; one-line errors naming ``where``."""
    problem = ssh_url_problem(url)
    if problem and problem.startswith("unparseable: "):
        raise InputError(f"{where}: {problem.removeprefix('unparseable: ')}. Fix: write ssh://user@host[:port].")
    if problem == "form":
        raise InputError(f"{where}: {mask(url)!r} is not ssh://user@host[:port]. Fix: write e.g. "
                         f"ssh://pi@192.168.1.20:22.")
    if problem == "password":
        raise InputError(f"{where}: the URL carries a password; edgeopt logs in with a key only and never stores "
                         f"passwords. Fix: remove it and give a key file (--key, or key_file).")
    u = urlsplit(url)
    if problem == "user":
        raise InputError(f"{where}: {mask(url)!r} names no user. Fix: write ssh://user@{u.hostname}.")
    port = u.port or 22

    def path(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() or base is None else base / q

    key = path(key_file)
    if not key.is_file():
        raise InputError(f"{where}: key file {key} does not exist. Fix: give the private key the board accepts "
                         f"(ssh-keygen -t ed25519 makes one; ssh-copy-id installs it on the board).")
    return Remote(u.username, u.hostname, port, key, python, path(known_hosts) if known_hosts else None)


def for_target(target) -> Remote:
    r = target.device.remote
    if r is None:
        raise InputError(f"target {target.name} names no board (device.remote). Fix: add device.remote with url, "
                         f"key_file and python to {target.source or target.name}, or use bench --remote.")
    base = Path(target.source).parent if target.source else None
    return parse(r.url, r.key_file, r.python, r.known_hosts, where=f"{target.source or target.name}: "
                 f"device.remote", base=base)


def _ssh(remote: Remote, command: str, stdin: Optional[bytes] = None, timeout: float = 120) -> \
        subprocess.CompletedProcess:
    known = remote.known_hosts or Path("~/.ssh/known_hosts").expanduser()
    argv = ["ssh", "-p", str(remote.port), "-i", str(remote.key_file), "-T",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
            "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", "-o", f"UserKnownHostsFile={known}",
            f"{remote.user}@{remote.host}", command]
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise RemoteError("the OpenSSH client (ssh) is not installed. Fix: apt-get install -y openssh-client") \
            from None
    except subprocess.TimeoutExpired:
        raise RemoteError(f"{remote.url}: no answer within {timeout:.0f} s. Fix: check the board is not busy or "
                          f"asleep, then retry.") from None
    if p.returncode == 255:
        raise RemoteError(_classify(remote, known, p.stderr.decode("utf-8", "replace")))
    return p


def _classify(remote: Remote, known: Path, err: str) -> str:
    """One line for what ssh said, with the fix."""
    one = " ".join(err.split())
    hp = remote.host if remote.port == 22 else f"[{remote.host}]:{remote.port}"
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in err:
        return (f"{remote.url}: the board's host key CHANGED since it was trusted (a reinstalled board, or someone "
                f"in between); edgeopt refuses it. Fix: if the board was reinstalled, ssh-keygen -R '{hp}' -f "
                f"{known}, then trust the new key after checking its fingerprint.")
    if "Host key verification failed" in err or re.search(r"No \S+ host key is known", err):
        return (f"{remote.url}: the board's host key is not in {known}; edgeopt does not trust unknown hosts. Fix: "
                f"ssh-keyscan -p {remote.port} {remote.host} >> {known} (after checking the fingerprint with the "
                f"board's owner).")
    if "UNPROTECTED PRIVATE KEY FILE" in err or "bad permissions" in err:
        return f"{remote.url}: ssh will not use the key file: others can read it. Fix: chmod 600 {remote.key_file}"
    if re.search(r"Load key .*: (invalid format|error in libcrypto)", err):
        return f"{remote.url}: the key file is not a private key ssh can read. Fix: give the private key (not .pub)."
    if "Permission denied" in err:
        return (f"{remote.url}: the board refused the key for user {remote.user}. Fix: add the public key to "
                f"~{remote.user}/.ssh/authorized_keys on the board (ssh-copy-id -i {remote.key_file} -p "
                f"{remote.port} {remote.user}@{remote.host}).")
    m = re.search(r"(Connection refused|Connection timed out|No route to host|Network is unreachable|"
                  r"Could not resolve hostname[^:]*: [^\n]*|Connection closed by [^\n]*|Operation timed out)", err)
    if m:
        return (f"{remote.url}: cannot reach the board ({' '.join(m.group(1).split())}). Fix: check that it is on, "
                f"on this network, and that sshd listens on port {remote.port}.")
    return f"{remote.url}: ssh failed: {one[-300:] or 'no message'}"


_PROBE = r"""
import json, platform, sys
out = {"machine": platform.machine(), "python": platform.python_version(), "packages": {}}
for mod, dist in (("numpy", "numpy"), ("ai_edge_litert", "ai-edge-litert"), ("onnxruntime", "onnxruntime")):
    try:
        __import__(mod)
        from importlib import metadata
        out["packages"][mod] = metadata.version(dist)
    except Exception as e:
        out["packages"][mod] = None
print(json.dumps(out))
"""


def probe(remote: Remote, runtime: str, arch: Optional[str] = None, where: str = "") -> dict:
    """What the board is (architecture, Python, numpy and runtime versions), refusing one it cannot run on."""
    py = shlex.quote(remote.python)
    cmd = (f"if ! command -v {py} >/dev/null 2>&1; then echo EDGEOPT_NO_PYTHON; exit 0; fi; "
           f"{py} -s -c {shlex.quote(_PROBE)}")
    p = _ssh(remote, cmd)
    out = p.stdout.decode("utf-8", "replace").strip()
    if out.endswith("EDGEOPT_NO_PYTHON"):
        raise RemoteError(f"{remote.url}: no Python at {remote.python!r} on the board. Fix: install it there "
                          f"(sudo apt-get install -y python3 python3-venv) or point {where or '--python'} at it.")
    try:
        info = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise RemoteError(f"{remote.url}: {remote.python} on the board did not run the probe: "
                          f"{' '.join(p.stderr.decode('utf-8', 'replace').split())[-200:]}. Fix: give a working "
                          f"Python 3.9+.") from None
    if tuple(int(v) for v in info["python"].split(".")[:2]) < (3, 9):
        raise RemoteError(f"{remote.url}: Python {info['python']} on the board; the runner needs 3.9 or newer. "
                          f"Fix: install python3.9+ there and point {where or '--python'} at it.")
    missing = [m for m in ("numpy", MODULES[runtime]) if not info["packages"].get(m)]
    if missing:
        from importlib import metadata

        pins = []
        for m in missing:
            dist = "numpy" if m == "numpy" else PACKAGES[runtime]
            try:
                pins.append(f"{dist}=={metadata.version(dist)}")
            except metadata.PackageNotFoundError:
                pins.append(dist)
        raise RemoteError(f"{remote.url}: the board's {remote.python} lacks {', '.join(missing)}. Fix: on the board, "
                          f"{remote.python} -m pip install {' '.join(pins)}")
    info["arch"] = ARCH_NAMES.get(info["machine"].lower(), info["machine"])
    if arch is not None and info["arch"] != arch:
        raise RemoteError(f"{remote.url}: the board is {info['machine']} but the target is {arch}; its numbers "
                          f"would not be the device's. Fix: point {where or '--remote'} at a {arch} board.")
    return info


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def bench(remote: Remote, artifact: Path, tokens: np.ndarray, threads: int, xnnpack: bool, warmup: int = 50,
          iterations: int = 500, arch: Optional[str] = None, where: str = "", timeout: float = 1800) -> dict:
    """p50/p90/p99 of ``artifact`` at batch 1 on the board, with what the board is. It probes the board first, also
    after ``build --on-device``'s plan did: training can take hours, and the board may have changed meanwhile."""
    from .emulator.env import PACKAGE_DIR, runtime_for

    artifact = Path(artifact)
    runtime = runtime_for(artifact)
    info = probe(remote, runtime, arch, where)
    pkg = PACKAGE_DIR
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(tokens, dtype=np.int32))
    model = f"model{artifact.suffix}"
    req = {"artifact": model, "runtime": runtime, "threads": threads, "xnnpack": xnnpack, "inputs": "inputs.npy",
           "outputs": "outputs.npy", "result": "result.json", "bench": {"warmup": warmup, "iterations": iterations}}
    files = {f"pkgs/edgeopt/{f}": (pkg / f).read_bytes() for f in RUNNER_FILES}
    files.update({model: artifact.read_bytes(), "inputs.npy": buf.getvalue(),
                  "request.json": json.dumps(req).encode()})
    py = shlex.quote(remote.python)
    cmd = ('d=$(mktemp -d "${TMPDIR:-/tmp}/edgeopt-remote.XXXXXX") || exit 97; '
           "trap 'rm -rf \"$d\"' EXIT; trap 'exit 1' HUP INT TERM; "
           'tar -xf - -C "$d" || exit 98; cd "$d" || exit 98; '
           f'PYTHONPATH="$d/pkgs" PYTHONNOUSERSITE=1 {py} -s -m edgeopt.emulator.guest request.json 1>&2 || exit 99; '
           'cat result.json')
    t0 = time.perf_counter()
    p = _ssh(remote, cmd, stdin=_tar(files), timeout=timeout)
    seconds = round(time.perf_counter() - t0, 2)
    err = " ".join(p.stderr.decode("utf-8", "replace").split())
    if p.returncode != 0:
        what = {97: "could not make a temporary directory", 98: "could not unpack the runner (is tar installed?)",
                99: "the runner failed"}.get(p.returncode, f"exit {p.returncode}")
        raise RemoteError(f"{remote.url}: {what}: {err[-300:]}. Fix: run `edgeopt bench` with the same artifact on "
                          f"the board's Python by hand to see why.")
    res = json.loads(p.stdout.decode("utf-8", "replace").splitlines()[-1])
    if not res.get("loaded"):
        raise RemoteError(f"{remote.url}: the board's {runtime} did not load {artifact.name}: "
                          f"{(res.get('load_error') or '')[:300]}")
    from importlib import metadata

    try:
        host_rt = metadata.version(PACKAGES[runtime])
    except metadata.PackageNotFoundError:
        host_rt = None
    lat = res["latency"]
    return {"remote": remote.url, "label": LABEL, "board": res["board"], "artifact": artifact.name,
            "runtime": lat["runtime"], "runtime_version": res.get("runtime_version"),
            "runtime_matches_build": res.get("runtime_version") == host_rt,
            "threads": threads, "xnnpack": xnnpack, "delegate_applied": lat["delegate_applied"],
            "delegate_error": lat.get("delegate_error"), "warmup": warmup, "iterations": iterations,
            **{k: lat[k] for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms")},
            "python": info["python"], "seconds": seconds}
