"""A tune's files for people: ``trials.csv`` and ``report.html``, the Pareto plots (dev accuracy vs cost, dev
accuracy vs size; the pick and the preset marked) drawn by matplotlib as SVG inside the page, so it reads offline
with no script or network. The HTML around the plots is a few lines of markup; no template library is needed.
"""
from __future__ import annotations

import csv
import html as _html
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


def _plot(rows: list[dict], x_key: str, x_label: str, pick_trial, preset_trial, log_x: bool) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["state"] == "complete" and r["duplicate_of"] is None and r[x_key] is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    groups = [("misses a budget", [r for r in done if not r["feasible"]], INFEASIBLE_COLOR, "x", 36),
              ("meets the budgets", [r for r in done if r["feasible"] and not r.get("pareto")], OTHER_COLOR, "o", 36),
              ("Pareto front (accuracy, cost, size)", [r for r in done if r.get("pareto")], FRONT_COLOR, "o", 48)]
    for label, rs, color, marker, size in groups:
        if rs:
            ax.scatter([r[x_key] for r in rs], [r["accuracy"] for r in rs], c=color, marker=marker, s=size,
                       label=label, zorder=2)
    same = pick_trial is not None and pick_trial == preset_trial
    for trial, color, marker, size, label in ((preset_trial, PRESET_COLOR, "D", 90, "preset (the target's own)"),
                                              (pick_trial, PICK_COLOR, "*", 420,
                                               "pick (= the preset)" if same else "pick")):
        r = next((r for r in done if r["trial"] == trial), None)
        if r is not None:
            ax.scatter([r[x_key]], [r["accuracy"]], c=color, marker=marker, s=size, label=label, zorder=3,
                       edgecolors="white", linewidths=0.8)
    if log_x and done and min(r[x_key] for r in done) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("dev accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def html(summary: dict, rows: list[dict]) -> str:
    e = _html.escape
    pick, preset = summary.get("pick"), summary.get("preset")
    pick_t = pick["trial"] if pick else None
    preset_t = preset["trial"] if preset else None
    cost_label = summary.get("cost_label", "cost")
    plots = [("Dev accuracy vs cost", _plot(rows, "cost", cost_label, pick_t, preset_t, True)),
             ("Dev accuracy vs size", _plot(rows, "size_bytes", "deployed file size (bytes)", pick_t, preset_t,
                                            True))]
    out = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
           f"<title>edgeopt tune: {e(summary['model'])} on {e(summary['target'])}</title>",
           "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
           "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}.plots{display:flex;"
           "flex-wrap:wrap;gap:1em}.plot{flex:1 1 600px}tr.pick{background:#fde0e0}tr.preset{background:#eee}"
           "</style></head><body>",
           f"<h1>edgeopt tune: {e(summary['model'])} on {e(summary['target'])}</h1>",
           f"<p><b>Pick:</b> {e(summary['why'])}.</p>",
           f"<p>{e(summary['selection'][:1].upper() + summary['selection'][1:])}. Cost: {e(cost_label)}. Objective: {e(summary['objective'])}. "
           f"{summary['evaluated']} candidates evaluated, {summary['feasible']} meet every budget; "
           f"{len(summary['pareto'])} on the Pareto front. Reference (accuracy drops are measured against it): "
           f"{e(summary['reference']['artifact'])}, dev accuracy {summary['reference']['accuracy']:.4f}.</p>"]
    pb = summary.get("pick_build")
    if pb:
        out.append(f"<p><b>The pick's build</b> ({e(pb['out'])}, {e(pb['artifact'])}): test accuracy "
                   f"{pb['test_accuracy']:.4f} (its float32 file {pb['test_accuracy_float32']:.4f}), "
                   f"{pb['size_bytes']:,} bytes, budgets {'PASSED' if pb['budgets_passed'] else 'FAILED'}.</p>")
    if summary.get("closest"):
        out.append("<p><b>No candidate meets every budget.</b> Closest: "
                   + "; ".join(e(f"{c['label']} (misses {', '.join(c['misses'])})") for c in summary["closest"])
                   + "</p>")
    out.append("<div class='plots'>")
    for title, svg in plots:
        out.append(f"<div class='plot'><h2>{e(title)}</h2>{svg}</div>")
    out.append("</div><h2>Trials</h2><table><tr>" + "".join(
        f"<th>{h}</th>" for h in ("trial", "candidate", "state", "dev accuracy", "cost", "bytes", "host p90 ms",
                                  "budgets", "note")) + "</tr>")
    for r in rows:
        cls = "pick" if r["trial"] == pick_t else "preset" if r["trial"] == preset_t else ""
        cell = lambda v, f="{}": "" if v is None else f.format(v)  # noqa: E731
        note = r["outcome"] if r["outcome"] != "evaluated" else ""
        out.append(f"<tr class='{cls}'><td>{r['trial']}</td><td>{e(r['label'])}"
                   f"{' (preset)' if r['preset'] else ''}{' (pick)' if r['trial'] == pick_t else ''}</td>"
                   f"<td>{r['state']}</td><td>{cell(r['accuracy'], '{:.4f}')}</td><td>{cell(r['cost'], '{:,.6g}')}</td>"
                   f"<td>{cell(r['size_bytes'], '{:,}')}</td><td>{cell(r['host_p90_ms'], '{:.4f}')}</td>"
                   f"<td>{'meets' if r['feasible'] else e('; '.join(r['failed_budgets'])) or '-'}</td>"
                   f"<td>{e(note)}</td></tr>")
    out += ["</table>", "<h2>Search space</h2><ul>"] + [f"<li>{e(s)}</li>" for s in summary["space"]]
    out += ["</ul></body></html>"]
    return "\n".join(out) + "\n"
