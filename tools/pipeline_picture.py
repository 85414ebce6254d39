"""Draw docs/pipeline.svg, the README's picture of what `edgeopt build` does (matplotlib; run it after changing the
steps): python tools/pipeline_picture.py"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

STEPS = [
    ("your data + a model", "CSV, a built-in set;\nan architecture or\nyour Keras file", "#e8f1fb"),
    ("plan", "every check that needs\nno training\n(--dry-run)", "#eef7ee"),
    ("train + compress", "prune, cluster, QAT,\ndistill (cached)", "#eef7ee"),
    ("convert", "LiteRT .tflite or ONNX;\nint8, dynamic, float16;\nfallbacks", "#eef7ee"),
    ("measure the file", "accuracy, per-class F1,\nparity, size, as typed,\ndevice instructions,\nMediaPipe, GPU",
     "#fff4e0"),
    ("verdict", "the target's budgets\n(exit 0 / 3);\nbuild dir + report.html", "#fde8e8"),
]


def main() -> None:
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "edgeopt", "font.family": "DejaVu Sans"})
    fig, ax = plt.subplots(figsize=(12, 2.6), dpi=100)
    ax.set_xlim(0, 12)
    ax.set_ylim(0, 2.6)
    ax.axis("off")
    w, gap = 1.75, 0.25
    for i, (title, body, color) in enumerate(STEPS):
        x = 0.15 + i * (w + gap)
        ax.add_patch(FancyBboxPatch((x, 0.25), w, 2.0, boxstyle="round,pad=0.02,rounding_size=0.12", fc=color,
                                    ec="#555", lw=1))
        ax.text(x + w / 2, 1.95, title, ha="center", va="center", fontsize=10.5, weight="bold")
        ax.text(x + w / 2, 1.05, body, ha="center", va="center", fontsize=8.5, linespacing=1.35)
        if i:
            ax.add_patch(FancyArrowPatch((x - gap + 0.02, 1.25), (x - 0.02, 1.25), arrowstyle="-|>",
                                         mutation_scale=12, color="#333"))
    ax.text(6.0, 0.08, "the target profile (targets/*.yaml) decides the quantization, runtime, threads, delegates, "
                       "emulated CPU and budgets", ha="center", va="center", fontsize=8.5, color="#444")
    fig.tight_layout(pad=0.2)
    out = Path(__file__).resolve().parent.parent / "docs" / "pipeline.svg"
    fig.savefig(out, format="svg", metadata={"Date": None})
    print(out)


if __name__ == "__main__":
    main()
