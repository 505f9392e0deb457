"""``summary.md``: per-suite tables, then the aggregate over suites (Markdown)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from curriculum_rl.atomic import write_text_atomic
from curriculum_rl.benchmark.config import BenchmarkConfig
from curriculum_rl.benchmark.run import Records
from curriculum_rl.benchmark.summary import ENVELOPE_MARGIN, ranking

NO_REFERENCE_NOTE = (
    "Δm% and the worst-task change against single-task training are omitted: the "
    "single-task reference was switched off (`--no-reference`)."
)


def write_summary(
    path: Path,
    config: BenchmarkConfig,
    summary: dict,
    records: Records,
    with_reference: bool,
) -> None:
    """Write the Markdown report of ``summary`` (see :func:`summarize`) to ``path``."""
    lines = _preamble(config, with_reference, summary["settings"]["skipped_controllers"])
    lines += ["## Who won", ""] + [f"* {line}" for line in verdicts(summary)] + [""]
    for suite, cells in summary["suites"].items():
        lines += [f"## {suite}", ""]
        lines += _suite_table(cells, with_reference)
        lines += _same_as_uniform_note({c: records[suite, c] for c in cells})
        lines += [
            "",
            f"Mean test metric per task over seeds (final / best-val checkpoint), {suite}:",
            "",
        ]
        lines += _task_table({c: records[suite, c] for c in cells})
        lines.append("")
    lines += [
        "## Aggregate over suites",
        "",
        "IQM over all (suite, seed) runs; 95% CI from a bootstrap stratified by suite.",
        "",
    ]
    lines += _aggregate_table(summary["aggregate"], summary["settings"].get("versus"))
    lines += [
        "",
        "## Envelope",
        "",
        "Per suite, each controller's gap to the best controller on that suite (IQM of G_m; "
        "0 = the best), and its largest gap: how far always choosing it falls from the best "
        "choice, suite by suite. Sorted by the largest gap. Clear misses: the suites where "
        f"it is more than {ENVELOPE_MARGIN} behind and the paired gap to that suite's best "
        "(seed by seed) has its 95% CI above it too; a gap from the IQMs alone overstates "
        "misses where seeds disagree (the best of many noisy IQMs is biased up).",
        "",
    ]
    lines += _envelope_table(summary["envelope"], list(summary["aggregate"]))
    write_text_atomic(path, "\n".join(lines) + "\n")


def verdicts(summary: dict) -> list[str]:
    """One plain sentence per suite and one for the aggregate: who won, by how much over
    the runner-up, whether their CIs overlap, and the paired difference (the leader's
    G_m minus the runner-up's, seed by seed) with its CI: the lead is established when
    that interval excludes 0."""
    lines = []
    tables = [*summary["suites"].items(), ("all suites (aggregate)", summary["aggregate"])]
    for suite, cells in tables:
        order = ranking(cells)
        if len(order) < 2:
            continue
        best, second = cells[order[0]]["gain"], cells[order[1]]["gain"]
        if not _finite(best["iqm"]):
            lines.append(
                f"{suite}: no winner: failed runs (diverged) leave no controller a finite "
                "IQM of G_m; see the failed column."
            )
            continue
        if not _finite(second["iqm"]):
            lines.append(
                f"{suite}: **{order[0]}** (G_m {_num(best['iqm'])}); every other controller's "
                "failed runs (diverged) leave it no finite score."
            )
            continue
        lead = _num(_difference(best["iqm"], second["iqm"]))
        low, high = best["ci"][0], second["ci"][1]
        overlap = low is None or high is None or low <= high
        certainty = "CIs overlap: not a clear win" if overlap else "CIs do not overlap"
        lines.append(
            f"{suite}: **{order[0]}** (G_m {_num(best['iqm'])}), ahead of {order[1]} "
            f"({_num(second['iqm'])}) by {lead}; {certainty}"
            + _paired_verdict(cells[order[1]]["paired_gap_to_leader"])
            + "."
        )
    return lines


def _paired_verdict(gap: dict | None) -> str:
    if gap is None or not _finite(gap["ci"][0]):
        return ""
    holds = "the lead holds" if gap["ci"][0] > 0 else "not established"
    return f"; paired difference {_ci(gap)}: {holds}"


def _difference(a: float | None, b: float | None) -> float | None:
    return a - b if _finite(a) and _finite(b) else None


def _finite(value: float | None) -> bool:
    """A usable score: not ``None`` (JSON's non-finite) and not ±inf or NaN."""
    return value is not None and math.isfinite(value)


def _preamble(config: BenchmarkConfig, with_reference: bool, skipped: list[str]) -> list[str]:
    trainer = ", ".join(f"{k}={v}" for k, v in config.settings()["trainer"].items())
    lines = [
        "# Benchmark summary",
        "",
        f"Suites: {', '.join(config.suites)}. Seeds: {_seeds(config)} (paired: every "
        f"controller trains on the same instances from the same initialisations). Budget: "
        f"{config.budget} inner steps, a decision every {config.interval}. Trainer: {trainer}.",
        "",
        "* **G_m** (the headline) = mean over target tasks of log(E_uniform / E) on the test "
        "split of the same seed, E the task error (MSE; error rate with add-one smoothing for "
        "classification and tagging): relative error reduction over uniform weighting on "
        "task metrics; > 0 beats uniform. **G_J** = J_uniform − J (mean log test loss), "
        "reported beside it: it can be gamed by driving already-solved tasks' loss to 0. "
        "*final*: last parameters; *best*: the checkpoint with the best validation J.",
        "* Cells show the IQM over seeds with its 95% bootstrap CI in brackets "
        f"({config.reps} replicates).",
        "* **Paired gap to #1**: the leader's G_m minus the controller's, seed by seed (the "
        "same instance and initialisation), as an IQM with its CI: the paired test of the "
        "lead, which cancels how hard each instance is; a lead holds when it excludes 0. "
        "It is a typical run's difference: smaller than the gap between the IQMs when the "
        "lead comes from a few suites. With --versus, the same against the named controller, "
        "also as a *mean* (the statistic a validation rule fixes in advance: a candidate "
        "ahead on average has a mean paired gap ≤ 0) and the *largest suite gap* (the suite "
        "where the controller's IQM is furthest below the named one's).",
        "* **Δm%** (vs single-task training, same budget) and **worst-task** relative change "
        "(the worst task's change, in %): lower is better, positive = worse than the "
        "reference. Δm% partly measures trunk capacity (one trunk for K tasks vs K trunks).",
        "* **AUC**: mean validation J over the decisions (anytime performance; lower is better).",
        "* A failed run (diverged: non-finite, or validation J far above its start) scores "
        "G = -inf and counts in *failed*. Rows are ranked by the IQM of G_m; the best is in "
        "bold.",
        "* Only differences of about 0.1 were reliable with 5 seeds; use ≥ 10 for claims.",
        "",
    ]
    if not with_reference:
        lines += [NO_REFERENCE_NOTE, ""]
    if skipped:
        lines += [f"Not run (optional dependencies missing): {', '.join(skipped)}.", ""]
    return lines


def _seeds(config: BenchmarkConfig) -> str:
    seeds = config.seed_range
    return f"{seeds[0]}..{seeds[-1]}"


def _suite_table(cells: dict, with_reference: bool) -> list[str]:
    header = ["rank", "controller", "G_m final", "G_m best", "G_J final"]
    if with_reference:
        header += ["Δm% final", "Δm% best", "worst vs STL final"]
    header += ["worst vs uniform final", "AUC val J", "failed"]
    rows = []
    for rank, controller in enumerate(ranking(cells), start=1):
        cell = cells[controller]
        name = f"**{controller}**" if rank == 1 else controller
        row = [str(rank), name, _ci(cell["gain"]), _ci(cell["gain_best"]), _ci(cell["gain_j"])]
        if with_reference:
            row += [
                _ci(cell["delta_m"]),
                _ci(cell["delta_m_best"]),
                _num(cell["worst_task_change"]["iqm"]),
            ]
        row += [
            _num(cell["worst_task_change_vs_uniform"]["iqm"]),
            _num(cell["auc_val_j"]),
            f"{cell['failed']}/{cell['runs']}",
        ]
        rows.append(row)
    return _table(header, rows)


def _same_as_uniform_note(records: dict[str, list[dict]]) -> list[str]:
    """A line naming the controllers whose every run ended with exactly uniform's test
    metrics (seed by seed): their G_m of 0 means "no effect here", not "as good as
    uniform by chance"; e.g. sampling schedules where every task trains on the same
    examples (one input, several labels), so the draw of tasks changes nothing."""
    uniform = {run["seed"]: run["final_test_metric"] for run in records.get("uniform", [])}
    same = [
        name
        for name, runs in records.items()
        if name != "uniform"
        and runs
        and all(uniform.get(run["seed"]) == run["final_test_metric"] for run in runs)
    ]
    if not same or not uniform:
        return []
    return [
        "",
        f"Exactly uniform's test metrics on every seed (no effect on this suite): "
        f"{', '.join(sorted(same))}. Sampling schedules have none where every task trains "
        "on the same examples.",
    ]


def _task_table(records: dict[str, list[dict]]) -> list[str]:
    """Controllers x tasks; a task absent from some seeds' instances (suites whose
    number of tasks varies) is averaged over the seeds that have it."""
    tasks: dict[str, bool] = {}
    for runs in records.values():
        for run in runs:
            for name, higher in zip(run["tasks"], run["higher_is_better"], strict=True):
                tasks.setdefault(name, higher)
    header = ["controller"] + [f"{t} {'↑' if h else '↓'}" for t, h in tasks.items()]
    rows = [
        [controller]
        + [
            f"{_num(_task_mean(runs, t, 'final'))} / {_num(_task_mean(runs, t, 'best'))}"
            for t in tasks
        ]
        for controller, runs in records.items()
    ]
    return _table(header, rows)


def _task_mean(runs: Sequence[dict], task: str, checkpoint: str) -> float:
    values = [
        math.inf
        if run[f"{checkpoint}_test_metric"][i] is None
        else run[f"{checkpoint}_test_metric"][i]
        for run in runs
        for i, name in enumerate(run["tasks"])
        if name == task
    ]
    return sum(values) / len(values) if values else math.nan


def _aggregate_table(aggregate: dict, versus: str | None = None) -> list[str]:
    header = ["rank", "controller", "G_m final", "G_m best", "G_J final", "paired gap to #1"]
    if versus:
        header += [f"paired gap to {versus}", "same, where changed (suites)"]
        header += [f"mean paired gap to {versus}", f"largest suite gap to {versus}"]
    header += ["median worst-task change vs uniform %", "failed"]
    rows = []
    for rank, c in enumerate(ranking(aggregate), start=1):
        a = aggregate[c]
        name = f"**{c}**" if rank == 1 else c
        row = [str(rank), name, _ci(a["gain"]), _ci(a["gain_best"]), _ci(a["gain_j"])]
        row.append(_ci(a["paired_gap_to_leader"]))
        if versus:
            row += [_ci(a["paired_gap_to_versus"]), _where_changed(a)]
            row += [_ci(a["mean_paired_gap_to_versus"]), _suite_gap(a)]
        row.append(_num(a["worst_task_change_vs_uniform_median"]))
        rows.append([*row, f"{a['failed']}/{a['runs']}"])
    return _table(header, rows)


def _suite_gap(cell: dict) -> str:
    largest = cell.get("largest_suite_gap_to_versus")
    return "–" if largest is None else f"{_num(largest['gap'])} ({largest['suite']})"


def _where_changed(cell: dict) -> str:
    changed = cell.get("paired_gap_to_versus_where_changed")
    return "–" if changed is None else f"{_ci(changed)} ({changed['suites']})"


def _envelope_table(envelope: dict, order: list[str]) -> list[str]:
    suites = list(next(iter(envelope.values()))["gaps"]) if envelope else []
    header = ["controller", "largest gap", "clear misses", *suites]
    rows = [
        [
            c,
            _num(envelope[c]["max_gap"]),
            str(len(envelope[c]["clear_misses"])),
            *(_num(envelope[c]["gaps"][s]) for s in suites),
        ]
        for c in sorted(order, key=lambda c: _sort_key(envelope[c]["max_gap"]))
    ]
    return _table(header, rows)


def _sort_key(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else math.inf


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _ci(estimate: dict | None) -> str:
    if estimate is None:
        return "–"
    low, high = estimate["ci"]
    return f"{_num(estimate['iqm'])} [{_num(low)}, {_num(high)}]"


def _num(value: float | None) -> str:
    """Three significant decimals; ``None`` is a non-finite value (a failed run)."""
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    tiny_or_huge = abs(value) >= 1000 or (value != 0 and abs(value) < 1e-3)
    return f"{value:.3g}" if tiny_or_huge else f"{value:.3f}"
