"""What a benchmark runs: the typed configuration and how its names are resolved.

Suites are SPECs for :func:`~curriculum_rl.suites.resolve_suite` (a TOML file may
declare several). Controllers are registered heuristic names (``all`` expands to every
one whose optional dependencies are installed, plus ``static-tuned``: static weights
tuned per instance on the validation split's task error; ``static-tuned-loss`` tunes them
on validation log loss instead, as ``static-tuned`` did until 2026-12-02), ``default``
(the shipped learned policy)
or a policy file path; every name is resolved by ``curriculum_rl.load_controller``.
Uniform weighting is always added: it is the reference of the paired gain G.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from curriculum_rl.controllers.base import Controller
from curriculum_rl.controllers.load import controller_identity, load_controller
from curriculum_rl.controllers.registry import controller_names
from curriculum_rl.controllers.static import StaticWeights, tune_static_weights
from curriculum_rl.suites import Suite, SuiteInstance
from curriculum_rl.suites.registry import resolve_suites
from curriculum_rl.trainer import TrainerConfig

UNIFORM = "uniform"
STATIC_TUNED = "static-tuned"
STATIC_TUNED_LOSS = "static-tuned-loss"
TUNED = {STATIC_TUNED: "error", STATIC_TUNED_LOSS: "loss"}
"""The tuned static baselines: benchmark name -> tuning criterion
(:func:`~curriculum_rl.controllers.static.tune_static_weights`)."""
TUNING_SEED = 1_000_000  # tuning runs never share a seed with the evaluated runs
DEFAULT_SEEDS = 10
DEFAULT_BATCH_SIZE = 16
EXECUTORS = ("local", "ray")
TASK_SLOTS = 8
"""Every run is padded to a multiple of this many task slots (the policies' K_max), so its
numbers never depend on the runs batched with it (:mod:`curriculum_rl.benchmark.run`)."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """One benchmark: every suite x every controller x seeds
    ``first_seed .. first_seed+seeds-1`` (:attr:`seed_range`).

    Attributes:
        suites: suite SPECs. controllers: controller names, ``all``, ``default`` or
            policy file paths (uniform is added when missing).
        out: folder for runs, tables, plots and TensorBoard logs.
        seeds: runs per (suite, controller); seed ``s`` trains on ``suite.sample(s)``
            with trainer seed ``s``, so every controller sees the same instances.
        first_seed: the first of those seeds (default 0). A check on training suites
            can start past the seeds a validation suite of the same generator holds
            (``first_seed=100``: instances ``sample(100) ..``). Not part of
            :meth:`settings`: runs are stored per seed and a seed's numbers do not depend
            on the others, so a folder resumed with another first seed reuses the runs
            of the seeds both name; its tables are rebuilt over exactly the seeds of
            this config (runs of other seeds stay in the folder, out of the tables).
        budget: inner optimisation steps per run. interval: inner steps per decision.
        trainer: inner-training hyper-parameters shared by every run.
        reps: bootstrap replicates of each confidence interval.
        reference: compute Δm% against single-task training when the reference module
            is available (it costs K extra single-task runs per suite and seed, cached).
        tensorboard / plots / progress: write TB logs / write PNGs / show a progress bar.
        batch_size: at most this many runs train in one batched trainer (one unit of
            work). Memory and speed only: a seed's numbers never depend on its batch
            (:mod:`curriculum_rl.benchmark.run`); raise it on a GPU (64, 256, ...).
        executor: where the units run: ``local`` (this process, one after another) or
            ``ray`` (Ray tasks, :mod:`curriculum_rl.benchmark.executors`); the results are
            the same. address: the Ray cluster (``auto``, ``HOST:PORT``); ``None``: a
            local Ray. workers: at most this many units at once on Ray (``None``: as many
            as the cluster has CPUs; a local Ray is started with this many CPUs).
        versus: a controller of this benchmark (its name or label) that every other is
            also paired against in the aggregate (e.g. the shipped policy), beside the
            leader; ``None``: the leader only.
    """

    suites: tuple[str, ...]
    controllers: tuple[str, ...]
    out: Path
    seeds: int = DEFAULT_SEEDS
    first_seed: int = 0
    budget: int = 1500
    interval: int = 25
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    reps: int = 50_000
    reference: bool = True
    tensorboard: bool = True
    plots: bool = True
    progress: bool = True
    batch_size: int = DEFAULT_BATCH_SIZE
    executor: str = "local"
    address: str | None = None
    workers: int | None = None
    versus: str | None = None

    def __post_init__(self) -> None:
        if not self.suites or not self.controllers:
            raise ValueError("name at least one suite and one controller")
        for name in ("seeds", "budget", "interval", "reps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        self._check_first_seed()
        self._check_executor()
        if self.interval > self.budget:
            raise ValueError(
                f"interval ({self.interval}) exceeds budget ({self.budget}): a run would make "
                "a single decision; give an interval of at most the budget"
            )
        object.__setattr__(self, "out", Path(self.out))

    @property
    def seed_range(self) -> range:
        """The seeds every (suite, controller) runs, in order."""
        return range(self.first_seed, self.first_seed + self.seeds)

    def _check_first_seed(self) -> None:
        if isinstance(self.first_seed, bool) or not isinstance(self.first_seed, int):
            raise ValueError(f"first_seed must be an integer, got {self.first_seed!r}")
        if self.first_seed < 0:
            raise ValueError(
                f"first_seed must be >= 0, got {self.first_seed}: seeds are non-negative; "
                "give 0 (seeds 0..seeds-1) or a later first seed"
            )
        tuned = [c for c in self.controllers if c in TUNED or c == "all"]
        if tuned and TUNING_SEED in self.seed_range:
            # Its tuning runs use this seed: tuned on the very run it is evaluated by.
            raise ValueError(
                f"seeds {self.first_seed}..{self.seed_range[-1]} include {TUNING_SEED}, the "
                f"trainer seed that tunes the static-tuned baselines (in {', '.join(tuned)}): "
                "choose a first_seed whose range avoids it, or leave those baselines out"
            )

    def _check_executor(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.executor == "local" and (self.address or (self.workers or 1) > 1):
            raise ValueError(
                "--address and --workers above 1 run units on Ray: add --executor ray "
                "(the local executor runs one unit at a time in this process)"
            )

    def settings(self) -> dict:
        """What determines a run's numbers besides its suite, controller and seed; a
        resumed folder must match it. Not the number of seeds nor the first seed (a
        seed's numbers do not depend on the others, :mod:`curriculum_rl.benchmark.run`),
        so a rerun with more seeds adds runs, and one with another first seed reuses the
        seeds both name (its tables hold only its own seeds). Not the device either: it
        moves numbers by floating-point rounding only, and a long benchmark may be
        resumed on other hardware."""
        trainer = {k: v for k, v in self.trainer.__dict__.items() if k != "device"}
        return {
            "budget": self.budget,
            "interval": self.interval,
            "task_slots": TASK_SLOTS,
            "trainer": trainer,
        }


@dataclass(frozen=True)
class ControllerEntry:
    """A controller as the benchmark names it: ``label`` (folders, tables) and ``spec``."""

    label: str
    spec: str

    def make(
        self,
        instances: Sequence[SuiteInstance] = (),
        budget: int = 0,
        trainer: TrainerConfig | None = None,
    ) -> Controller:
        """A fresh controller (one per batch of seeds, so no state leaks between suites).

        ``static-tuned`` (and ``static-tuned-loss``) is tuned here, per instance of the
        batch, on the validation split with a tuning seed no evaluated run uses (search
        space and budget: :class:`~curriculum_rl.controllers.static.StaticGrid`), so it
        needs the batch's ``instances``, ``budget`` and ``trainer``.

        Raises:
            ValueError: unknown name, or an optional dependency is missing (the message
                names what to install).
        """
        if self.spec in TUNED:
            weights = tune_static_weights(
                instances, [TUNING_SEED], budget, config=trainer, criterion=TUNED[self.spec]
            )
            return StaticWeights(weights)
        try:
            return load_controller(self.spec)
        except ImportError as err:
            raise ValueError(str(err)) from err

    def identity(self) -> str:
        """What this entry's runs are made by (:func:`controller_identity`): stored runs
        of its label made by anything else are not its runs."""
        return self.spec if self.spec in TUNED else controller_identity(self.spec)


@dataclass(frozen=True)
class SuiteEntry:
    """A suite as the benchmark names it: ``label`` (folders, tables) and the suite."""

    label: str
    spec: str
    suite: Suite


def resolve_controllers(names: Sequence[str]) -> list[ControllerEntry]:
    """Expand ``all``, put uniform first, drop duplicates; labels are unique and safe."""
    specs: list[str] = [UNIFORM]
    for name in names:
        specs.extend(
            [*controller_names(available_only=True), STATIC_TUNED] if name == "all" else [name]
        )
    entries, seen = [], set()
    for spec in dict.fromkeys(specs):  # ordered de-duplication
        named = spec in controller_names() or spec in TUNED
        label = _safe(spec if named else Path(spec).stem)
        if label in seen:
            raise ValueError(f"two controllers would both be labelled {label!r}; rename one")
        seen.add(label)
        entries.append(ControllerEntry(label, spec))
    return entries


def versus_label(versus: str | None, entries: Sequence[ControllerEntry]) -> str | None:
    """The label of the ``--versus`` controller, given as a name, spec or label;
    ``ValueError`` naming the benchmark's labels when it is none of them."""
    if versus is None:
        return None
    for entry in entries:
        if versus in (entry.label, entry.spec):
            return entry.label
    labels = [e.label for e in entries]
    raise ValueError(
        f"--versus {versus!r} is not a controller of this benchmark; give one of {labels} "
        "(or add it to --controller)"
    )


def unavailable_controllers(names: Sequence[str]) -> list[str]:
    """Registered heuristics that ``all`` leaves out because an optional extra they need
    is not installed (a named one is not skipped: building it raises, saying what to
    install)."""
    if "all" not in names:
        return []
    available = set(controller_names(available_only=True))
    return [n for n in controller_names() if n not in available]


def resolve_suite_entries(specs: Sequence[str]) -> list[SuiteEntry]:
    """Resolve each SPEC (a name, a TOML file, which may declare several suites, or a
    factory); labels come from the suites' names and must be unique."""
    entries, seen = [], set()
    for spec in dict.fromkeys(specs):
        for suite in resolve_suites(spec):
            label = _safe(suite.name)
            if label in seen:
                raise ValueError(f"two suites are both named {label!r}; rename one")
            seen.add(label)
            entries.append(SuiteEntry(label, spec, suite))
    return entries


def _safe(name: str) -> str:
    """A file-system-safe label (no separators, no spaces)."""
    label = re.sub(r"[^A-Za-z0-9_.+-]+", "-", name).strip("-.")
    if not label:
        raise ValueError(f"cannot derive a label from {name!r}")
    return label
