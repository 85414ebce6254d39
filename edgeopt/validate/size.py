"""Size of an artifact: raw bytes, gzip -9 bytes (what an app store / OTA update ships), sha256."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path


def size_of_bytes(buf: bytes) -> dict:
    return {"size_bytes": len(buf), "gzip_bytes": len(gzip.compress(buf, 9, mtime=0)),
            "sha256": hashlib.sha256(buf).hexdigest()}


def size_of(path) -> dict:
    return size_of_bytes(Path(path).read_bytes())
