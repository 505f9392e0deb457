"""The learning-curve figure of a training run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from curriculum_rl.atomic import write_png_atomic


def plot_learning_curve(run_dir: str | Path, png: str | Path, window: int = 64) -> Path:
    """Episode return (moving average over ``window`` episodes) and the held-out gain over
    uniform, against timesteps, from a run's ``episodes.csv`` and ``eval.csv``."""
    from matplotlib.figure import Figure  # not pyplot: the process's backend is left alone

    run_dir, png = Path(run_dir), Path(png)
    with (run_dir / "episodes.csv").open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{run_dir / 'episodes.csv'} has no episodes yet")
    steps = np.array([int(r["timesteps"]) for r in rows])
    returns = np.array([float(r["return"]) for r in rows])
    kernel = min(window, len(returns))
    smooth = np.convolve(returns, np.ones(kernel) / kernel, mode="valid")
    evals = []
    if (run_dir / "eval.csv").exists():
        with (run_dir / "eval.csv").open() as f:
            evals = [(int(r["timesteps"]), float(r["gain"])) for r in csv.DictReader(f)]
    fig = Figure(figsize=(11 if evals else 6, 4), dpi=110, layout="tight")
    axes = fig.subplots(1, 2 if evals else 1, squeeze=False)
    ax = axes[0, 0]
    ax.plot(steps, returns, ".", alpha=0.15, ms=3, label="episode")
    ax.plot(steps[kernel - 1 :], smooth, lw=2, label=f"mean of {kernel}")
    ax.set(
        xlabel="timesteps (decisions)",
        ylabel="episode return (J_start - J_end - emphasis cost)",
        title="PPO training",
    )
    ax.legend()
    if evals:
        ax = axes[0, 1]
        ax.plot(*zip(*evals, strict=True), "o-")
        ax.axhline(0, color="gray", lw=1)
        ax.set(
            xlabel="timesteps", ylabel="gain over uniform (IQM of G_m)", title="held-out evaluation"
        )
    return write_png_atomic(png, fig)
