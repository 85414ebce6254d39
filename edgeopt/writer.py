"""The one writer of what people read: Markdown for report.md, the same Markdown rendered to HTML for report.html,
and numbers formatted for people.

- Tables are written only by :func:`table`, which escapes every cell (a ``|`` in a label, a line break in a text),
  so a cell can never break its row; text that comes from data (labels, texts, names, error messages) goes through
  :func:`esc` (or :func:`code` for a path or an op name), so it can never become markup.
- HTML is the Markdown parsed by markdown-it-py (CommonMark with GitHub's tables) with raw HTML off: the page says
  exactly what report.md says, and anything in the data that looks like a tag is shown as text.
- Numbers: percentages and points (a difference of percentages, signed, with "gain"/"drop" said in words where
  the sign carries meaning), sizes in KB/MB (1 KB = 1,000 bytes), instruction counts in k/M, milliseconds.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|#!~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def esc(text) -> str:
    """``text`` as literal Markdown text: every character that could start markup is backslash-escaped (an
    underscore inside a word, as in model_int8, cannot, and is left as it is), and line breaks become spaces (a
    table cell or a list item stays one line)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def code(text) -> str:
    """``text`` as inline code: a backtick fence longer than any run of backticks inside it; ``|`` escaped (a GitHub
    table splits on it even inside code, and drops the backslash when it renders)."""
    s = " ".join(str(text).split()).replace("|", "\\|")
    run = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def bold(md: str) -> str:
    return f"**{md}**"


def table(header: Iterable[str], rows: Iterable[Iterable]) -> list[str]:
    """A Markdown table. Cells are Markdown (already escaped with :func:`esc` where they hold data); a ``|`` that is
    not already escaped and every line break are neutralised here, so no cell can break its row. None is "-"."""
    def cell(v) -> str:
        s = "-" if v is None else str(v)
        s = " ".join(s.split())
        return re.sub(r"(?<!\\)\|", r"\\|", s) or " "

    head = [cell(h) for h in header]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        r = list(r)
        if len(r) != len(head):
            raise ValueError(f"table row has {len(r)} cells, header {len(head)}: {r!r}")
        out.append("| " + " | ".join(cell(v) for v in r) + " |")
    return out


# ------------------------------------------------------------------------------------------------ numbers
def pct(x, digits: int = 2) -> str:
    """0.8996753 -> '89.97%'."""
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def points(diff, digits: int = 2) -> str:
    """A difference of two fractions in percentage points, signed: 0.001948 -> '+0.19 points'."""
    return "n/a" if diff is None else f"{100 * diff:+.{digits}f} points"


def drop(d, digits: int = 2) -> str:
    """A drop (before - after), said in words: 0.0019 -> '0.19 points lower', -0.0019 -> '0.19 points higher (a
    gain)', 0 -> 'no change'."""
    if d is None:
        return "n/a"
    v = round(100 * d, digits)
    if v == 0:
        return "no change"
    return f"{abs(v):.{digits}f} points lower" if v > 0 else f"{abs(v):.{digits}f} points higher (a gain)"


def versus(d, what: str) -> str:
    """'0.19 points lower than WHAT', or 'the same as WHAT'."""
    said = drop(d)
    return f"the same as {what}" if said == "no change" else f"{said} than {what}"


def size(n: Optional[int], exact: bool = False) -> str:
    """Bytes for people (1 KB = 1,000 B): 574520 -> '575 KB' ('575 KB (574,520 B)' with exact)."""
    if n is None:
        return "n/a"
    def three(v: float) -> str:  # three significant figures at most
        return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"

    if n < 1000:
        s = f"{n} B"
    elif n < 1_000_000:
        s = f"{three(n / 1e3)} KB"
    elif n < 1_000_000_000:
        s = f"{three(n / 1e6)} MB"
    else:
        s = f"{three(n / 1e9)} GB"
    return f"{s} ({n:,} B)" if exact and n >= 1000 else s


def count(n: Optional[float], unit: str = "") -> str:
    """A count in k/M/G: 5000000 -> '5.00 M', 23737 -> '23.7 k'."""
    if n is None:
        return "n/a"
    n = float(n)
    for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= div:
            v = n / div
            s = f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 100 else f"{v:.0f}"
            return f"{s}{suffix}" + (f" {unit}" if unit else "")
    return f"{n:.0f}" + (f" {unit}" if unit else "")


def ms(x, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f} ms"


def budget_value(name: str, value, unit: str) -> str:
    """A budget's limit or measured value, formatted by its unit (a text value, e.g. "not measured", as it is)."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return esc(value)
    rest = ""
    for base in ("fraction", "instructions"):  # "fraction (accuracy, ...)", "instructions (cortex-a76)"
        if unit.startswith(base + " "):
            unit, rest = base, " " + esc(unit[len(base) + 1:])
    if unit == "fraction":
        return (drop(value) if "drop" in name else pct(value)) + rest
    if unit == "bytes":
        return size(int(value), exact=True)
    if unit == "instructions":
        return count(value, "instructions") + rest
    if unit.startswith("ms"):
        return ms(value, 4) + unit[2:]
    if unit == "points":
        return f"{value:.2f} points"
    return f"{value:.4g} {esc(unit)}".strip()


# --------------------------------------------------------------------------------------------------- HTML
CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222;"
       "line-height:1.45}table{border-collapse:collapse;font-size:13px;margin:.6em 0}td,th{border:1px solid #ccc;"
       "padding:3px 7px;text-align:left;vertical-align:top}th{background:#f3f3f3}code{background:#f5f5f5;"
       "padding:0 3px;border-radius:3px}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:12.5px}"
       "pre code{background:none;padding:0}h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;"
       "margin-top:1.8em}figure{margin:1em 0;display:inline-block;vertical-align:top}figcaption{font-size:13px;"
       "color:#444;max-width:620px}.plots{display:flex;flex-wrap:wrap;gap:1.5em}svg{max-width:100%;height:auto}")


def _markdown():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")  # raw HTML off: data can never become markup


def html_fragment(markdown: str) -> str:
    """``markdown`` as HTML, the way report.html renders it (a notebook's display of a build)."""
    return _markdown().render(markdown)


def to_html(markdown: str, title: str, figures: Optional[list[tuple[str, str, str]]] = None,
            figures_after: str = "## Budgets") -> str:
    """report.html: ``markdown`` rendered by markdown-it-py (raw HTML off, so data can never become markup), with
    ``figures`` ((id, caption, inline SVG) drawn by matplotlib) in a "Plots" section placed before the heading
    ``figures_after``. Self-contained: no script, no stylesheet or font from the network."""
    import html

    md = _markdown()
    plots = ""
    if figures:
        items = "".join(f"<figure id='{html.escape(fid, quote=True)}' class='plot'>{svg}<figcaption>"
                        f"{md.renderInline(caption)}</figcaption></figure>" for fid, caption, svg in figures)
        plots = f"<h2 id='plots'>Plots</h2><div class='plots'>{items}</div>"
    body = md.render(markdown)
    if plots:
        anchor = md.render(figures_after).strip()
        body = body.replace(anchor, plots + anchor, 1) if anchor in body else body + plots
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")
