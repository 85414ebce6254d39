"""The build directory on disk: what may be replaced (only edgeopt builds, or with --force any directory but the
working directory or its parents, a home, a mount point or a version-controlled tree; and never by a build that
failed its budgets, which goes beside it), the lock two processes take, the clean-up of what killed builds left,
and the atomic replace.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Optional

from ..builddir import UNLISTED_OK
from ..errors import InputError, OutputError

STAGING_MARKER = ".edgeopt-staging"


def is_edgeopt_build(d: Path) -> bool:
    """True when ``d`` is a directory that `edgeopt build` wrote and nobody added to: its manifest.json is an
    edgeopt manifest and every entry in it is a file that manifest lists (or the manifest and reports: builddir.UNLISTED_OK)."""
    from ..files import read_capped

    try:
        data = json.loads(read_capped(d / "manifest.json", 64 << 20, "manifest"))
        listed = {a["path"] for a in data["artifacts"]} | set(UNLISTED_OK)
        if not isinstance(data.get("edgeopt_version"), str):
            return False
        return all(e.name in listed and e.is_file() and not e.is_symlink() for e in d.iterdir())
    except (InputError, ValueError, KeyError, TypeError, OSError, RecursionError):
        return False


VCS_DIRS = (".git", ".hg", ".svn", ".bzr", "_darcs", ".fslckout")
SCAN_LIMIT = 100_000  # entries looked at before a --force replace; a bigger tree is refused, not scanned forever


def _mount_points() -> list[Path]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    # field 5 is the mount point, with spaces and the like written as octal escapes
    return [Path(ln.split()[4].encode().decode("unicode_escape")) for ln in lines if len(ln.split()) > 4]


def _protected(out: Path) -> Optional[str]:
    """Why ``out`` may never be replaced, even with --force: it is (or holds) the working directory, a home
    directory or /, or is a mount point or holds one."""
    try:
        r, cwd = out.resolve(), Path.cwd().resolve()
    except OSError:
        return None
    if r == cwd or r in cwd.parents:
        return "it is the current directory or one that holds it"
    homes = {Path(h).resolve() for h in (os.environ.get("HOME"), os.path.expanduser("~")) if h}
    if r == Path(r.anchor) or any(r == h or r in h.parents for h in homes):
        return "it is or holds your home directory" if r != Path(r.anchor) else "it is the file system root"
    if any(m == r or r in m.parents for m in _mount_points() if m != Path("/")):
        return "it is or holds a mount point"
    return None


def _holds_precious(out: Path) -> Optional[str]:
    """Why a directory that is not an edgeopt build may not be replaced even with --force: a version-controlled
    tree inside it, a home directory's marks, or more than SCAN_LIMIT entries (not looked through)."""
    seen = 0
    for root, dirs, files in os.walk(out):  # symbolic links are not followed
        for name in (*dirs, *files):
            seen += 1
            if name in VCS_DIRS:
                return f"it holds a version-controlled tree ({Path(root, name)})"
            if name in (".ssh", ".gnupg", ".bashrc", ".profile"):
                return f"it holds what looks like a home directory ({Path(root, name)})"
        if seen > SCAN_LIMIT:
            return f"it holds more than {SCAN_LIMIT:,} entries (edgeopt does not look through it to replace it)"
    return None


def check_out_dir(out: Path, force: bool = False) -> None:
    """Refuse to replace anything but a new or empty directory or an edgeopt build (``force``: any other directory,
    but never one that is or holds the working directory, a home directory, /, a mount point or a
    version-controlled tree). A build replaces its output directory whole."""
    why = _protected(out)
    if why:
        raise OutputError(f"--out {out}: {why}; a build replaces its output directory whole. Fix: give a new "
                          f"directory, e.g. --out build/{out.name or 'out'}.")
    if out.is_symlink():
        raise OutputError(f"{out}: is a symbolic link; edgeopt will not replace it. Fix: choose another --out.")
    if not out.is_dir():
        return  # absent (a file there is refused by _check_writable)
    entries = list(out.iterdir())
    if not entries or is_edgeopt_build(out):
        return
    if force:
        why = _holds_precious(out)
        if why is None:
            return
        raise OutputError(f"--out {out}: {why}; edgeopt will not replace it, even with --force. Fix: give a new "
                          f"directory, e.g. --out build/{out.name or 'out'}.")
    names = ", ".join(repr(e.name) for e in sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
    raise OutputError(f"{out}: exists and is not an edgeopt build (it holds {names}); a build replaces its output "
                      f"directory whole. Fix: choose a new --out, or add --force to replace it.")


def failed_destination(out: Path) -> Path:
    """Where a build that failed its budgets goes when ``out`` already holds something: beside it, as
    ``NAME.failed`` (replaced only when it is a failed edgeopt build itself), else ``NAME.failed-2``, -3, ..."""
    for i in range(1, 1000):
        cand = out.with_name(f"{out.name}.failed" + (f"-{i}" if i > 1 else ""))
        if not cand.is_symlink() and (not cand.exists() or (cand.is_dir() and (not any(cand.iterdir())
                                                                              or is_edgeopt_build(cand)))):
            return cand
    raise OutputError(f"{out}: no free NAME.failed directory beside it. Fix: remove old {out.name}.failed-* builds.")


@contextlib.contextmanager
def dir_lock(d: Path, quiet: bool = True):
    """An exclusive flock on directory ``d`` itself (no lock file is left behind): serializes the replace of a build
    and the clean-up of stale staging directories between edgeopt processes writing in the same place. A second
    process waits, and says what it waits for."""
    import fcntl

    fd = os.open(d, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not quiet:
                print(f"[edgeopt] waiting: another edgeopt process is writing a build in {d}", file=sys.stderr,
                      flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out: Path) -> list[Path]:
    """Remove what killed builds of ``out`` left beside it: staging directories (``.NAME.tmp-PID-*``, still
    carrying edgeopt's marker file) and moved-aside old builds (``.NAME.old-PID``) whose process is gone."""
    import re

    pat = re.compile(rf"^\.{re.escape(out.name)}\.(tmp|old)-(\d+)(-.*)?$")
    removed = []
    for e in out.parent.iterdir():
        m = pat.match(e.name)
        if not m or not e.is_dir() or e.is_symlink() or _pid_alive(int(m.group(2))):
            continue
        ours = (e / STAGING_MARKER).is_file() if m.group(1) == "tmp" else is_edgeopt_build(e)
        if ours:
            shutil.rmtree(e, ignore_errors=True)
            removed.append(e)
    return removed


def replace_dir(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out`` by rename; an existing build is moved aside first and removed after."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
        try:
            os.rename(staging, out)
        except OSError:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, out)
