"""Tabular: real bundled scikit-learn data sets, some columns turned into targets.

A data set's own label stays a classification task; a few of its measurement columns
become regression targets and are removed from the inputs. Regression targets stay
**raw**, in the data set's units, neither centred nor scaled, because real users rarely
standardise: task losses then differ by orders of magnitude (proline at ~10^5, hue at
~10^-1) and the training sets are small (a hundred to a few hundred rows). Inputs are the
remaining columns, z-scored with training statistics. Every seed draws its own
train/val/test split of the rows (60/15/25%: 107, 342 and 266 training rows).

=========================  ===================================================================
``dataset``                tasks (kind, scale of the raw target: mean, variance)
=========================  ===================================================================
``wine``                   178 wines, 9 inputs: ``cultivar`` (3 classes), ``proline`` (mean 747, var
                           9.9e4), ``magnesium`` (100, 203), ``color_intensity`` (5.1, 5.3), ``hue``
                           (0.96, 0.052)
``breast_cancer``          569 tumours, 27 inputs: ``diagnosis`` (2 classes), ``worst_area`` (881,
                           3.2e5); worst radius and perimeter, near-copies of the area, are dropped
``diabetes``               442 patients, 7 inputs (raw loader, ``scaled=False``): ``progression``
                           (one-year disease progression, 152, 5.9e3), ``sex`` (2 classes), ``bmi``
                           (26, 19), ``s5`` (log serum triglycerides, 4.6, 0.27)
``diabetes_blood``         the same 442 patients, 5 inputs (age, bmi, s2, s4, s5): ``progression``,
                           ``sex``, ``bp`` (blood pressure, 95, 191), ``s1`` (total cholesterol,
                           189, 1.2e3), ``s3`` (HDL, 50, 167), ``s6`` (glucose, 91, 132)
``iris``                   150 flowers, 2 inputs (the sepal measurements): ``species`` (3 classes),
                           ``petal_length`` (3.8, 3.1), ``petal_width`` (1.2, 0.58): similar scales
``wine_chem``              the 178 wines, 8 inputs: ``cultivar``, ``alcohol`` (13.0, 0.66),
                           ``malic_acid`` (2.3, 1.2), ``alcalinity`` (of ash, 19.5, 11) and
                           ``flavanoids`` (2.0, 0.99); total phenols, a near-copy of flavanoids (r =
                           0.86), dropped: uncentred targets at similar scales
``breast_cancer_shape``    the 569 tumours, 17 inputs: ``diagnosis`` (2 classes),
                           ``mean_texture`` (19, 18), ``mean_area`` (655, 1.2e5),
                           ``mean_smoothness`` (0.096, 2.0e-4) and ``area_error`` (40, 2.1e3); the
                           radius, perimeter, worst-case and error columns that nearly copy a target
                           are dropped: variances 10^9 apart
=========================  ===================================================================

The loaders (``load_wine``, ``load_breast_cancer``, ``load_diabetes``, ``load_iris``) read
files that ship with scikit-learn: nothing is ever downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from curriculum_rl.suites.base import MLPBody, SuiteInstance, TaskData, TaskSpec
from curriculum_rl.suites.selection import (
    as_classes,
    as_regression,
    mark_auxiliary,
    select_tasks,
    split_rows,
    standardize_columns,
)

SPLITS = ("train", "val", "test")
LABEL = "<label>"
"""Source of a task that reads the data set's own label (``bunch.target``)."""


@dataclass(frozen=True)
class TabularRecipe:
    """How one bundled data set becomes a multitask problem.

    Attributes:
        loader: name of the bundled ``sklearn.datasets`` loader (``load_*``, never
            ``fetch_*``). scaled: passed as ``scaled=`` where the loader takes it
            (``load_diabetes`` standardises its columns unless told not to).
        tasks: the tasks, in their default order. sources: per task, the feature column
            it reads, or :data:`LABEL` for the data set's own label.
        dropped: further columns removed from the inputs (near-copies of a target that
            would make it trivial).
    """

    loader: str
    tasks: tuple[TaskSpec, ...]
    sources: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    scaled: bool | None = None


