"""Diagnostics of a paced run: what the controller did, and where tasks hurt each other.

Per decision: each task's weight, sampling probability, training and validation loss, the
pairwise cosines of the task gradients (an image), and two negative-transfer flags:

* ``val_rise``: the task's validation loss rose since the previous decision while the
  other tasks' (mean log) validation loss fell, ``patience`` decisions in a row;
* ``conflict``: the task's gradient points against the combined update (cosine < 0),
  ``patience`` decisions in a row.

One definition serves every place a controller runs: ``curriculum-rl run --out`` (a PNG of
:func:`diagnostics_figure`), the benchmark's TensorBoard logs (:func:`write_record`) and the
framework callbacks (:class:`DecisionLog`, streaming). numpy only; the figure imports
matplotlib when called, and the writers take any TensorBoard ``SummaryWriter``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # matplotlib is imported by diagnostics_figure only
    from matplotlib.figure import Figure

PATIENCE = 3
FLAGS = ("val_rise", "conflict")


class ScalarImageWriter(Protocol):
    """What the writers need of ``torch.utils.tensorboard.SummaryWriter``."""

    def add_scalar(self, tag: str, value: float, global_step: int) -> Any: ...

    def add_image(self, tag: str, img: Any, global_step: int, dataformats: str) -> Any: ...


def negative_transfer_flags(
    val_loss: Any, cos_update: Any | None = None, patience: int = PATIENCE
) -> dict[str, np.ndarray]:
    """(T, K) boolean flags per decision and task (see the module docstring); ``conflict``
    only when the cosines with the update are known."""
    log = np.log(np.clip(_table(val_loss), 1e-12, None))
    change = np.diff(log, axis=0, prepend=log[:1])
    k = log.shape[1]
    others = (np.nansum(change, 1, keepdims=True) - change) / max(k - 1, 1)
    with np.errstate(invalid="ignore"):
        rising = (change > 0) & (others < 0) & (k > 1)
        flags = {"val_rise": _held(rising, patience)}
        if cos_update is not None:
            flags["conflict"] = _held(_table(cos_update) < 0, patience)
    return flags


def _held(events: np.ndarray, patience: int) -> np.ndarray:
    """True where ``events`` has held for the last ``patience`` rows in a row."""
    run = np.zeros(events.shape[1], dtype=int)
    held = np.zeros_like(events, dtype=bool)
    for t, row in enumerate(events):
        run = (run + 1) * row
        held[t] = run >= patience
    return held


def _table(values: Any) -> np.ndarray:
    """JSON lists (None for non-finite) or arrays -> float array, None as NaN."""
    return np.array(values, dtype=float)


def cosine_image(cosines: Any, cell: int = 12) -> np.ndarray:
    """(K, K) cosines in [-1, 1] -> an (H, W, 3) uint8 image: red for aligned task
    gradients, blue for conflicting ones, white for orthogonal (or unknown)."""
    c = np.nan_to_num(np.clip(_table(cosines), -1, 1))
    pos, neg = np.clip(c, 0, 1), np.clip(-c, 0, 1)
    rgb = np.stack([1 - neg, 1 - pos - neg, 1 - pos], -1)
    return (np.kron(rgb, np.ones((cell, cell, 1))) * 255).round().astype(np.uint8)


class DecisionLog:
    """Streams each decision's diagnostics to a TensorBoard writer.

    Tags (under ``prefix``): ``weight/TASK``, ``sampling/TASK``, ``val_loss/TASK``,
    ``train_loss/TASK``, ``negative_transfer/val_rise/TASK``,
    ``negative_transfer/conflict/TASK`` (0 or 1), ``normalisation`` and ``scale`` (each
    when given) and the image ``grad_cos``.
    """

    def __init__(
        self,
        writer: ScalarImageWriter,
        tasks: Sequence[str],
        prefix: str = "",
        patience: int = PATIENCE,
    ) -> None:
        self.writer, self.tasks, self.prefix, self.patience = writer, list(tasks), prefix, patience
        self._val: list[np.ndarray] = []
        self._cos_update: list[np.ndarray] = []

    def write(
        self,
        step: int,
        *,
        weights: Any,
        sampling: Any,
        val_loss: Any,
        train_loss: Any | None = None,
        grad_cos: Any | None = None,
        cos_update: Any | None = None,
        normalisation: float | None = None,
        scale: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Log one decision; return its flags ((K,) bools per flag). ``normalisation``,
        the decision's loss normalisation alpha, and ``scale``, its objective scale, are
        logged as one scalar each when given."""
        self._val.append(_table(val_loss))
        if cos_update is not None:
            self._cos_update.append(_table(cos_update))
        known = self._cos_update if len(self._cos_update) == len(self._val) else None
        flags = {
            name: table[-1]
            for name, table in negative_transfer_flags(self._val, known, self.patience).items()
        }
        series = {"weight": weights, "sampling": sampling, "val_loss": val_loss}
        if train_loss is not None:
            series["train_loss"] = train_loss
        for name, flag in flags.items():
            series[f"negative_transfer/{name}"] = flag.astype(float)
        for name, values in series.items():
            for task, value in zip(self.tasks, _table(values), strict=True):
                self.writer.add_scalar(f"{self.prefix}{name}/{task}", float(value), int(step))
        for name, value in (("normalisation", normalisation), ("scale", scale)):
            if value is not None:
                self.writer.add_scalar(f"{self.prefix}{name}", float(value), int(step))
        if grad_cos is not None:
            image = cosine_image(grad_cos)
            self.writer.add_image(f"{self.prefix}grad_cos", image, int(step), dataformats="HWC")
        return flags


