"""PNG figures: learning curves and schedules per suite, and the aggregate score chart.

Figures are drawn on the Agg canvas directly (no ``pyplot``), so plotting never changes
the process-wide matplotlib backend of a user's notebook and needs no display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from curriculum_rl.atomic import write_png_atomic
from curriculum_rl.benchmark.run import Records

LINE_STYLES = ("-", "--", ":", "-.")


def write_plots(out: Path, records: Records, summary: dict) -> list[Path]:
    """Write every figure under ``out/plots``; return their paths. Each is written
    atomically: a folder read while its plots are redrawn, or one hard-linked from
    another, never sees half a file or a rewritten original."""
    folder = out / "plots"
    paths = []
    suites = list(summary["suites"])
    for suite in suites:
        runs = {c: records[suite, c] for c in summary["suites"][suite]}
        paths.append(
            write_png_atomic(folder / suite / "learning_curves.png", learning_curves(suite, runs))
        )
        paths.append(write_png_atomic(folder / suite / "schedules.png", schedules(suite, runs)))
    chart = aggregate_chart(summary["aggregate"])
    paths.append(write_png_atomic(folder / "aggregate_gain.png", chart))
    return paths


def learning_curves(suite: str, runs: dict[str, list[dict]]) -> Figure:
    """Validation J per controller, mean over seeds, against inner steps."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for i, (controller, seeds) in enumerate(runs.items()):
        curves = np.array([_floats(run["j_curve"]) for run in seeds])
        # The colour cycle has 10 colours; the line style tells apart the next tens.
        style = LINE_STYLES[i // 10 % len(LINE_STYLES)]
        with np.errstate(all="ignore"):  # a diverged run's NaN stays a gap
            ax.plot(seeds[0]["steps"], np.nanmean(curves, axis=0), style, label=controller)
    ax.set(
        title=f"{suite}: validation J (mean over {len(next(iter(runs.values())))} seeds)",
        xlabel="inner steps",
        ylabel="J = mean log val loss (lower is better)",
    )
    ax.legend(fontsize="small", ncol=2)
    return fig


def schedules(suite: str, runs: dict[str, list[dict]]) -> Figure:
    """Per-task weights and sampling probabilities of each controller (first seed)."""
    height = 2.2 * len(runs) + 0.9
    fig = Figure(figsize=(9, height))
    # Margins fixed in inches: a benchmark of 17 controllers has 34 panels here, and the
    # constrained layout took 40% of this figure's time for the same picture.
    fig.subplots_adjust(
        left=0.08, right=0.98, top=1 - 0.75 / height, bottom=0.45 / height, hspace=0.5, wspace=0.15
    )
    axes = fig.subplots(len(runs), 2, squeeze=False, sharex=True)
    for row, (controller, seeds) in enumerate(runs.items()):
        run = seeds[0]
        for col, key in enumerate(("weights", "sampling")):
            ax = axes[row, col]
            values = np.array([_floats(v) for v in run[key]])
            for k, task in enumerate(run["tasks"]):
                # A decision holds from its step until the next one: a step plot.
                ax.step(run["steps"], values[:, k], where="post", label=task)
            ax.set_title(f"{controller}: {key}", fontsize="medium")
        axes[row, 0].set_ylabel(f"seed {run['seed']}")
    axes[0, 1].legend(fontsize="x-small", ncol=2)
    for ax in axes[-1]:
        ax.set_xlabel("inner steps")
    fig.suptitle(f"{suite}: schedules", y=1 - 0.15 / height, va="top")
    return fig


def aggregate_chart(aggregate: dict) -> Figure:
    """IQM of G_m over all suites and seeds with 95% CI bars, final and best checkpoint."""
    controllers = list(aggregate)
    fig = Figure(figsize=(9, 0.4 * len(controllers) + 1.5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(controllers))
    for ax, key, title in zip(
        axes, ("gain", "gain_best"), ("final", "best-val checkpoint"), strict=True
    ):
        est = [aggregate[c][key] for c in controllers]
        mid = np.array([_finite(e["iqm"]) for e in est])
        low = np.array([_finite(e["ci"][0]) for e in est])
        high = np.array([_finite(e["ci"][1]) for e in est])
        ax.errorbar(mid, y, xerr=np.abs([mid - low, high - mid]), fmt="o", capsize=3)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set(
            title=f"G_m over uniform, {title}",
            xlabel="IQM of G_m, task-metric gain (95% CI); > 0 beats uniform",
        )
    axes[0].set_yticks(y, controllers)
    axes[0].invert_yaxis()
    return fig


def _floats(values: list[float | None]) -> list[float]:
    return [np.nan if v is None else float(v) for v in values]


def _finite(value: float | None) -> float:
    """Non-finite estimates (failed runs) are not drawn."""
    return float(value) if value is not None and np.isfinite(value) else np.nan