RECIPES: dict[str, TabularRecipe] = {
    "wine": TabularRecipe(
        loader="load_wine",
        tasks=(
            TaskSpec("cultivar", "classification", 3, "accuracy"),
            TaskSpec("proline", "regression", 1, "mse"),
            TaskSpec("magnesium", "regression", 1, "mse"),
            TaskSpec("color_intensity", "regression", 1, "mse"),
            TaskSpec("hue", "regression", 1, "mse"),
        ),
        sources=(LABEL, "proline", "magnesium", "color_intensity", "hue"),
    ),
    "breast_cancer": TabularRecipe(
        loader="load_breast_cancer",
        tasks=(
            TaskSpec("diagnosis", "classification", 2, "accuracy"),
            TaskSpec("worst_area", "regression", 1, "mse"),
        ),
        sources=(LABEL, "worst area"),
        dropped=("worst radius", "worst perimeter"),
    ),
    "diabetes": TabularRecipe(
        loader="load_diabetes",
        tasks=(
            TaskSpec("progression", "regression", 1, "mse"),
            TaskSpec("sex", "classification", 2, "accuracy"),
            TaskSpec("bmi", "regression", 1, "mse"),
            TaskSpec("s5", "regression", 1, "mse"),
        ),
        sources=(LABEL, "sex", "bmi", "s5"),
        scaled=False,
    ),
    "diabetes_blood": TabularRecipe(
        loader="load_diabetes",
        tasks=(
            TaskSpec("progression", "regression", 1, "mse"),
            TaskSpec("sex", "classification", 2, "accuracy"),
            TaskSpec("bp", "regression", 1, "mse"),
            TaskSpec("s1", "regression", 1, "mse"),
            TaskSpec("s3", "regression", 1, "mse"),
            TaskSpec("s6", "regression", 1, "mse"),
        ),
        sources=(LABEL, "sex", "bp", "s1", "s3", "s6"),
        scaled=False,
    ),
    "iris": TabularRecipe(
        loader="load_iris",
        tasks=(
            TaskSpec("species", "classification", 3, "accuracy"),
            TaskSpec("petal_length", "regression", 1, "mse"),
            TaskSpec("petal_width", "regression", 1, "mse"),
        ),
        sources=(LABEL, "petal length (cm)", "petal width (cm)"),
    ),
    "wine_chem": TabularRecipe(
        loader="load_wine",
        tasks=(
            TaskSpec("cultivar", "classification", 3, "accuracy"),
            TaskSpec("alcohol", "regression", 1, "mse"),
            TaskSpec("malic_acid", "regression", 1, "mse"),
            TaskSpec("alcalinity", "regression", 1, "mse"),
            TaskSpec("flavanoids", "regression", 1, "mse"),
        ),
        sources=(LABEL, "alcohol", "malic_acid", "alcalinity_of_ash", "flavanoids"),
        dropped=("total_phenols",),
    ),
    "breast_cancer_shape": TabularRecipe(
        loader="load_breast_cancer",
        tasks=(
            TaskSpec("diagnosis", "classification", 2, "accuracy"),
            TaskSpec("mean_texture", "regression", 1, "mse"),
            TaskSpec("mean_area", "regression", 1, "mse"),
            TaskSpec("mean_smoothness", "regression", 1, "mse"),
            TaskSpec("area_error", "regression", 1, "mse"),
        ),
        sources=(LABEL, "mean texture", "mean area", "mean smoothness", "area error"),
        dropped=(
            "mean radius",
            "mean perimeter",
            "worst radius",
            "worst perimeter",
            "worst area",
            "worst texture",
            "worst smoothness",
            "radius error",
            "perimeter error",
        ),
    ),
}
"""The data sets a :class:`TabularSuite` offers, by ``dataset`` name."""


