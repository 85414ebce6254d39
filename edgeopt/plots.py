"""The build report's plots, drawn by matplotlib (Agg) as inline SVG for report.html: training curves of every
training pass (from the per-epoch history in the manifest), per-class F1 (a tagger: per entity type), a confusion
picture of the weakest classes, the artifacts' accuracy against size and device cost, and the robustness figures.

Each function takes a manifest (a dict) and returns ``(id, caption, svg)`` or None when the manifest has nothing to
draw; :func:`figures` returns every one that applies. Numbers on axes are formatted for people (KB/MB, k/M).
"""
from __future__ import annotations

import io
from typing import Optional

from . import writer

DEPLOYED = "#1f77b4"
BASELINE = "#ff7f0e"
CLIENT = "#2ca02c"
MUTED = "#9e9e9e"

Figure = tuple[str, str, str]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "svg.fonttype": "none",  # text as text: small, fast
                         "svg.hashsalt": "edgeopt"})  # same SVG ids for the same figure
    return plt


def svg_of(fig) -> str:
    plt = pyplot()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})  # no timestamp: the same build, the same file
    plt.close(fig)
    s = buf.getvalue()
    return s[s.index("<svg"):]


def spans_decades(values) -> bool:
    v = [x for x in values if x and x > 0]
    return len(v) > 1 and max(v) / min(v) >= 10


def pad_limits(ax, values, axis: str, floor: Optional[float] = None, ceil: Optional[float] = None) -> None:
    """Axis limits that fit the data with a margin: never a span so small that one example fills the plot (at
    least 2 points of a fraction), clipped to [floor, ceil]."""
    lo, hi = min(values), max(values)
    span = max(hi - lo, 0.02)
    mid = (lo + hi) / 2
    lo, hi = mid - span * 0.6, mid + span * 0.6
    if floor is not None:
        lo = max(lo, floor)
    if ceil is not None:
        hi = min(hi, ceil)
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)


def training_curves(m: dict) -> Optional[Figure]:
    runs = [r for r in m.get("passes", []) if (r.get("history") or {}).get("dev") or (r.get("history") or {}).get("loss")]
    if not runs:
        return None
    plt = pyplot()
    fig, (ax_dev, ax_loss) = plt.subplots(1, 2, figsize=(8.4, 3.2), dpi=100)
    monitor = ""
    for i, r in enumerate(runs):
        h = r["history"]
        color = plt.cm.tab10(i % 10)
        label = r.get("step") or f"pass {i + 1}"
        if h.get("dev"):
            xs = range(1, len(h["dev"]) + 1)
            ax_dev.plot(xs, h["dev"], marker="o", ms=3, color=color, label=label)
            kept = r.get("kept_epoch", r.get("best_epoch"))
            if kept:
                ax_dev.plot([kept], [h["dev"][kept - 1]], marker="*", ms=11, color=color, linestyle="none")
            monitor = h.get("monitor", monitor)
        if h.get("loss"):
            ax_loss.plot(range(1, len(h["loss"]) + 1), h["loss"], color=color, label=f"{label} (train)")
        if h.get("dev_loss"):
            ax_loss.plot(range(1, len(h["dev_loss"]) + 1), h["dev_loss"], color=color, linestyle="--",
                         label=f"{label} (dev)")
    name = {"val_accuracy": "dev accuracy", "val_entity_f1": "dev entity F1"}.get(monitor, f"dev {monitor}")
    ax_dev.set_title(f"{name} per epoch (star: the epoch kept)")
    ax_dev.set_xlabel("epoch")
    ax_dev.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    ax_loss.set_title("loss per epoch")
    ax_loss.set_xlabel("epoch")
    for ax in (ax_dev, ax_loss):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best", framealpha=0.7)
    fig.tight_layout()
    steps = ", ".join(f"{r.get('step')} ({r.get('epochs_run', len(r['history'].get('dev') or []))} epochs)"
                      for r in runs)
    return ("plot-training", f"Training curves: {writer.esc(steps)}.", svg_of(fig))


