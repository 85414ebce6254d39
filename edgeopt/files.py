"""Reading a user's file safely: a regular file (never a device, FIFO or directory), no larger than a cap.

Imports nothing but the standard library and errors.py: the emulated arm64 guest, which has only numpy and the
runtimes, reads model files through this too.
"""
from __future__ import annotations

from pathlib import Path

from .errors import SpecError


def sha256_file(path) -> str:
    """The SHA-256 of a file, read a MiB at a time."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_size(path) -> int:
    """Bytes of the regular files under ``path`` (a file: its size; missing: 0); links are not followed, and a
    file that vanishes while it is counted is skipped."""
    p = Path(path)
    if not p.exists():
        return 0
    if p.is_file():
        return p.stat().st_size
    total = 0
    for f in p.rglob("*"):
        try:
            if f.is_file() and not f.is_symlink():
                total += f.stat().st_size
        except OSError:
            pass
    return total


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


MAX_CONFIG_BYTES = 64 << 20  # a model archive's config.json / metadata.json: a few MB for the largest real models
MAX_MEMBER_RATIO = 200  # uncompressed / compressed: weights compress ~1.1x, JSON ~10x; a bomb 1000x and more
MAX_ARCHIVE_BYTES = 16 << 30  # all members together, uncompressed


def check_archive(z, where: str, error=SpecError, max_total: int = MAX_ARCHIVE_BYTES) -> None:
    """Refuse a zip archive whose members expand past ``max_total`` bytes together or by more than
    MAX_MEMBER_RATIO each (a member over 1 MiB): read before anything is extracted or parsed."""
    total = 0
    for info in z.infolist():
        total += info.file_size
        if info.file_size > (1 << 20) and info.file_size > MAX_MEMBER_RATIO * max(info.compress_size, 1):
            raise error(f"{where}: archive member {info.filename[:100]!r} expands {info.compress_size:,} bytes to "
                        f"{info.file_size:,} (more than {MAX_MEMBER_RATIO}x); not a model file edgeopt reads. "
                        f"Fix: give the file as Keras saved it.")
    if total > max_total:
        raise error(f"{where}: the archive expands to {total:,} bytes (more than {max_total:,}). Fix: give the "
                    f"file as Keras saved it.")


def read_member(z, name: str, limit: int, where: str, error=SpecError) -> bytes:
    """Archive member ``name``, at most ``limit`` bytes whatever its header says (read with a limit)."""
    info = z.getinfo(name)
    if info.file_size > limit:
        raise error(f"{where}: {name} is {info.file_size:,} bytes uncompressed (more than {limit:,}). Fix: give the "
                    f"file as Keras saved it.")
    with z.open(info) as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise error(f"{where}: {name} is larger than {limit:,} bytes. Fix: give the file as Keras saved it.")
    return raw
