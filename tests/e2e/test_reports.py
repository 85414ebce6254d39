"""What a person reads: report.md and report.html from one writer (tables escaped, numbers formatted), the HTML
page in real headless Chromium (no errors, every plot drawn), and every Python snippet run exactly as printed."""
from __future__ import annotations

import re

import pytest

from conftest import CSV_LABELS, open_in_chromium, python_snippets, run_snippet


def _tables(markdown: str) -> list[list[str]]:
    """Each Markdown table as its lines."""
    out, cur = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            out.append(cur)
            cur = []
    return out + ([cur] if cur else [])


def _cells(row: str) -> int:
    return len(re.split(r"(?<!\\)\|", row.strip())[1:-1])


def test_a_pipe_and_a_non_ascii_label_keep_every_table_whole(csv_build):
    d, m = csv_build
    md = (d / "out" / "report.md").read_text(encoding="utf-8")
    for t in _tables(md):
        assert len({_cells(r) for r in t}) == 1, "\n".join(t)  # every row has the header's number of cells
    assert "lost \\| stolen card" in md and "taux de change (€)" in md
    page = (d / "out" / "report.html").read_text(encoding="utf-8")
    assert "lost | stolen card" in page and "taux de change (€)" in page
    # numbers for people: no raw fractions or unformatted counts in the budgets
    budgets = md[md.index("## Budgets"):md.index("## Accuracy")]
    assert re.search(r"\d\.\d{5,}", budgets) is None, budgets
    assert re.search(r"\d{5,} instructions", budgets) is None
    assert re.search(r"\d [kM] instructions \(cortex-a76\)", budgets), budgets


@pytest.mark.client
def test_every_python_snippet_runs_as_printed(csv_build):
    from edgeopt.clients import env

    d, m = csv_build
    out = d / "out"
    snips = python_snippets((out / "report.md").read_text(encoding="utf-8"))
    assert len(snips) == 2 and "mediapipe" in snips[0] and "Interpreter" in snips[1]
    mp = run_snippet(snips[0], out, python=str(env.python("mediapipe-client")))
    lite = run_snippet(snips[1], out)
    labels = set(CSV_LABELS.values())
    mp_label, lite_label = mp.rsplit(" ", 1)[0], lite.rsplit(" ", 1)[0]
    assert mp_label in labels and lite_label == mp_label  # the app's library and LiteRT agree on the example
    assert 0 < float(lite.split()[-1]) <= 1  # a probability, from the logits


def test_report_html_in_headless_chromium(csv_build, tmp_path):
    d, m = csv_build
    page = d / "out" / "report.html"
    probe, dom = open_in_chromium(page, tmp_path)
    assert probe["errors"] == []
    ids = {f["id"] for f in probe["figures"]}
    assert ids == {"plot-training", "plot-per-class", "plot-confusion", "plot-artifacts", "plot-robustness"}
    for f in probe["figures"]:
        assert f["width"] > 200 and f["height"] > 100 and f["painted"] > 10, f
    md = (d / "out" / "report.md").read_text(encoding="utf-8")
    assert probe["tables"] == len(_tables(md))  # the same content: every table of report.md is in the page
    for h in re.findall(r"^## (.+)$", md, flags=re.M):
        assert h.split(" (")[0] in dom
    assert "<script" not in page.read_text(encoding="utf-8")  # self-contained and static: no script, no network
    assert not re.search(r"(src|href)=['\"]?https?:", page.read_text(encoding="utf-8"))