def per_class_f1(m: dict) -> Optional[Figure]:
    met = m.get("metrics", {})
    dep, base = met.get("per_class"), met.get("baseline_per_class")
    if met.get("entities"):  # a tagger: its entity types (the headline), not its BIO tags
        types = sorted(met["entities"]["per_type"])
        names = types
        f1 = [met["entities"]["per_type"][t]["f1"] for t in types]
        bt = (met.get("baseline_entities") or {}).get("per_type", {})
        base_f1 = [bt.get(t, {}).get("f1", 0.0) for t in types]
        what = "entity type"
    elif dep:
        names, f1, base_f1 = dep["labels"], dep["f1"], (base or {}).get("f1")
        what = "class"
    else:
        return None
    order = sorted(range(len(names)), key=lambda i: f1[i])
    plt = pyplot()
    h = max(2.0, 0.16 * len(names) + 0.9)
    fig, ax = plt.subplots(figsize=(6.4, h), dpi=100)
    ys = range(len(order))
    # one LineCollection, not a Rectangle per class: a 77-class chart draws in a third of the time
    bar_pt = max(2.0, min(9.0, 0.7 * 72 * (h - 0.9) / max(len(order), 1)))
    ax.hlines(list(ys), 0, [f1[i] for i in order], color=DEPLOYED, lw=bar_pt, label="deployed file")
    if base_f1:
        ax.plot([base_f1[i] for i in order], list(ys), "|", color=BASELINE, ms=9, mew=2, label="float32 file")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([str(names[i])[:40] for i in order], fontsize=7 if len(names) > 30 else 8)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.invert_yaxis()  # the weakest at the top
    ax.set_xlabel("F1 on the test split")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, frameon=False)  # above, covering none
    ax.set_title(f"F1 per {what}, weakest first", pad=18)
    fig.tight_layout()
    return ("plot-per-class", f"F1 of each {what} on the test split ({len(names)}), the deployed file as bars, the "
                              f"float32 file as ticks.", svg_of(fig))


def weakest_confusion(m: dict, k: int = 8) -> Optional[Figure]:
    """The rows of the confusion matrix of the ``k`` weakest classes (by F1), normalised per true class, over
    those classes and the classes they are most often mistaken for."""
    dep = (m.get("metrics") or {}).get("per_class")
    if not dep or not dep.get("confusion"):
        return None
    import numpy as np

    cm = np.asarray(dep["confusion"], dtype=float)
    names, f1 = dep["labels"], dep["f1"]
    weak = [int(i) for i in np.argsort(f1, kind="stable")[:min(k, len(names))]]
    off = cm[weak].copy()
    for r, i in enumerate(weak):
        off[r, i] = 0
    cols = list(weak)
    for j in np.argsort(-off.sum(0), kind="stable"):
        if len(cols) >= min(len(names), k + 4):
            break
        if int(j) not in cols and off[:, j].sum() > 0:
            cols.append(int(j))
    rows = cm[weak]
    totals = np.maximum(rows.sum(1, keepdims=True), 1)
    shown = rows[:, cols] / totals
    rest = 1 - shown.sum(1)
    data = np.concatenate([shown, rest[:, None]], 1)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(min(9.0, 1.6 + 0.55 * data.shape[1]), 1.4 + 0.42 * len(weak)), dpi=100)
    im = ax.imshow(data, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for r in range(data.shape[0]):
        for c in range(data.shape[1]):
            if data[r, c] >= 0.005:
                ax.text(c, r, f"{100 * data[r, c]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if data[r, c] > 0.55 else "#222")
    ax.set_yticks(range(len(weak)))
    ax.set_yticklabels([str(names[i])[:28] for i in weak], fontsize=7)
    ax.set_xticks(range(data.shape[1]))
    ax.set_xticklabels([str(names[j])[:28] for j in cols] + ["all other"], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("true class")
    ax.set_xlabel("predicted class")
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02, format=plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    ax.set_title(f"Where the {len(weak)} weakest classes go (% of each true class)")
    fig.tight_layout()
    return ("plot-confusion", f"Confusion of the deployed file's {len(weak)} weakest classes on the test split: each "
                              f"row is a true class, in % of its examples.", svg_of(fig))


def artifacts(m: dict) -> Optional[Figure]:
    met = m.get("metrics", {})
    key = "entity_f1" if "entity_f1" in met else "accuracy"
    label = "entity F1" if key == "entity_f1" else "accuracy"
    pts = []  # (name, size, figure, instructions or None, color)
    dep = next((a for a in m.get("artifacts", []) if a.get("role") == "deployed"), None)
    base = next((a for a in m.get("artifacts", []) if a.get("role") == "baseline"), None)
    dc = m.get("device_cost") or {}
    if dep is None or met.get(key) is None:
        return None
    pts.append((f"deployed {dep['path']}", dep["size_bytes"], met[key], dc.get("instructions_per_inference"),
                DEPLOYED))
    base_fig = met.get("baseline_entity_f1") if key == "entity_f1" else (met.get("baseline") or {}).get("accuracy")
    if base is not None and base is not dep and base_fig is not None:
        pts.append((f"float32 {base['path']}", base["size_bytes"], base_fig, None, BASELINE))
    cf = met.get("cross_format")
    if cf and key == "accuracy":
        pts.append((f"{cf['format']} {cf['artifact']}", cf["size_bytes"], cf["accuracy"], None, CLIENT))
    for r in m.get("passes", []):  # each weight-changing pass's exported file (a recipe's steps)
        if r.get("size_bytes") and r.get("accuracy") is not None and r.get("step") not in (None, "train", "load") \
                and key == "accuracy":
            pts.append((f"after {r['step']}", r["size_bytes"], r["accuracy"], None, MUTED))
    counted = [p for p in pts if p[3]]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2 if counted else 1, figsize=(8.4 if counted else 5.0, 3.3), dpi=100, squeeze=False)
    ax = axes[0][0]
    for name, size, fig_v, _, color in pts:
        ax.scatter([size], [fig_v], s=60, color=color, label=name, zorder=3, edgecolors="white")
    if spans_decades([p[1] for p in pts]):
        ax.set_xscale("log")
    pad_limits(ax, [p[2] for p in pts], "y", 0, 1.0)
    sizes = [p[1] for p in pts]
    lo, hi = min(sizes), max(sizes)
    ax.set_xlim(lo * 0.7, hi * 1.3) if ax.get_xscale() == "log" else ax.set_xlim(lo - 0.15 * max(hi - lo, lo * 0.2),
                                                                                  hi + 0.15 * max(hi - lo, lo * 0.2))
    if ax.get_xscale() != "log":
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: writer.size(int(v)) if v > 0 else ""))
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.1f}%"))
    ax.set_xlabel("file size")
    ax.set_ylabel(f"test {label}")
    ax.set_title(f"{label} against size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.22), frameon=False)
    if counted:
        ax2 = axes[0][1]
        for name, _, fig_v, ins, color in counted:
            ax2.scatter([ins], [fig_v], s=60, color=color, label=name, zorder=3, edgecolors="white")
        pad_limits(ax2, [p[2] for p in counted], "y", 0, 1.0)
        xs = [p[3] for p in counted]
        ax2.set_xlim(min(xs) * 0.8, max(xs) * 1.2)
        ax2.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax2.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: writer.count(v)))
        ax2.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.1f}%"))
        ax2.set_xlabel(f"{dc.get('label') or 'instructions per inference'}")
        ax2.set_title(f"{label} against the device's cost ({dc.get('cpu') or 'device'})")
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    cost = (f"; device cost: {writer.count(dc['instructions_per_inference'])} instructions per inference on "
            f"{dc.get('cpu')} (counted, not a time)" if dc.get("instructions_per_inference") else "")
    return ("plot-artifacts", writer.esc(f"Test {label} of each file against its size{cost}."), svg_of(fig))


