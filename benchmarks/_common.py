"""Shared by the benchmarks: arguments and writing results as JSON plus a Markdown table."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def parse_args(default_models: list[str], doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=default_models)
    ap.add_argument("--out", default=str(RESULTS))
    return ap.parse_args()


def write_results(out: str, name: str, rows: list[dict], markdown: str) -> None:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    (d / f"{name}.md").write_text(markdown)
    print(markdown)
