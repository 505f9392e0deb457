"""Procedural synthetic suites: the training distribution of the controller.

Every task reads a smooth nonlinear function of a low-rank projection of a shared
Gaussian input, ``h_k = g(A_k^T x)``. A regression task predicts
``y_k = s_k * std(v_k . h_k) + noise``; a classification task predicts which of ``C_k``
prototypes (drawn from the data's own ``h_k``) lies nearest. Knobs make pacing matter:

* ``relatedness`` rho: ``A_k = sqrt(rho) A_shared + sqrt(1 - rho) A_own``; rho = 1 means
  the tasks read the same latent directions.
* ``conflict``: fraction of tasks paired with a partner whose projection is negated.
  ``g`` is not odd (softplus plus a sine), so the partner needs *different* hidden features
  from the same directions and the two compete for trunk capacity (a plain sign flip of
  the target would not conflict: a linear head absorbs it).
* ``scale_spread`` S: output scales spread log-evenly over ``[1, S]`` (the synthetic
  benchmark of GradNorm, Chen et al. 2018, scales task outputs the same way).
* ``noisy_tasks`` / ``noise``: that many tasks get label noise: Gaussian of std
  ``noise`` x scale for regression; for classification, each label is replaced by a
  uniformly drawn class with probability ``noise / (1 + noise)``.
* ``classification`` / ``classes``: that fraction of the tasks classify (cross-entropy
  loss, accuracy metric), each with a class count drawn from ``classes``; losses of
  different kinds and class counts live on different scales, as in real suites.
* ``imbalance``: train sizes spread log-evenly from ``n_train`` down to ``n_train / imbalance``.
* ``difficulty``: weight of the high-frequency sine in ``g`` (0 = smooth).

Knobs for breadth, all off by default (an off knob draws no random number, so settings
that leave them off give bit-identical instances to those made before the knobs existed):

* ``raw_scale`` ``[lo, hi]``: each regression task's targets are further multiplied by
  its own factor, drawn log-uniformly in the range (e.g. ``[1, 1000]``), independently of
  ``scale_spread``: the unstandardised targets of real data, losses spread by up to
  ``hi^2 / lo^2``.
* ``offset`` ``[lo, hi]``: each regression task's targets are shifted by a constant
  ``o_k * s_k`` (``o_k`` uniform in the range, ``s_k`` the task's whole output scale):
  uncentred raw targets (a mean of 3 to 10 standard deviations is common in real data),
  which a freshly initialised head must first climb to.
* ``easy_tasks``: that many tasks (among the noiseless targets) fit to near-zero loss: a
  regression task predicts the noiseless linear ``s_k * (w_k . x)``; a classification task
  the argmax of ``C_k`` linear scores of ``x``, with no example within a margin of a class
  boundary (linearly separable: its cross-entropy can fall toward 0 for ever). Log-loss
  scores are gameable on such tasks; task metrics are not.
* ``auxiliary`` / ``helpful`` / ``target_shrink``: that many tasks (at most K - 1; give
  ``auxiliary = [7, 7]`` for one target and K - 1 auxiliaries) are auxiliaries
  (``TaskSpec.auxiliary``: trained, not scored). A share ``helpful`` of them are related:
  each reads the same latent features ``h`` as a randomly chosen target task, through its
  own readout or prototypes, with the full ``n_train`` examples; the others are noise:
  targets independent of the input (Gaussian values of the task's scale for regression,
  uniformly random labels for classification), also with ``n_train`` examples. The target
  tasks' training sets shrink by ``target_shrink`` (drawn log-uniformly), so auxiliaries
  bring more data than the targets have.
* ``auxiliary_raw_scale`` ``[lo, hi]``: each auxiliary regression task's targets are
  further multiplied by its own factor, drawn log-uniformly in the range: auxiliaries
  recorded in raw units (counts, sums) beside targets on a unit scale, so an auxiliary's
  loss can dwarf the targets' by up to ``hi^2``. Needs ``auxiliary``.

Classification class counts (``classes``) up to 20 and more work; every class is a
prototype drawn from the data, so small training sets may miss some classes.

A *setting* fixes ranges for the knobs; a :class:`SyntheticSuite` is a weighted mix of
settings. ``sample(seed)`` picks a setting, then the knobs, then the data, all from
``seed``, so the same seed always gives the same instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch

from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec
from curriculum_rl.suites.selection import draw_count

Range = tuple[float, float]


@dataclass(frozen=True)
class SyntheticSetting:
    """Ranges of the knobs for one kind of instance; a knob is drawn uniformly in its range
    (log-uniformly for ``scale_spread`` and ``imbalance``; integers for counts)."""

    name: str = "mixed"
    weight: float = 1.0
    num_tasks: tuple[int, int] = (2, 8)
    relatedness: Range = (0.0, 1.0)
    conflict: Range = (0.0, 0.0)
    scale_spread: Range = (1.0, 1.0)
    noisy_tasks: tuple[int, int] = (0, 0)
    noise: Range = (0.0, 0.0)
    imbalance: Range = (1.0, 1.0)
    difficulty: Range = (0.0, 0.5)
    classification: Range = (0.0, 0.0)
    classes: tuple[int, int] = (2, 10)
    raw_scale: Range = (1.0, 1.0)
    offset: Range = (0.0, 0.0)
    easy_tasks: tuple[int, int] = (0, 0)
    auxiliary: tuple[int, int] = (0, 0)
    helpful: Range = (1.0, 1.0)
    target_shrink: Range = (1.0, 1.0)
    auxiliary_raw_scale: Range = (1.0, 1.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and (len(value) != 2 or value[0] > value[1]):
                raise ValueError(
                    f"setting {self.name!r}: {f.name} must be a (low, high) pair with "
                    f"low <= high, got {value}"
                )
        if self.num_tasks[0] < 1:
            raise ValueError(f"setting {self.name!r}: num_tasks must be >= 1")
        if self.scale_spread[0] < 1 or self.imbalance[0] < 1:
            raise ValueError(f"setting {self.name!r}: scale_spread and imbalance must be >= 1")
        if not 0 <= self.relatedness[0] <= self.relatedness[1] <= 1:
            raise ValueError(f"setting {self.name!r}: relatedness must lie in [0, 1]")
        if not 0 <= self.conflict[0] <= self.conflict[1] <= 1:
            raise ValueError(f"setting {self.name!r}: conflict must lie in [0, 1]")
        if not 0 <= self.classification[0] <= self.classification[1] <= 1:
            raise ValueError(f"setting {self.name!r}: classification must lie in [0, 1]")
        if self.classes[0] < 2:
            raise ValueError(f"setting {self.name!r}: classes must be >= 2")
        if self.weight <= 0:
            raise ValueError(f"setting {self.name!r}: weight must be > 0")
        self._check_breadth_knobs()

    def _check_breadth_knobs(self) -> None:
        if self.raw_scale[0] <= 0:
            raise ValueError(f"setting {self.name!r}: raw_scale must be > 0")
        if self.easy_tasks[0] < 0 or self.auxiliary[0] < 0:
            raise ValueError(f"setting {self.name!r}: easy_tasks and auxiliary must be >= 0")
        if not 0 <= self.helpful[0] <= self.helpful[1] <= 1:
            raise ValueError(f"setting {self.name!r}: helpful must lie in [0, 1]")
        if self.target_shrink[0] < 1:
            raise ValueError(f"setting {self.name!r}: target_shrink must be >= 1")
        if self.auxiliary_raw_scale[0] <= 0:
            raise ValueError(f"setting {self.name!r}: auxiliary_raw_scale must be > 0")
        if self.auxiliary_raw_scale != (1.0, 1.0) and self.auxiliary[1] == 0:
            raise ValueError(
                f"setting {self.name!r}: auxiliary_raw_scale scales auxiliaries; "
                "set auxiliary too (e.g. auxiliary = [2, 4])"
            )


def default_settings() -> tuple[SyntheticSetting, ...]:
    """The default training mix: settings where pacing matters (spread scales, noisy and
    tiny tasks, everything mixed) and, in a quarter of the instances, settings where it
    barely does (related or conflicting tasks of equal scale), so a policy also learns when
    to leave uniform weighting alone. Ranges and weights were set with
    ``benchmarks/headroom.py`` (figures in benchmarks/RESULTS.md)."""
    return (
        SyntheticSetting("related", weight=0.5, relatedness=(0.7, 1.0), difficulty=(0.0, 0.3)),
        SyntheticSetting("scales", scale_spread=(30.0, 300.0)),
        SyntheticSetting(
            "noisy_tiny", noisy_tasks=(1, 2), noise=(2.0, 4.0), imbalance=(20.0, 80.0)
        ),
        SyntheticSetting("conflict", weight=0.5, relatedness=(0.8, 1.0), conflict=(0.5, 1.0)),
        SyntheticSetting(
            "mixed",
            conflict=(0.0, 0.5),
            scale_spread=(3.0, 100.0),
            noisy_tasks=(0, 2),
            noise=(0.5, 3.0),
            imbalance=(3.0, 30.0),
        ),
    )


@dataclass(frozen=True)
class SyntheticSuite:
    """A distribution of synthetic multitask suites (see the module docstring)."""

    name: str = "synthetic"
    settings: tuple[SyntheticSetting, ...] = field(default_factory=default_settings)
    in_dim: int = 16
    latent_dim: int = 4
    n_train: int = 1024
    n_val: int = 256
    n_test: int = 1024
    hidden: tuple[int, ...] = (64, 64)
    frequency: float = 3.0

    def __post_init__(self) -> None:
        if not self.settings:
            raise ValueError(f"suite {self.name!r}: give at least one setting")
        if self.in_dim < 1 or self.latent_dim < 1:
            raise ValueError(f"suite {self.name!r}: in_dim and latent_dim must be >= 1")
        if min(self.n_train, self.n_val, self.n_test) < 8:
            raise ValueError(f"suite {self.name!r}: n_train, n_val, n_test must be >= 8")

    def describe(self) -> list[TaskSpec]:
        """The widest task each slot can hold (K and task kinds vary by instance), so a
        trainer sized from this list fits every instance: classification with the
        largest class count where a setting allows classification, else regression."""
        k = max(s.num_tasks[1] for s in self.settings)
        classifying = [s for s in self.settings if s.classification[1] > 0]
        if classifying:
            classes = max(s.classes[1] for s in classifying)
            return [TaskSpec(f"task{i}", "classification", classes, "accuracy") for i in range(k)]
        return [TaskSpec(f"task{i}", "regression", 1, "mse") for i in range(k)]

    def sample(self, seed: int) -> SuiteInstance:
        rng = np.random.default_rng(seed)
        setting = self._pick_setting(rng)
        knobs = _draw_knobs(setting, rng)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        tasks, data = self._make_tasks(knobs, rng, gen)
        return SuiteInstance(
            name=self.name,
            tasks=tasks,
            data=data,
            body=MLPBody(self.in_dim, self.hidden),
            input_shape=(self.in_dim,),
            info={"setting": setting.name, "seed": seed, **knobs},
        )

    def _pick_setting(self, rng: np.random.Generator) -> SyntheticSetting:
        weights = np.array([s.weight for s in self.settings], dtype=float)
        return self.settings[int(rng.choice(len(self.settings), p=weights / weights.sum()))]

    def _make_tasks(
        self, knobs: dict, rng: np.random.Generator, gen: torch.Generator
    ) -> tuple[list[TaskSpec], list[TaskData]]:
        """The tasks and data of one instance; adds the per-task roles the breadth knobs
        drew to ``knobs`` (which becomes the instance's ``info``)."""
        k, d, r = knobs["num_tasks"], self.in_dim, self.latent_dim
        rho = knobs["relatedness"]
        shared = torch.randn(d, r, generator=gen)
        projections = [
            math.sqrt(rho) * shared + math.sqrt(1 - rho) * torch.randn(d, r, generator=gen)
            for _ in range(k)
        ]
        # Conflicting tasks take a partner's projection negated (see module docstring).
        n_conflict = round(knobs["conflict"] * k) // 2 * 2
        for i in range(0, n_conflict, 2):
            projections[i + 1] = -projections[i]
        scales = _spread(knobs["scale_spread"], k, rng)
        sizes = [max(16, round(self.n_train / f)) for f in _spread(knobs["imbalance"], k, rng)]
        noisy = set(rng.permutation(k)[: knobs["noisy_tasks"]].tolist())
        # Drawn only when a setting classifies, so regression-only instances keep the
        # exact random streams (and data) they had before classification existed.
        n_classify = round(knobs["classification"] * k)
        classes = {}
        if n_classify:
            for i in rng.permutation(k)[:n_classify].tolist():
                classes[i] = draw_count(knobs["classes"], rng)
        # The breadth knobs, likewise, draw nothing when off.
        roles = _draw_roles(knobs, k, noisy, rng)
        for i, source in roles.helpful.items():
            projections[i] = projections[source]
        sizes = roles.resize(sizes, self.n_train)
        tasks, data = [], []
        for i in range(k):
            features = self._latent_features(projections[i], knobs["difficulty"])
            noise = knobs["noise"] if i in noisy else 0.0
            if i in classes:
                task, make = self._classification_task(i, features, classes[i], noise, gen, roles)
            else:
                scale = scales[i] * roles.raw[i]
                task, make = self._regression_task(i, features, scale, noise, gen, roles)
            if i in roles.auxiliary:
                task = replace(task, auxiliary=True)
            tasks.append(task)
            data.append(TaskData(*make(sizes[i]), *make(self.n_val), *make(self.n_test)))
        knobs.update(roles.info())
        return tasks, data

    def _latent_features(self, projection: torch.Tensor, difficulty: float):
        """``x -> g(A^T x)``: softplus plus a sine of weight ``difficulty`` (not odd, so
        a negated projection needs different features, see ``conflict``)."""
        scale = math.sqrt(self.in_dim)

        def features(x: torch.Tensor) -> torch.Tensor:
            u = x @ projection / scale
            return torch.nn.functional.softplus(2 * u) + difficulty * torch.sin(self.frequency * u)

        return features

    def _regression_task(self, i: int, features, scale: float, noise: float, gen, roles: TaskRoles):
        spec = TaskSpec(f"task{i}", "regression", 1, "mse")
        if i in roles.noise:
            return spec, self._noise_regression(scale, gen)
        if i in roles.easy:
            features, std = self._linear_features(gen), 1.0
        else:
            readout = torch.randn(self.latent_dim, generator=gen) / math.sqrt(self.latent_dim)
            std = (features(torch.randn(4096, self.in_dim, generator=gen)) @ readout).std()
            std = std.clamp_min(1e-6)
        offset = roles.offset[i] * scale

        def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.randn(n, self.in_dim, generator=gen)
            clean = (features(x) if i in roles.easy else features(x) @ readout) / std
            y = scale * (clean + noise * torch.randn(n, generator=gen))
            if offset:  # off: the exact tensors of old (no + 0.0)
                y = y + offset
            return x, y.unsqueeze(1)

        return spec, make

    def _classification_task(
        self, i: int, features, classes: int, noise: float, gen, roles: TaskRoles
    ):
        spec = TaskSpec(f"task{i}", "classification", classes, "accuracy")
        if i in roles.noise:
            return spec, self._random_labels(classes, gen)
        if i in roles.easy:
            return spec, self._separable_labels(classes, gen)
        # Class c is the Voronoi cell of a prototype drawn from the data's own features,
        # so every class occurs and the boundaries follow the latent structure.
        reference = features(torch.randn(4096, self.in_dim, generator=gen))
        prototypes = reference[torch.randperm(len(reference), generator=gen)[:classes]]
        flip = noise / (1 + noise)

        def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.randn(n, self.in_dim, generator=gen)
            y = torch.cdist(features(x), prototypes).argmin(1)
            replace = torch.rand(n, generator=gen) < flip
            y = torch.where(replace, torch.randint(classes, (n,), generator=gen), y)
            return x, y

        return spec, make

    def _linear_features(self, gen: torch.Generator):
        """``x -> w . x`` for a random unit ``w``: noiseless, linear, std 1 (easy tasks)."""
        w = torch.randn(self.in_dim, generator=gen)
        w = w / w.norm()
        return lambda x: x @ w

    def _noise_regression(self, scale: float, gen: torch.Generator):
        """Targets independent of the input: Gaussian values of std ``scale``."""

        def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.randn(n, self.in_dim, generator=gen)
            return x, scale * torch.randn(n, 1, generator=gen)

        return make

    def _random_labels(self, classes: int, gen: torch.Generator):
        """Labels independent of the input, uniform over the classes."""

        def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.randn(n, self.in_dim, generator=gen)
            return x, torch.randint(classes, (n,), generator=gen)

        return make

    def _separable_labels(self, classes: int, gen: torch.Generator):
        """The argmax of ``classes`` linear scores of ``x`` (unit directions), keeping only
        inputs whose best score leads the second by at least :data:`EASY_MARGIN`, so the
        classes are linearly separable with a margin (cross-entropy can reach ~0)."""
        directions = torch.randn(self.in_dim, classes, generator=gen)
        directions = directions / directions.norm(dim=0, keepdim=True)

        def labelled(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.randn(n, self.in_dim, generator=gen)
            top = (x @ directions).topk(2, dim=1).values
            keep = top[:, 0] - top[:, 1] >= EASY_MARGIN
            return x[keep], (x[keep] @ directions).argmax(1)

        def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            xs, ys, have = [], [], 0
            while have < n:  # whole batches: the stream does not depend on timing
                x, y = labelled(max(n, 64))
                xs.append(x)
                ys.append(y)
                have += len(x)
            return torch.cat(xs)[:n], torch.cat(ys)[:n]

        return make


EASY_MARGIN = 0.5
"""Least lead of the winning linear score over the runner-up in an easy classification
task (scores have std 1)."""


@dataclass
class TaskRoles:
    """What the breadth knobs made of each task of an instance (all empty when off).

    Attributes:
        raw: per-task extra scale of regression targets (1.0 when ``raw_scale`` is off).
        offset: per-task shift of regression targets, in units of the task's scale.
        easy: tasks that fit to near-zero loss.
        auxiliary: auxiliary tasks; of those, ``helpful`` maps each related one to the
            target whose latent features it reads, and ``noise`` holds the others.
        target_shrink: divisor of the target tasks' training sizes (when auxiliaries).
    """

    raw: list[float]
    offset: list[float]
    easy: set[int] = field(default_factory=set)
    auxiliary: set[int] = field(default_factory=set)
    helpful: dict[int, int] = field(default_factory=dict)
    noise: set[int] = field(default_factory=set)
    target_shrink: float = 1.0

    def resize(self, sizes: list[int], n_train: int) -> list[int]:
        """Training sizes: auxiliaries get ``n_train``, targets shrink (when auxiliaries)."""
        if not self.auxiliary:
            return sizes
        return [
            n_train if i in self.auxiliary else max(16, round(size / self.target_shrink))
            for i, size in enumerate(sizes)
        ]

    def info(self) -> dict:
        """The drawn roles for the instance's ``info`` (only the knobs that are on)."""
        info: dict = {}
        if any(r != 1.0 for r in self.raw):
            info["raw_scales"] = self.raw
        if any(self.offset):
            info["offsets"] = self.offset
        if self.easy:
            info["easy"] = sorted(self.easy)
        if self.auxiliary:
            info["helpful_auxiliaries"] = dict(sorted(self.helpful.items()))
            info["noise_auxiliaries"] = sorted(self.noise)
        return info


def _draw_roles(knobs: dict, k: int, noisy: set[int], rng: np.random.Generator) -> TaskRoles:
    """Per-task roles from the breadth knobs; a knob that is off draws nothing."""
    roles = TaskRoles(raw=[1.0] * k, offset=[0.0] * k)
    if "raw_scale" in knobs:
        low, high = (math.log(v) for v in knobs["raw_scale"])
        roles.raw = [float(math.exp(v)) for v in rng.uniform(low, high, size=k)]
    if "offset" in knobs:
        roles.offset = [float(v) for v in rng.uniform(*knobs["offset"], size=k)]
    if knobs.get("auxiliary", 0):
        _draw_auxiliaries(roles, knobs, k, rng)
    if knobs.get("easy_tasks", 0):
        candidates = [i for i in rng.permutation(k).tolist() if i not in noisy | roles.auxiliary]
        roles.easy = set(candidates[: knobs["easy_tasks"]])
    return roles


def _draw_auxiliaries(roles: TaskRoles, knobs: dict, k: int, rng: np.random.Generator) -> None:
    order = rng.permutation(k).tolist()
    auxiliary, targets = order[: knobs["auxiliary"]], order[knobs["auxiliary"] :]
    n_helpful = round(knobs["helpful"] * len(auxiliary))
    roles.auxiliary = set(auxiliary)
    roles.helpful = {i: int(rng.choice(targets)) for i in auxiliary[:n_helpful]}
    roles.noise = set(auxiliary[n_helpful:])
    roles.target_shrink = knobs["target_shrink"]
    if "auxiliary_raw_scale" in knobs:
        low, high = (math.log(v) for v in knobs["auxiliary_raw_scale"])
        for i in sorted(auxiliary):
            roles.raw[i] *= float(math.exp(rng.uniform(low, high)))


def _draw_knobs(setting: SyntheticSetting, rng: np.random.Generator) -> dict:
    def uniform(lo_hi: Range) -> float:
        return float(rng.uniform(*lo_hi))

    def log_uniform(lo_hi: Range) -> float:
        return float(math.exp(rng.uniform(math.log(lo_hi[0]), math.log(lo_hi[1]))))

    num_tasks = draw_count(setting.num_tasks, rng)
    return {
        "num_tasks": num_tasks,
        "relatedness": uniform(setting.relatedness),
        "conflict": uniform(setting.conflict),
        "scale_spread": log_uniform(setting.scale_spread),
        "noisy_tasks": draw_count(setting.noisy_tasks, rng, cap=num_tasks),
        "noise": uniform(setting.noise),
        "imbalance": log_uniform(setting.imbalance),
        "difficulty": uniform(setting.difficulty),
        **(
            {"classification": uniform(setting.classification), "classes": setting.classes}
            if setting.classification[1] > 0
            else {"classification": 0.0, "classes": setting.classes}
        ),
        **_draw_breadth_knobs(setting, num_tasks, rng),
    }


def _draw_breadth_knobs(setting: SyntheticSetting, k: int, rng: np.random.Generator) -> dict:
    """The breadth knobs that are on (an off knob neither draws nor appears in ``info``).
    ``raw_scale`` and ``offset`` keep their ranges here: their per-task values are drawn
    with the tasks."""
    knobs: dict = {}
    if setting.raw_scale != (1.0, 1.0):
        knobs["raw_scale"] = setting.raw_scale
    if setting.offset != (0.0, 0.0):
        knobs["offset"] = setting.offset
    if setting.easy_tasks[1] > 0:
        knobs["easy_tasks"] = draw_count(setting.easy_tasks, rng)
    if setting.auxiliary[1] > 0:
        knobs["auxiliary"] = draw_count(setting.auxiliary, rng, cap=k - 1)
        knobs["helpful"] = float(rng.uniform(*setting.helpful))
        low, high = (math.log(v) for v in setting.target_shrink)
        knobs["target_shrink"] = float(math.exp(rng.uniform(low, high)))
        if setting.auxiliary_raw_scale != (1.0, 1.0):
            knobs["auxiliary_raw_scale"] = setting.auxiliary_raw_scale
    return knobs


def _spread(ratio: float, k: int, rng: np.random.Generator) -> list[float]:
    """k factors log-evenly spaced over [1, ratio], in random task order."""
    if k == 1:
        return [1.0]
    factors = np.exp(np.linspace(0.0, math.log(ratio), k))
    return [float(f) for f in rng.permutation(factors)]
