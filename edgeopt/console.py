"""What edgeopt says while it works: one progress line to standard error unless ``quiet`` (``-q``, ``--json``).
Standard output is kept for results (``--json``), so every module logs through here."""
from __future__ import annotations

import sys


def log(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)
