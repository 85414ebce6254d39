"""The one writer: Markdown escaped, tables that cannot break, numbers for people, HTML from the same Markdown."""
from __future__ import annotations

import pytest

from edgeopt import writer as w


def test_escape_keeps_data_literal():
    assert w.esc("lost | stolen *card* <b>x</b>\nnext") == "lost \\| stolen \\*card\\* \\<b\\>x\\</b\\> next"
    assert w.esc("model_int8.tflite") == "model_int8.tflite"  # an underscore inside a word is not markup
    assert w.esc("_x_") == "\\_x\\_"
    assert w.code("a`b|c") == "``a`b\\|c``"


def test_table_cells_cannot_break_their_row():
    t = w.table(["label", "F1"], [["a | b", 0.5], ["é\nline", None]])
    assert t == ["| label | F1 |", "|---|---|", "| a \\| b | 0.5 |", "| é line | - |"]
    with pytest.raises(ValueError, match="2 cells"):
        w.table(["a"], [["x", "y"]])


@pytest.mark.parametrize("fn, value, text", [
    (w.pct, 0.8996753246753246, "89.97%"),
    (w.points, 0.001948, "+0.19 points"),
    (w.drop, 0.001948, "0.19 points lower"),
    (w.drop, -0.0019, "0.19 points higher (a gain)"),
    (w.drop, 0.0, "no change"),
    (w.size, 574520, "575 KB"),
    (w.size, 1720174, "1.72 MB"),
    (w.size, 860, "860 B"),
    (w.size, 1137, "1.14 KB"),
    (w.size, 1_121_440_000, "1.12 GB"),
    (w.count, 5000000, "5.00 M"),
    (w.count, 23737, "23.7 k"),
    (w.count, 5.03133e+06, "5.03 M"),
    (w.ms, 0.123456, "0.123 ms"),
])
def test_numbers_for_people(fn, value, text):
    assert fn(value) == text


def test_budget_values_by_unit():
    assert w.budget_value("max_accuracy_drop", -0.0019, "fraction") == "0.19 points higher (a gain)"
    assert w.budget_value("min_accuracy", 0.9, "fraction") == "90.00%"
    assert w.budget_value("max_size_bytes", 574520, "bytes") == "575 KB (574,520 B)"
    assert w.budget_value("max_instructions_per_inference", 5000000, "instructions (cortex-a76)") == \
        "5.00 M instructions (cortex-a76)"
    assert w.budget_value("max_gpu_deviation", 0.01, "max |GPU fp16 - CPU| output") == \
        "0.01 max \\|GPU fp16 - CPU\\| output"
    assert w.budget_value("x", "not measured <yet>", "") == "not measured \\<yet\\>"


def test_html_is_the_markdown_with_data_never_markup():
    md = "\n".join(["# r", "", *w.table(["label"], [[w.esc("<script>alert(1)</script> | x")]]), "", "## Budgets"])
    page = w.to_html(md, "t <x>", [("plot-a", "a *plot*", "<svg></svg>")])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; | x" in page
    assert page.index("id='plot-a'") < page.index("<h2>Budgets</h2>") and "<em>plot</em>" in page
    assert "<title>t &lt;x&gt;</title>" in page
