"""Cache of pass outputs, keyed by (parent key, pass, canonical config, tool versions), verified on load.

An entry is the pass output's weights (``weights.npz``, in ``get_weights()`` order) plus ``meta.json`` (what the
pass measured and the SHA-256 of every array file). Every pass output has a structure that can be rebuilt from the
spec (the plain architecture, or it with the QAT variant applied), so the weights are enough. (HDF5 cannot hold QAT
models: their quantizer variables share names.)

Entries are written to a temporary directory and renamed into place, so a reader never sees half an entry. On load
an entry is checked: the files' checksums, that the arrays load, are finite and fit the model's weights. A damaged
entry is reported in one line, removed and recomputed: a truncated, emptied, NaN-filled or swapped file can never
reach a build. Two processes sharing the cache may compute the same entry; the first rename wins and the second
process keeps the entry already there.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from .errors import BadEntry
from .data.datasets import cache_dir, sha256_file

FORMAT = 2  # meta.json carries "_files": {name: sha256}; entries without it are recomputed


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def key(parent: str, step: str, config: dict, versions: dict) -> str:
    return hashlib.sha256(canonical({"parent": parent, "step": step, "config": config,
                                     "versions": versions}).encode()).hexdigest()[:24]


def read_entry(root: Path, k: str, names: tuple[str, ...]) -> Optional[tuple[dict, dict]]:
    """({file name: {array name: array}}, meta) of a verified entry, None when absent. A damaged entry is
    reported on stderr in one line and removed, and None is returned (the caller recomputes it)."""
    d = root / k
    if not d.is_dir():
        return None
    import numpy as np

    try:
        try:
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise BadEntry(f"is damaged (meta.json unreadable ({type(e).__name__}))") from None
        files = meta.get("_files") if isinstance(meta, dict) else None
        if meta.get("_format") != FORMAT or not isinstance(files, dict):
            raise BadEntry("is from an older edgeopt (no checksums)")
        out = {}
        for name in names:
            path = d / name
            if not path.is_file():
                raise BadEntry(f"is damaged ({name} is missing)")
            if sha256_file(path) != files.get(name):
                raise BadEntry(f"is damaged ({name} does not match its checksum (truncated or replaced))")
            try:
                with np.load(path, allow_pickle=False) as z:
                    arrays = {n: z[n] for n in z.files}
            except Exception as e:
                raise BadEntry(f"is damaged ({name} does not load ({type(e).__name__}))") from None
            for n, a in arrays.items():
                if a.dtype.kind == "f" and not np.isfinite(a).all():
                    raise BadEntry(f"is damaged ({name}:{n} holds non-finite values)")
            out[name] = arrays
        return out, meta
    except BadEntry as e:
        discard(root, k, str(e))
        return None


def discard(root: Path, k: str, state: str) -> None:
    """Report in one line (``state``: what is wrong with it) and remove an entry, so that it is recomputed."""
    print(f"[edgeopt] cache entry {root / k} {state}; discarded, recomputing", file=sys.stderr, flush=True)
    gone = root / f".{k}.bad-{os.getpid()}"
    try:
        os.rename(root / k, gone)  # atomic: no reader sees a half-deleted entry
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)


class ArtifactCache:
    def __init__(self, enabled: bool = True, root: Optional[Path] = None):
        self.enabled = enabled
        self.root = Path(root) if root else cache_dir() / "artifacts"

    def load(self, k: str, rebuild: Callable[[], object]):
        """(model, meta), or None when absent or damaged (then it is removed)."""
        if not self.enabled:
            return None
        got = read_entry(self.root, k, ("weights.npz",))
        if got is None:
            return None
        arrays, meta = got
        z = arrays["weights.npz"]
        model = rebuild()
        shapes = [tuple(w.shape) for w in model.get_weights()]
        try:
            weights = [z[f"w{i}"] for i in range(len(z))]
        except KeyError:
            weights = None
        if weights is None or [tuple(w.shape) for w in weights] != shapes:
            discard(self.root, k, "is damaged (weights.npz does not fit the model's weights)")
            return None
        model.set_weights(weights)
        return model, {k2: v for k2, v in meta.items() if not k2.startswith("_")}

    def save(self, k: str, model, meta: dict) -> None:
        if not self.enabled:
            return
        write_entry(self.root, k, {"weights.npz": {f"w{i}": w for i, w in enumerate(model.get_weights())}}, meta)


def write_entry(root: Path, k: str, arrays: dict[str, dict], meta: dict) -> None:
    """Write ``root/k``: each ``arrays`` item as an .npz file of named arrays, plus ``meta.json`` with their
    checksums. Written to a temporary directory and renamed into place; when another process put the entry there
    first, its entry is kept. The cache is optional: an entry that cannot be written (a full disk, no permission)
    is skipped with a warning, and the work goes on without it."""
    try:
        _write_entry(root, k, arrays, meta)
    except OSError as e:
        print(f"[edgeopt] warning: the cache entry {k[:12]} could not be written under {root} "
              f"({e.strerror or e}); going on without it (EDGEOPT_CACHE_DIR chooses where the cache is)",
              file=sys.stderr, flush=True)


def check_cache_dir() -> None:
    """Refuse, before any work, a cache directory that is not a directory (EDGEOPT_CACHE_DIR=/dev/null, a file)."""
    from .errors import InputError

    root = cache_dir()
    p = root
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise InputError(f"EDGEOPT_CACHE_DIR={root}: {p} is not a directory, so nothing can be cached under it. Fix: "
                         f"point EDGEOPT_CACHE_DIR at a directory (or unset it for ~/.cache/edgeopt).")


def _write_entry(root: Path, k: str, arrays: dict[str, dict], meta: dict) -> None:
    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{k}.tmp-{os.getpid()}-"))
    try:
        sums = {}
        for name, named in arrays.items():
            np.savez(tmp / name, **named)
            sums[name] = sha256_file(tmp / name)
        (tmp / "meta.json").write_text(json.dumps({**meta, "_format": FORMAT, "_files": sums}, indent=1,
                                                  default=str))
        final = root / k
        try:
            os.rename(tmp, final)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # another process wrote the same entry first (same key: same content); keep it
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
