"""Cache of pass outputs, keyed by (parent key, pass, canonical config, tool versions).

An entry is the pass output's weights (``weights.npz``, in ``get_weights()`` order) plus ``meta.json`` (what the
pass measured). Every pass output has a structure that can be rebuilt from the spec (the plain architecture, or
it with the QAT variant applied), so the weights are enough. (HDF5 cannot hold QAT models: their quantizer
variables share names.) Entries are written to a temporary directory and renamed into place.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

from .data.datasets import cache_dir


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def key(parent: str, step: str, config: dict, versions: dict) -> str:
    return hashlib.sha256(canonical({"parent": parent, "step": step, "config": config,
                                     "versions": versions}).encode()).hexdigest()[:24]


class ArtifactCache:
    def __init__(self, enabled: bool = True, root: Optional[Path] = None):
        self.enabled = enabled
        self.root = Path(root) if root else cache_dir() / "artifacts"

    def load(self, k: str, rebuild: Callable[[], object]):
        """(model, meta) or None."""
        d = self.root / k
        if not self.enabled or not (d / "weights.npz").is_file() or not (d / "meta.json").is_file():
            return None
        import numpy as np

        model = rebuild()
        with np.load(d / "weights.npz") as z:
            model.set_weights([z[f"w{i}"] for i in range(len(z.files))])
        return model, json.loads((d / "meta.json").read_text())

    def save(self, k: str, model, meta: dict) -> None:
        if not self.enabled:
            return
        write_entry(self.root, k, {"weights.npz": {f"w{i}": w for i, w in enumerate(model.get_weights())}}, meta)


def write_entry(root: Path, k: str, arrays: dict[str, dict], meta: dict) -> None:
    """Write ``root/k``: each ``arrays`` item as an .npz file of named arrays, plus ``meta.json``. Written to a
    temporary directory and renamed into place, so a reader never sees half an entry."""
    import numpy as np

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{k}."))
    try:
        for name, named in arrays.items():
            np.savez(tmp / name, **named)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        final = root / k
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
