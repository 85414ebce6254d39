"""A tune's files for people: ``trials.csv`` and ``report.html``, the Pareto plots (dev accuracy vs cost, dev
accuracy vs size; the pick and the preset marked) drawn by matplotlib as SVG inside the page, so it reads offline
with no script or network. The HTML around the plots is a few lines of markup; no template library is needed.
"""
from __future__ import annotations

import csv
import io

PICK_COLOR = "#d62728"  # the pick's star (tests look for it in a screenshot of the rendered page)
PRESET_COLOR = "#1f1f1f"
FRONT_COLOR = "#1f77b4"
OTHER_COLOR = "#9ecae1"
INFEASIBLE_COLOR = "#bdbdbd"

CSV_FIELDS = ("trial", "state", "outcome", "label", "preset", "pareto", "feasible", "accuracy", "macro_f1",
              "accuracy_drop", "cost", "cost_label", "size_bytes", "gzip_bytes", "host_p90_ms",
              "deployed_quantization", "failed_budgets", "duplicate_of", "worker", "seconds")


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "failed_budgets": "; ".join(r.get("failed_budgets") or [])})
    return buf.getvalue()


def front_2d(points: list[tuple[float, float, int]]) -> list[int]:
    """The trials on the 2-D Pareto front of (x to minimise, accuracy to maximise): none has another point at most
    as costly and at least as accurate, better in one. ``points``: (x, accuracy, trial). Sorted by x."""
    front, best = [], float("-inf")
    for x, acc, t in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append(t)
            best = acc
    return front