@lru_cache(maxsize=len(RECIPES))
def load_table(dataset: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Features ``(n, d)`` float64, their column names, and the label, read once per
    process (read-only arrays)."""
    import sklearn.datasets  # local import: sklearn is slow to import

    recipe = RECIPES[dataset]
    kwargs = {} if recipe.scaled is None else {"scaled": recipe.scaled}
    bunch = getattr(sklearn.datasets, recipe.loader)(**kwargs)
    features = np.asarray(bunch.data, dtype=np.float64)
    label = np.asarray(bunch.target)
    for array in (features, label):
        array.setflags(write=False)
    return features, tuple(str(n) for n in bunch.feature_names), label


@dataclass(frozen=True)
class TabularSuite:
    """A bundled tabular data set with a classification and raw-scale regressions
    (module docstring).

    Attributes:
        name: the suite's name; empty means the data set's name.
        dataset: one of :data:`RECIPES` (``wine``, ``breast_cancer``, ``diabetes``,
            ``diabetes_blood``, ``iris``, ``wine_chem``, ``breast_cancer_shape``).
        tasks: task names to include (any subset of the data set's tasks, in the given
            order); ``None`` for all. Every task column leaves the inputs either way.
        auxiliary: task names that only help (not scored); ``None``: none.
        val_fraction, test_fraction: share of the rows per held-out split.
        hidden: widths of the shared MLP trunk.
    """

    name: str = ""
    dataset: str = "wine"
    tasks: tuple[str, ...] | None = None
    auxiliary: tuple[str, ...] | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    hidden: tuple[int, ...] = (64, 64)

    def __post_init__(self) -> None:
        if self.dataset not in RECIPES:
            raise ValueError(
                f"suite {self.name or 'tabular'!r}: unknown dataset {self.dataset!r}; use one "
                f"of {', '.join(RECIPES)}"
            )
        if not self.name:
            object.__setattr__(self, "name", self.dataset.replace("_", "-"))
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"suite {self.name!r}: hidden must be positive widths")
        self.describe()  # fail early on a bad task name or auxiliary choice
        split_rows(10, self.val_fraction, self.test_fraction, np.random.default_rng(0))

    @property
    def recipe(self) -> TabularRecipe:
        return RECIPES[self.dataset]

    def describe(self) -> list[TaskSpec]:
        specs = select_tasks(self.name, self.recipe.tasks, self.tasks)
        return mark_auxiliary(self.name, specs, self.auxiliary)

    def sample(self, seed: int) -> SuiteInstance:
        features, columns, label = load_table(self.dataset)
        rows = split_rows(
            len(features), self.val_fraction, self.test_fraction, np.random.default_rng(seed)
        )
        x = torch.as_tensor(self._inputs(features, columns, rows["train"]))
        specs = self.describe()
        data = []
        for spec in specs:
            y = self._targets(spec, features, columns, label)
            data.append(TaskData(*(t for s in SPLITS for t in (x[rows[s]], y[rows[s]]))))
        return SuiteInstance(
            name=self.name,
            tasks=specs,
            data=data,
            body=MLPBody(x.shape[1], self.hidden),
            input_shape=(x.shape[1],),
            info={"seed": seed, "dataset": self.dataset, "rows": {s: len(rows[s]) for s in SPLITS}},
        )

    def _inputs(
        self, features: np.ndarray, columns: tuple[str, ...], train_rows: np.ndarray
    ) -> np.ndarray:
        """The columns no task reads (and none dropped), z-scored with training rows."""
        removed = set(self.recipe.sources) | set(self.recipe.dropped)
        keep = [i for i, c in enumerate(columns) if c not in removed]
        return standardize_columns(features[:, keep], train_rows)

    def _targets(
        self, spec: TaskSpec, features: np.ndarray, columns: tuple[str, ...], label: np.ndarray
    ) -> torch.Tensor:
        source = self.recipe.sources[[t.name for t in self.recipe.tasks].index(spec.name)]
        values = label if source == LABEL else features[:, columns.index(source)]
        if spec.kind == "regression":
            return as_regression(values)  # raw units: the point of this suite
        classes = np.unique(values)  # e.g. diabetes' sex is coded 1 / 2
        return as_classes(np.searchsorted(classes, values))
