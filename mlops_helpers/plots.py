"""Plots a person would rather look at than read, and the pipeline diagrams.

matplotlib is imported inside each function so that importing the package stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_helpers import paths

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mlops_helpers.pipeline import Pipeline

ENV_COLOURS = {
    None: "#e8eef7",
    "test": "#fff3cd",
    "staging": "#fff3cd",
    "canary": "#ffe0b2",
    "production": "#d4edda",
    "prod": "#d4edda",
}
GATE_COLOUR = "#f8d7da"


def _axes(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig, new_ax = plt.subplots(figsize=size)
    return fig, new_ax


def plot_confusion_matrix(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    labels: Sequence[str] | None = None,
    *,
    title: str = "Confusion matrix",
    ax: Axes | None = None,
) -> Figure:
    """Counts of true (rows) against predicted (columns) classes, with the counts written in."""
    import numpy as np

    truth, predicted = np.asarray(y_true).tolist(), np.asarray(y_pred).tolist()
    classes = sorted(set(truth) | set(predicted))
    # counted here: importing sklearn.metrics for this costs a CI stage process about a second
    index = {name: k for k, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for actual, guess in zip(truth, predicted, strict=True):
        matrix[index[actual], index[guess]] += 1
    names = list(labels) if labels is not None and len(labels) == len(classes) else classes
    return plot_counts(matrix.tolist(), [str(n) for n in names], title=title, ax=ax)


def plot_counts(
    matrix: Sequence[Sequence[int]],
    names: Sequence[str],
    *,
    title: str = "Confusion matrix",
    ax: Axes | None = None,
) -> Figure:
    """A confusion matrix already counted: rows true, columns predicted. Light cells carry
    dark numbers and dark cells white ones, so every count reads."""
    import numpy as np

    counts = np.asarray(matrix, dtype=int)
    size = len(names)
    fig, ax = _axes(ax, (1.6 + 0.6 * size, 1.2 + 0.6 * size))
    ax.imshow(counts, cmap="Blues", vmin=0)
    ax.set_xticks(range(size), list(names), rotation=45, ha="right")
    ax.set_yticks(range(size), list(names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    limit = counts.max() / 2 if counts.size else 0
    for (i, j), count in np.ndenumerate(counts):
        colour = "white" if count > limit else "#1a1a1a"
        ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=9)
    fig.tight_layout()
    return fig


def show(figure: Figure | Path, alt: str) -> None:
    """Show a figure (or a PNG file) in the notebook with ``alt`` as its text alternative:
    an ``<img alt=...>``, the PNG (its metadata carries the alt text too) and the text alone
    where no image can be shown."""
    import base64
    import html
    import io

    from IPython.display import display

    if isinstance(figure, Path):
        data = figure.read_bytes()
    else:
        import matplotlib.pyplot as plt

        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(figure)  # shown once, here, not again by the inline backend
        data = buffer.getvalue()
    encoded = base64.b64encode(data).decode()
    bundle = {
        "text/html": f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}"/>',
        "image/png": encoded,
        "text/plain": f"[image] {alt}",
    }
    display(bundle, metadata={"image/png": {"alt": alt}}, raw=True)


def plot_metric_comparison(
    metrics: Mapping[str, Mapping[str, float]],
    *,
    thresholds: Mapping[str, float] | None = None,
    title: str = "Metrics",
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars: one group per metric, one bar per series (e.g. 'main' vs 'feature').

    ``thresholds`` draws a dashed line at each metric's limit.
    """
    import numpy as np

    series = list(metrics)
    names = sorted({m for values in metrics.values() for m in values})
    fig, ax = _axes(ax, (max(4.0, 1.4 * len(names) + 1), 3.2))
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(names))
    for i, label in enumerate(series):
        heights = [metrics[label].get(n, np.nan) for n in names]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    for j, name in enumerate(names):
        if thresholds and name in thresholds:
            ax.hlines(
                thresholds[name],
                j - 0.45,
                j + 0.45,
                colors="red",
                linestyles="--",
                label="threshold" if j == 0 else None,
            )
    ax.set_xticks(x, names)
    ax.set_title(title)
    ax.margins(y=0.2)  # room above the tallest bar for its label
    # beside the bars, never over one
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def draw_pipeline(pipeline: Pipeline, path: Path | None = None) -> Path:
    """Draw the scenario's stages left to right as a PNG under ``images/``.

    Gates are red, and each stage is tinted by the environment it touches, so the picture
    is made from the stage list itself and cannot drift from it.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    stages = pipeline.stages
    target = path or paths.images_dir() / f"{pipeline.scenario}_pipeline.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    # four boxes a row at 90 dpi: about 900 px wide, the width of a notebook's output at
    # 1366x768, so it shows at full size and its 11 pt labels read at about 14 px
    per_row = 4
    rows = (len(stages) + per_row - 1) // per_row
    fig, ax = plt.subplots(figsize=(2.4 * min(len(stages), per_row) + 0.4, 1.5 * rows + 0.7))
    ax.set_xlim(-0.2, 2.4 * min(len(stages), per_row))
    ax.set_ylim(-1.5 * (rows - 1) - 0.6, 0.7)
    ax.axis("off")
    centres = []
    for i, stage in enumerate(stages):
        row, col = divmod(i, per_row)
        x, y = col * 2.4, -row * 1.5
        colour = GATE_COLOUR if stage.gate else ENV_COLOURS.get(stage.environment, "#e8eef7")
        ax.add_patch(
            FancyBboxPatch(
                (x, y - 0.35),
                1.8,
                0.7,
                boxstyle="round,pad=0.05",
                facecolor=colour,
                edgecolor="#333333",
                linewidth=2 if stage.gate else 1,
            )
        )
        label = stage.name + ("\n(gate)" if stage.gate else "")
        if stage.environment:
            label += f"\n[{stage.environment}]"
        ax.text(
            x + 0.9, y, label, ha="center", va="center", fontsize=11 if len(stage.name) < 17 else 10
        )
        centres.append((x, y))
    for (x0, y0), (x1, y1) in zip(centres, centres[1:], strict=False):
        if y0 == y1:
            ax.annotate(
                "",
                (x1 - 0.05, y1),
                (x0 + 1.85, y0),
                arrowprops={"arrowstyle": "->", "color": "#333333"},
            )
        else:  # next row: down into the gap between rows, left, then down into the box
            gap = y0 - 0.75
            ax.plot(
                [x0 + 0.9, x0 + 0.9, x1 + 0.9], [y0 - 0.4, gap, gap], color="#333333", linewidth=1
            )
            ax.annotate(
                "",
                (x1 + 0.9, y1 + 0.4),
                (x1 + 0.9, gap),
                arrowprops={"arrowstyle": "->", "color": "#333333"},
            )
    ax.set_title(f"{pipeline.scenario} pipeline", fontsize=12, loc="left")
    fig.tight_layout()
    # no version stamp in the file, so the committed PNG compares equal to a fresh drawing
    fig.savefig(target, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return target
