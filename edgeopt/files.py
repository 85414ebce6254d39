"""Reading a user's file safely: a regular file (never a device, FIFO or directory), no larger than a cap.

Imports nothing but the standard library and errors.py: the emulated arm64 guest, which has only numpy and the
runtimes, reads model files through this too.
"""
from __future__ import annotations

from pathlib import Path

from .errors import SpecError


def regular_file(path, what: str, error=SpecError) -> Path:
    """``path`` if it is an existing regular file, else a one-line ``error`` (directories, devices, FIFOs)."""
    import stat

    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{path}: file not found. Fix: check the path.") from None
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror}). Fix: check the path and permissions.") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a directory, not a {what}. Fix: give the file itself.")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file. Fix: give a {what}.")
    return path


def read_capped(path: Path, limit: int, what: str, error=SpecError) -> bytes:
    """The bytes of a regular file no larger than ``limit`` bytes, or a one-line ``error``. Devices, FIFOs and
    directories are refused before reading (``/dev/zero`` would never end)."""
    path = regular_file(path, what, error)
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror}). Fix: check the path and permissions.") from None
    if len(raw) > limit:
        raise error(f"{path}: larger than {limit:,} bytes; not a {what}. Fix: give the right file.")
    return raw


def read_text_capped(path: Path, limit: int, what: str, error=SpecError) -> str:
    """:func:`read_capped`, decoded as UTF-8."""
    raw = read_capped(path, limit, what, error)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start}); not a {what}. Fix: give a UTF-8 {what}.") from None