def write_record(writer: ScalarImageWriter, record: dict, prefix: str = "") -> None:
    """Log every decision of a run record (``RunRecord.to_dict()``)."""
    log = DecisionLog(writer, record["tasks"], prefix)
    grad_cos, cos_update = record.get("grad_cos"), record.get("cos_update")
    # absent from records made before they existed
    normalisation, scale = record.get("normalisation"), record.get("scale")
    for i, step in enumerate(record["steps"]):
        log.write(
            step,
            weights=record["weights"][i],
            sampling=record["sampling"][i],
            val_loss=record["val_loss_curve"][i],
            train_loss=record["train_loss_curve"][i],
            grad_cos=None if not grad_cos else grad_cos[i],
            cos_update=None if not cos_update else cos_update[i],
            normalisation=None if not normalisation else normalisation[i],
            scale=None if not scale else scale[i],
        )


def diagnostics_figure(record: dict) -> Figure:
    """The same diagnostics as one figure: losses, weights (times the objective scale and
    with the loss normalisation where a decision used them), sampling, the mean gradient
    cosine matrix over the run, and the flags per decision."""
    from matplotlib.figure import Figure

    tasks, steps = record["tasks"], record["steps"]
    fig = Figure(figsize=(13, 7.5), layout="constrained")
    axes = fig.subplots(2, 3)
    curves = [
        (_table(record["val_loss_curve"]), "validation loss", "log"),
        (_table(record["train_loss_curve"]), "training loss", "log"),
        (*_applied_weights(record), "linear"),
        (_table(record["sampling"]), "sampling probability", "linear"),
    ]
    for ax, (values, label, yscale) in zip(axes.flat, curves, strict=False):
        for k, task in enumerate(tasks):
            ax.plot(steps, values[:, k], label=task)
        ax.set(title=label, xlabel="optimisation steps", yscale=yscale)
    axes[0, 0].legend(fontsize="small")
    _normalisation_line(axes[0, 2], record)
    _cosine_panel(fig, axes[1, 1], record)
    _flag_panel(axes[1, 2], record)
    return fig


def _applied_weights(record: dict) -> tuple[np.ndarray, str]:
    """The weights the objective applied and the panel's title: times the decision's
    objective scale where any decision set one, since a latch that holds the objective's
    value changes the scale, not the mean-one weights."""
    weights, scale = _table(record["weights"]), record.get("scale")  # absent before it
    if not scale or all(s == 1 for s in scale):
        return weights, "loss weight"
    return weights * _table(scale)[:, None], "loss weight x objective scale"


def _normalisation_line(ax: Any, record: dict) -> None:
    """The decision's loss normalisation alpha on the weight panel's right axis, where any
    decision used one: the step objective is then ``w L / L^alpha``, so the weights alone
    no longer tell a task's emphasis."""
    alpha = record.get("normalisation")  # absent from records made before it
    if not alpha or not any(alpha):
        return
    twin = ax.twinx()
    twin.plot(record["steps"], alpha, color="black", linestyle="--", label="alpha")
    twin.set(ylim=(-0.05, 1.05), ylabel="loss normalisation alpha (dashed)")


def _cosine_panel(fig: Any, ax: Any, record: dict) -> None:
    tasks = record["tasks"]
    cos = record.get("grad_cos")
    if not cos:
        ax.set(title="gradient cosines: not measured")
        ax.axis("off")
        return
    mean = np.nanmean(_table(cos), 0)
    image = ax.imshow(mean, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set(title="task-gradient cosine, mean over the run")
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(len(tasks)), tasks, fontsize="small")
    fig.colorbar(image, ax=ax, shrink=0.8)


def _flag_panel(ax: Any, record: dict) -> None:
    tasks, steps = record["tasks"], record["steps"]
    flags = negative_transfer_flags(record["val_loss_curve"], record.get("cos_update") or None)
    for row, name in enumerate(FLAGS):
        if name not in flags:
            continue
        t, k = np.nonzero(flags[name])
        marker = "v" if name == "val_rise" else "x"
        ax.scatter(np.asarray(steps)[t], k + 0.15 * (row - 0.5), marker=marker, label=name)
    ax.set_yticks(range(len(tasks)), tasks, fontsize="small")
    ax.set_ylim(-0.5, len(tasks) - 0.5)
    if len(steps):
        ax.set_xlim(min(steps), max(steps) + 1)
    ax.set(title=f"negative transfer ({PATIENCE} in a row)", xlabel="optimisation steps")
    ax.legend(fontsize="small", loc="upper right")
