"""Everything edgeopt downloads or sets up, in one list: ``edgeopt cache list`` (what, where, how big) and
``edgeopt cache clean`` (remove some or all of it).

Every entry lives under ``$EDGEOPT_CACHE_DIR`` (default ``~/.cache/edgeopt``) unless its own variable points it
elsewhere (``EDGEOPT_CLIENT_DIR``, ``EDGEOPT_EMULATOR_DIR``, ``EDGEOPT_GPU_DIR``, to share one set-up between
caches). ``clean`` removes only what edgeopt wrote: a cache directory under the cache root by its fixed name, and an
environment only when it carries the ``ready.json`` edgeopt wrote when it set it up; a directory a variable points
at is never removed itself, only the environment edgeopt made inside it.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .files import tree_size


@dataclass(frozen=True)
class Entry:
    name: str
    what: str
    path: Path
    made_by_edgeopt: bool  # a fixed directory under the cache root, or an environment with edgeopt's ready.json

    @property
    def exists(self) -> bool:
        return self.path.exists()


def entries() -> list[Entry]:
    from .clients import env as clients
    from .data.datasets import cache_dir
    from .emulator.env import root as emulator_root
    from .gpu.env import root as gpu_root

    c = cache_dir()
    out = [Entry("artifacts", "pass outputs (trained and compressed weights), keyed by lineage", c / "artifacts",
                 True),
           Entry("counts", "instruction counts per file and CPU", c / "counts", True),
           Entry("datasets", "downloaded data sets (when EDGEOPT_DATA_PATH has no copy)", c / "datasets", True),
           Entry("teachers", "the all-MiniLM-L6-v2 teacher's files, when its package is not installed", c / "teachers", True),
           Entry("data", "data given in Python (spec_from_data), as CSV files", c / "data", True)]
    for name in clients.ENVS:
        d = clients.root() / name
        out.append(Entry(f"clients/{name}", f"the {clients.ENVS[name]['package']} environment "
                                            f"({clients.ENVS[name]['role']})", d, (d / "ready.json").is_file()))
    em = emulator_root("arm64")
    out.append(Entry("emulator", "the arm64 emulator's sysroot, wheels and instruction counter", em,
                     (em / "ready.json").is_file()))
    g = gpu_root()
    out.append(Entry("gpu", "Mesa's software Vulkan driver (the GPU checks)", g, (g / "ready.json").is_file()))
    return out


def listing() -> list[dict]:
    return [{"name": e.name, "what": e.what, "path": str(e.path), "exists": e.exists,
             "size_bytes": tree_size(e.path)} for e in entries()]


def clean(names: tuple[str, ...]) -> list[dict]:
    """Remove the named entries ("clients" names both environments); what was removed, with its size."""
    from .errors import InputError

    known = entries()
    chosen = []
    for n in names:
        hit = [e for e in known if e.name == n or e.name.startswith(n + "/")]
        if not hit:
            raise InputError(f"edgeopt cache clean {n!r}: not a cache entry. Fix: give one of "
                             f"{', '.join(sorted({e.name.split('/')[0] for e in known}))}, or --all.")
        chosen += [e for e in hit if e not in chosen]
    done = []
    for e in chosen:
        if not e.exists:
            continue
        if not e.made_by_edgeopt:  # an environment directory without edgeopt's ready.json: not provably ours
            raise InputError(f"{e.path}: has no ready.json from an edgeopt setup, so edgeopt did not make it (or its "
                             f"setup never finished). Fix: remove it yourself if it is yours to remove.")
        size = tree_size(e.path)
        if e.path.is_dir() and not e.path.is_symlink():
            shutil.rmtree(e.path)
        else:
            e.path.unlink()
        done.append({"name": e.name, "path": str(e.path), "size_bytes": size})
    return done