def _plot(rows: list[dict], x_key: str, x_label: str, pick_trial, preset_trial, fmt) -> str:
    """Dev accuracy against one cost (``x_key``): every candidate, this plot's own 2-D front among the candidates
    that meet the budgets drawn as a line, the pick and the preset marked; the legend outside the axes."""
    from ..plots import pad_limits, pyplot, spans_decades, svg_of

    plt = pyplot()
    done = [r for r in rows if r["state"] == "complete" and r["duplicate_of"] is None and r[x_key] is not None
            and r["accuracy"] is not None]
    fig, ax = plt.subplots(figsize=(5.3, 4.4), dpi=100)
    feas = [r for r in done if r["feasible"]]
    on_front = front_2d([(r[x_key], r["accuracy"], r["trial"]) for r in feas])
    front = sorted((r for r in feas if r["trial"] in on_front), key=lambda r: r[x_key])
    groups = [("misses a budget", [r for r in done if not r["feasible"]], INFEASIBLE_COLOR, "x", 36),
              ("meets the budgets", [r for r in feas if r["trial"] not in on_front], OTHER_COLOR, "o", 36)]
    for label, rs, color, marker, size in groups:
        if rs:
            ax.scatter([r[x_key] for r in rs], [r["accuracy"] for r in rs], c=color, marker=marker, s=size,
                       label=label, zorder=2)
    if front:
        xs, ys = [r[x_key] for r in front], [r["accuracy"] for r in front]
        ax.step(xs, ys, where="post", color=FRONT_COLOR, lw=1.5, zorder=2)
        ax.scatter(xs, ys, c=FRONT_COLOR, s=48, label=f"front of this plot ({len(front)})", zorder=3)
    same = pick_trial is not None and pick_trial == preset_trial
    for trial, color, marker, size, label in ((preset_trial, PRESET_COLOR, "D", 90, "preset (the target's own)"),
                                              (pick_trial, PICK_COLOR, "*", 420,
                                               "pick (= the preset)" if same else "pick")):
        r = next((r for r in done if r["trial"] == trial), None)
        if r is not None:
            # under the candidates' own dots (zorder 1): a mark never hides the point it marks
            ax.scatter([r[x_key]], [r["accuracy"]], c=color, marker=marker, s=size, label=label, zorder=1,
                       edgecolors="white", linewidths=0.8)
    if done:
        xs = [r[x_key] for r in done]
        if spans_decades(xs):
            ax.set_xscale("log")
            ax.set_xlim(min(xs) / 1.3, max(xs) * 1.3)
        else:
            pad = 0.08 * max(max(xs) - min(xs), min(xs) * 0.1)
            ax.set_xlim(min(xs) - pad, max(xs) + pad)
            ax.xaxis.set_major_locator(plt.MaxNLocator(5))
        pad_limits(ax, [r["accuracy"] for r in done], "y", 0, 1.0)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: fmt(v) if v > 0 else ""))
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.1f}%"))
    ax.set_xlabel(x_label)
    ax.set_ylabel("dev accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    fig.tight_layout()
    return svg_of(fig)


def html(summary: dict, rows: list[dict]) -> str:
    """The tune's report.html: Markdown through the one writer (edgeopt/writer.py), two plots, the trials table."""
    from .. import writer as w
    from ..writer import esc

    pick, preset = summary.get("pick"), summary.get("preset")
    pick_t = pick["trial"] if pick else None
    preset_t = preset["trial"] if preset else None
    cost_label = summary.get("cost_label", "cost")
    instructions = "instruction" in cost_label
    cost_fmt = w.count if instructions else (lambda v: w.ms(v, 3))
    title = f"edgeopt tune: {summary['model']} on {summary['target']}"
    sel = summary["selection"]  # edgeopt's own sentence, written in Markdown (it is not data: not escaped)
    md = [f"# {esc(title)}", "", f"**Pick:** {esc(summary['why'])}.", "",
          f"{sel[:1].upper() + sel[1:]}. Cost: {esc(cost_label)}. Objective: {esc(summary['objective'])}. "
          f"{summary['evaluated']} candidates evaluated, {summary['feasible']} meet every budget; "
          f"{len(summary['pareto'])} on the Pareto front over (accuracy, cost, size); each plot draws its own "
          f"two-figure front. Reference (accuracy drops are measured against it): "
          f"{w.code(summary['reference']['artifact'])}, dev accuracy {w.pct(summary['reference']['accuracy'])}."]
    pb = summary.get("pick_build")
    if pb:
        md += ["", f"**The pick's build** ({w.code(pb['out'])}, {w.code(pb['artifact'])}): test accuracy "
                   f"{w.pct(pb['test_accuracy'])} (its float32 file {w.pct(pb['test_accuracy_float32'])}), "
                   f"{w.size(pb['size_bytes'], exact=True)}, budgets {'PASSED' if pb['budgets_passed'] else 'FAILED'}."]
    if summary.get("closest"):
        md += ["", "**No candidate meets every budget.** Closest: "
               + "; ".join(esc(f"{c['label']} (misses {', '.join(c['misses'])})") for c in summary["closest"])]
    trows = []
    for r in rows:
        mark = " **(pick)**" if r["trial"] == pick_t else ""
        trows.append([r["trial"], esc(r["label"]) + (" (preset)" if r["preset"] else "") + mark, r["state"],
                      w.pct(r["accuracy"]) if r["accuracy"] is not None else "",
                      cost_fmt(r["cost"]) if r["cost"] is not None else "",
                      w.size(r["size_bytes"]) if r["size_bytes"] is not None else "",
                      f"{r['host_p90_ms']:.4f}" if r["host_p90_ms"] is not None else "",
                      "meets" if r["feasible"] else esc("; ".join(r["failed_budgets"])) or "-",
                      esc(r["outcome"]) if r["outcome"] != "evaluated" else ""])
    md += ["", "## Trials", "", *w.table(["trial", "candidate", "state", "dev accuracy", "cost", "size",
                                          "host p90 ms", "budgets", "note"], trows),
           "", "## Search space", "", *[f"- {esc(x)}" for x in summary["space"]]]
    figures = [("plot-cost", "Dev accuracy vs cost", _plot(rows, "cost", cost_label, pick_t, preset_t, cost_fmt)),
               ("plot-size", "Dev accuracy vs size", _plot(rows, "size_bytes", "deployed file size", pick_t,
                                                           preset_t, lambda v: w.size(int(v))))]
    return w.to_html("\n".join(md), title, figures, figures_after="## Trials")