def robustness(m: dict) -> Optional[Figure]:
    r = m.get("robustness")
    if not r or not r.get("transforms"):
        return None
    fig_key = r["figure"]
    name = {"accuracy": "accuracy", "entity_f1": "entity F1"}.get(fig_key, fig_key)
    labels = ["as written"] + [t["transform"] for t in r["transforms"]]
    ours = [r["as_typed"][fig_key]] + [t[fig_key] for t in r["transforms"]]
    client = [r["as_typed"].get("client_accuracy")] + [t.get("client_accuracy") for t in r["transforms"]]
    has_client = all(v is not None for v in client)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.0), dpi=100)
    xs = list(range(len(labels)))
    # dots, not bars: the axis fits the figures (a bar cut off at 90% would exaggerate a 1-point change)
    off = 0.12 if has_client else 0
    ax.plot([x - off for x in xs], ours, "o", ms=7, color=DEPLOYED, label="edgeopt's runtime")
    if has_client:
        ax.plot([x + off for x in xs], client, "s", ms=6, color=CLIENT, label="the app's client")
    ax.axhline(ours[0], color=MUTED, lw=0.8, ls="--", zorder=0)
    vals = ours + (client if has_client else [])
    pad_limits(ax, vals, "y", 0, 1.0)
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.1f}%"))
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_ylabel(f"test {name}")
    ax.set_title(f"The deployed file as people type ({r['examples']:,} test texts each)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", framealpha=0.8)
    fig.tight_layout()
    return ("plot-robustness", f"Test {name} of the deployed file on each transform of the test split; worst: "
                               f"{writer.esc(r['worst']['transform'])}, {writer.drop(r['worst']['drop'])}.", svg_of(fig))


PLOTS = (training_curves, per_class_f1, weakest_confusion, artifacts, robustness)


def figures(m: dict) -> list[Figure]:
    return [f for f in (p(m) for p in PLOTS) if f is not None]
