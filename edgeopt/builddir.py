"""A build directory as found on disk, checked before anything in it is used (``predict``, ``verify``,
``validate``): every file the manifest lists is there, a regular file inside the directory (no symbolic link, no
path that leaves it) with the SHA-256 the manifest records; nothing else is there but the reports; the deployed
artifact is one of the listed files. Whatever differs is named, exit 2.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .errors import InputError
from .files import sha256_file

MANIFEST = "manifest.json"
REPORTS = ("report.md", "report.html")  # written from the manifest, so not listed in it
UNLISTED_OK = (MANIFEST, *REPORTS)


def _plain_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def check_build_dir(d: Path):
    """The manifest of build directory ``d``, after checking every file in it against that manifest."""
    from .manifest import load_manifest

    d = Path(d)
    fix = "Fix: rebuild it, or use the directory exactly as `edgeopt build` wrote it."
    mf = d / MANIFEST
    if mf.is_symlink() or (mf.exists() and not mf.is_file()):
        raise InputError(f"{mf}: not a regular file (a link or something else); a build writes it itself. {fix}")
    if not mf.is_file():
        raise InputError(f"{d}: not a build directory (no {MANIFEST}). Fix: give a build directory or a "
                         f".tflite/.onnx file.")
    m = load_manifest(mf)
    listed = {}
    for a in m.artifacts:
        if not _plain_name(a.path):
            raise InputError(f"{mf}: artifact path {a.path[:200]!r} is not a file name inside the build directory. "
                             f"{fix}")
        listed[a.path] = a.sha256
    if not _plain_name(m.metrics.artifact) or m.metrics.artifact not in listed:
        raise InputError(f"{mf}: the deployed artifact {m.metrics.artifact[:200]!r} is not one of the files it "
                         f"lists. {fix}")
    for name, want in listed.items():
        p = d / name
        if p.is_symlink():
            raise InputError(f"{p}: is a symbolic link; a build writes regular files only. {fix}")
        if not p.exists():
            raise InputError(f"{p}: listed in {MANIFEST} but missing. {fix}")
        if not p.is_file():
            raise InputError(f"{p}: listed in {MANIFEST} but not a regular file. {fix}")
        if sha256_file(p) != want:
            raise InputError(f"{p}: its SHA-256 differs from the one {MANIFEST} records (the file was changed "
                             f"after the build). {fix}")
    for e in sorted(d.iterdir()):
        if e.name not in listed and e.name not in UNLISTED_OK:
            raise InputError(f"{e}: not listed in {mf}; edgeopt did not write it there. Fix: remove it, or use the "
                             f"directory exactly as `edgeopt build` wrote it.")
    for rep in (d / r for r in REPORTS):
        if rep.is_symlink():
            raise InputError(f"{rep}: is a symbolic link; a build writes regular files only. {fix}")
    return m


def build_of(artifact: Path) -> Optional[object]:
    """The checked manifest of the build directory ``artifact`` sits in (None when there is no manifest beside
    it); the artifact must be one of its files."""
    artifact = Path(artifact)
    d = artifact.parent
    if not (d / MANIFEST).exists() and not (d / MANIFEST).is_symlink():
        return None
    m = check_build_dir(d)
    if artifact.name not in {a.path for a in m.artifacts}:
        raise InputError(f"{artifact}: not listed in {d / MANIFEST}; it was not written by that build. Fix: use a "
                         f"file of the build as edgeopt wrote it.")
    return m
