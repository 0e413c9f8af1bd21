"""Turn ``dvc metrics/params/plots diff`` output into the Markdown a CML comment carries.

The numbers in the tables are DVC's own (``old``, ``new``, ``diff``), never recomputed,
so the report cannot disagree with ``dvc metrics diff``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# which way is better, per metric the template's evaluate stage writes
HIGHER_IS_BETTER = {"accuracy": True, "f1_macro": True, "log_loss": False}


@dataclass(frozen=True)
class Row:
    name: str
    old: Any
    new: Any
    change: Any

    @property
    def verdict(self) -> str:
        """'better', 'worse' or 'same' by the metric's direction; '' when unknown."""
        higher = HIGHER_IS_BETTER.get(self.name.split(":")[-1])
        if higher is None or not isinstance(self.change, (int, float)):
            return ""
        if round(self.change, 4) == 0:
            return "same"
        return "better" if (self.change > 0) == higher else "worse"


def direction(name: str) -> str:
    higher = HIGHER_IS_BETTER.get(name.split(":")[-1])
    return "" if higher is None else ("higher is better" if higher else "lower is better")


def summary_line(rows: list[Row]) -> str:
    """``accuracy 0.9815 -> 0.9444 (worse; higher is better), ...`` rounded for people."""
    parts = [
        f"{r.name} {_cell(r.old)} -> {_cell(r.new)}"
        + (f" ({r.verdict}; {direction(r.name)})" if r.verdict else "")
        for r in rows
    ]
    return ", ".join(parts) or "no metric changed"


@dataclass(frozen=True)
class Report:
    markdown: Path
    plot: Path
    metrics: list[Row] = field(default_factory=list)
    params: list[Row] = field(default_factory=list)


def diff_rows(diff: dict[str, dict[str, dict[str, Any]]]) -> list[Row]:
    """``{file: {name: {old, new, diff}}}`` -> one row per name (file prefix if several)."""
    rows = []
    for source, values in sorted(diff.items()):
        prefix = f"{source}:" if len(diff) > 1 else ""
        for name, entry in sorted(values.items()):
            rows.append(Row(prefix + name, entry.get("old"), entry.get("new"), entry.get("diff")))
    return rows


def _cell(value: Any, signed: bool = False) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool) and signed:
        return f"{value:+d}"
    return str(value)


def markdown_table(rows: list[Row], old: str, new: str, what: str) -> str:
    if not rows:
        return f"_no {what} changed_\n"
    judged = any(r.verdict for r in rows)
    head = f"| {what} | {old} | {new} | change |" + (" verdict |" if judged else "")
    lines = [head, "|---|---:|---:|---:|" + ("---|" if judged else "")]
    for r in rows:
        verdict = f" {r.verdict} ({direction(r.name)}) |" if r.verdict else " |"
        lines.append(
            f"| {r.name} | {_cell(r.old)} | {_cell(r.new)} | {_cell(r.change, True)} |"
            + (verdict if judged else "")
        )
    return "\n".join(lines) + "\n"


def confusion_pairs(plots: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Per revision, the (actual, predicted) pairs DVC read for the confusion plot."""
    pairs: dict[str, list[tuple[str, str]]] = {}
    for renders in plots.get("data", {}).values():
        for render in renders:
            for value in render.get("content", {}).get("data", {}).get("values", []):
                if "actual" in value and "predicted" in value:
                    pairs.setdefault(value.get("rev", "workspace"), []).append(
                        (str(value["actual"]), str(value["predicted"]))
                    )
    return pairs


def draw(
    metrics: list[Row], pairs: dict[str, list[tuple[str, str]]], old: str, new: str, path: Path
) -> Path:
    """Metric bars (target vs branch) beside a confusion matrix per revision."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from mlops_helpers.plots import plot_metric_comparison

    revs = sorted((r for r in pairs if pairs[r]), key=lambda r: r == "workspace")
    fig, axes = plt.subplots(1, 1 + len(revs), figsize=(4.2 + 3.0 * len(revs), 3.4), squeeze=False)

    def label(name: str) -> str:  # which way is better, under each metric's name
        higher = HIGHER_IS_BETTER.get(name.split(":")[-1])
        return name if higher is None else f"{name}\n({'higher' if higher else 'lower'} is\nbetter)"

    series = {
        old: {label(r.name): r.old for r in metrics if isinstance(r.old, (int, float))},
        new: {label(r.name): r.new for r in metrics if isinstance(r.new, (int, float))},
    }
    plot_metric_comparison(series, title="metrics", ax=axes[0][0])
    from mlops_helpers.plots import plot_confusion_matrix

    for ax, rev in zip(axes[0][1:], revs, strict=True):
        actual, predicted = zip(*pairs[rev], strict=True)
        label = new if rev == "workspace" else old  # DVC names the target by its git rev
        plot_confusion_matrix(list(actual), list(predicted), title=f"confusion: {label}", ax=ax)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(found: dict[str, Any], out_dir: Path, branch: str) -> Report:
    """report.md + report.png from the saved comparison (see ``project.compare``)."""
    target = found["target"]
    metrics = diff_rows(found.get("metrics", {}))
    params = diff_rows(found.get("params", {}))
    plot = draw(
        metrics, confusion_pairs(found.get("plots", {})), target, branch, out_dir / "report.png"
    )
    errors = [
        f"{e.get('name')} at {e.get('rev')}: {e.get('msg')}"
        for e in found.get("plots", {}).get("errors", [])
    ]
    text = "\n".join(
        [
            f"## DVC report: `{branch}` compared with `{target}`",
            "",
            "### Metrics (`dvc metrics diff`)",
            markdown_table(metrics, target, branch, "metric"),
            "### Parameters (`dvc params diff`)",
            markdown_table(params, target, branch, "parameter"),
            "### Plots (`dvc plots diff`)",
            f"![metrics and confusion matrices]({plot.name})",
            *(["", "Plots DVC could not read: " + "; ".join(errors)] if errors else []),
            "",
        ]
    )
    markdown = out_dir / "report.md"
    markdown.write_text(text)
    return Report(markdown, plot, metrics, params)
