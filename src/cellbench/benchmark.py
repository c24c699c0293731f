"""The COOS-7 evaluation protocol (seed 000, section 3.1).

For a feature table (metadata + numeric features, one row per cell):

1. features are centred and scaled with the mean and standard deviation of the *Training* split;
2. each classifier is fitted on Training only: ``knn`` (k = 11, Euclidean), ``l1_logreg``
   (L1-penalised logistic regression, liblinear one-vs-rest as in scikit-learn 2019) and ``random_forest`` (random search over the seed's grid,
   selected by stratified k-fold cross-validation on Training);
3. every split is predicted and scored by class-balanced error, with its confusion matrix.

Stochastic classifiers are repeated over seeds (mean and sample standard deviation); a
deterministic one is fitted once. A Training cross-validation error is recorded for every
representation, layer and classifier so that a layer can be chosen without looking at any test
split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier

from cellbench.config import Config, ConfigError, positive
from cellbench.metadata import feature_columns
from cellbench.metrics import balanced_error, confusion_matrix

SPLITS = ("train", "test1", "test2", "test3", "test4")
SEED_RF_GRID = {
    "n_estimators": [20, 40, 60, 80, 120, 140, 160, 180, 200],
    "max_features": ["log2", "sqrt"],
    "max_depth": [1, 13, 25, 37, 50, None],
    "min_samples_split": [2, 5, 10, 20, 40],
    "min_samples_leaf": [1, 2, 4, 8, 16],
}


def validate_feature_table(
    table: pd.DataFrame,
    name: str,
    label_col: str = "Metadata_Label",
    split_col: str = "Metadata_Split",
    splits: Sequence[str] = SPLITS,
) -> tuple[list[str], np.ndarray]:
    """Check a feature table; return its feature columns and their float64 matrix, or raise
    ``ValueError`` naming the problem."""
    for col in (label_col, split_col):
        if col not in table.columns:
            raise ValueError(f"feature table {name!r}: missing metadata column {col!r}")
    feats = feature_columns(table)
    if not feats:
        raise ValueError(f"feature table {name!r}: no feature columns (all columns start with 'Metadata_')")
    non_numeric = [c for c in feats if not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        raise ValueError(f"feature table {name!r}: non-numeric feature column(s) {non_numeric[:5]}")
    values = table[feats].to_numpy(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [feats[j] for j in np.flatnonzero(bad.any(axis=0))[:5]]
        raise ValueError(
            f"feature table {name!r}: NaN or infinite values in column(s) {cols} ({int(bad.sum())} cells)"
        )
    present = set(table[split_col].astype(str))
    missing = [s for s in splits if s not in present]
    if missing:
        raise ValueError(f"feature table {name!r}: split(s) {missing} missing from {split_col!r}")
    train_classes = set(table.loc[table[split_col] == "train", label_col])
    absent = sorted(set(table[label_col]) - train_classes, key=str)
    if absent:
        raise ValueError(
            f"feature table {name!r}: class(es) {absent} of {label_col!r} absent from the Training split"
        )
    return feats, values


def standardize_by_training(x_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``(x - mean_train) / sd_train`` (population sd; constant features are only centred)."""
    mu = x_train.mean(axis=0)
    sd = x_train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(x - mu) / sd for x in (x_train, *others)]


@dataclass(frozen=True)
class KnnConfig(Config):
    """``evaluation.classifiers.knn``: k nearest neighbours (Euclidean), the seed's k = 11."""

    n_neighbors: int

    def check(self, path: str) -> None:
        positive(path, n_neighbors=self.n_neighbors)


@dataclass(frozen=True)
class L1LogregConfig(Config):
    """``evaluation.classifiers.l1_logreg``: L1 logistic regression (liblinear, one-vs-rest)."""

    C: float
    max_iter: int
    tol: float

    def check(self, path: str) -> None:
        positive(path, C=self.C, max_iter=self.max_iter, tol=self.tol)


@dataclass(frozen=True)
class RandomForestConfig(Config):
    """``evaluation.classifiers.random_forest``: random search (``n_iter`` samples of the grid,
    ``param_grid: null`` = the seed's grid) by stratified ``cv``-fold CV on Training."""

    n_iter: int
    cv: int
    n_jobs: int
    search_n_jobs: int
    param_grid: dict | None

    def check(self, path: str) -> None:
        positive(path, n_iter=self.n_iter)
        for key in ("n_jobs", "search_n_jobs"):
            if getattr(self, key) == 0:
                raise ConfigError(f"{path}.{key}: 0 has no meaning; a number of processes, or -1 for all cores")
        if self.cv < 2:
            raise ConfigError(f"{path}.cv: at least 2 folds expected, got {self.cv}")


@dataclass(frozen=True)
class EndToEndConfig(Config):
    """``evaluation.classifiers.end_to_end``: a network's own predictions (no settings)."""


def _is_probability_table(columns: Sequence[str]) -> bool:
    return len(columns) > 0 and all(str(c).startswith("Prob_") for c in columns)


def _cv_error(model, x, y, folds: int, seed: int, table: pd.DataFrame, train: np.ndarray) -> float:
    """Training CV error: the search's own best score, else k-fold on clones of ``model``."""
    if hasattr(model, "best_score_"):
        return float(1.0 - model.best_score_)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return balanced_error(y, cross_val_predict(model, x, y, cv=cv))


def _held_out_error(model, x, y, folds: int, seed: int, table: pd.DataFrame, train: np.ndarray) -> float:
    """An end-to-end network's Training CV error: its error on the Training cells it held out
    for model selection (``Metadata_Validation``); NaN when it held none out."""
    held = table.get("Metadata_Validation", pd.Series(False, index=table.index)).to_numpy(bool)[train]
    return balanced_error(y[held], model.predict(x[held])) if held.any() else float("nan")


@dataclass(frozen=True)
class ClassifierSpec:
    """A classifier of the protocol: its configuration class, how to build it for a seed and the
    feature columns, whether it is stochastic (repeated over seeds), whether it sees Training-
    standardised features, which tables it applies to and how its Training CV error is taken."""

    name: str
    config: type[Config]
    build: Callable[[Config, int, Sequence[str]], object]
    stochastic: bool
    standardise: bool = True
    applies: Callable[[Sequence[str]], bool] = lambda columns: not _is_probability_table(columns)
    training_error: Callable = _cv_error


def _knn(cfg: KnnConfig, seed: int, columns):
    return KNeighborsClassifier(n_neighbors=cfg.n_neighbors, metric="euclidean")


def _l1_logreg(cfg: L1LogregConfig, seed: int, columns):
    # scikit-learn's 2019 L1 default (the seed's): liblinear, one-vs-rest
    return OneVsRestClassifier(
        LogisticRegression(l1_ratio=1.0, C=cfg.C, solver="liblinear", max_iter=cfg.max_iter, tol=cfg.tol,
                           random_state=seed)
    )


def _random_forest(cfg: RandomForestConfig, seed: int, columns):
    grid = cfg.param_grid or SEED_RF_GRID
    grid = {k: [None if v in ("None", None) else v for v in vals] for k, vals in grid.items()}
    n_candidates = int(np.prod([len(v) for v in grid.values()]))
    return RandomizedSearchCV(
        RandomForestClassifier(random_state=seed, n_jobs=cfg.n_jobs),
        grid,
        n_iter=min(cfg.n_iter, n_candidates),
        cv=StratifiedKFold(cfg.cv, shuffle=True, random_state=seed),
        scoring="balanced_accuracy",
        random_state=seed,
        n_jobs=cfg.search_n_jobs,
        refit=True,
    )


class EndToEnd:
    """The network's own prediction: the class whose probability column (``Prob_<label>``) is largest.

    Nothing is fitted; the Training CV error of an end-to-end model is its error on the part of
    Training it held out for model selection (``Metadata_Validation``).
    """

    def __init__(self, columns: Sequence[str]):
        bad = [c for c in columns if not str(c).startswith("Prob_")]
        if bad:
            raise ValueError(f"classifier end_to_end needs class-probability columns 'Prob_<label>', got {bad[:3]}")
        raw = [str(c)[len("Prob_"):] for c in columns]
        self.classes_ = np.array([int(r) if r.lstrip("-").isdigit() else r for r in raw])

    def fit(self, x, y):
        return self

    def predict(self, x):
        return self.classes_[np.argmax(x, axis=1)]


CLASSIFIERS: dict[str, ClassifierSpec] = {
    "knn": ClassifierSpec("knn", KnnConfig, _knn, stochastic=False),
    "l1_logreg": ClassifierSpec("l1_logreg", L1LogregConfig, _l1_logreg, stochastic=False),
    "random_forest": ClassifierSpec("random_forest", RandomForestConfig, _random_forest, stochastic=True),
    # raw probabilities, never standardised (that could change the argmax); only on Prob_ tables
    "end_to_end": ClassifierSpec("end_to_end", EndToEndConfig, lambda cfg, seed, columns: EndToEnd(columns),
                                 stochastic=False, standardise=False, applies=_is_probability_table,
                                 training_error=_held_out_error),
}


def classifier_configs(classifiers: Mapping, path: str = "evaluation.classifiers") -> dict[str, Config]:
    """``{name: validated settings}`` of a ``classifiers`` section (unknown names and keys are errors)."""
    if not isinstance(classifiers, Mapping) or not classifiers:
        raise ConfigError(f"{path}: a mapping of classifier name -> settings expected, got {classifiers!r}")
    out = {}
    for name, cfg in classifiers.items():
        if name not in CLASSIFIERS:
            raise ConfigError(f"{path}.{name}: unknown classifier; known {sorted(CLASSIFIERS)}")
        out[name] = CLASSIFIERS[name].config.from_params(cfg or {}, f"{path}.{name}")
    return out


@dataclass(frozen=True)
class EvaluationConfig(Config):
    """``evaluation``: the COOS protocol's splits, seeds, folds and classifiers, and the report."""

    splits: tuple[str, ...]
    seeds: tuple[int, ...]
    cv_folds: int
    confusion_splits: tuple[str, ...]
    published_reference: bool
    class_names: tuple[str, ...] | None
    classifiers: dict

    def check(self, path: str) -> None:
        if not self.seeds:
            raise ConfigError(f"{path}.seeds: at least one seed expected")
        if self.cv_folds < 2:
            raise ConfigError(f"{path}.cv_folds: at least 2 folds expected, got {self.cv_folds}")
        classifier_configs(self.classifiers, f"{path}.classifiers")


def evaluate_features(
    table: pd.DataFrame,
    representation: str,
    layer: str,
    classifiers: Mapping[str, dict | Config],
    seeds: Sequence[int] = (0,),
    splits: Sequence[str] = SPLITS,
    cv_folds: int = 5,
    label_col: str = "Metadata_Label",
    split_col: str = "Metadata_Split",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run the protocol on one feature table.

    Returns ``results`` (one row per classifier and split: ``balanced_error`` mean over seeds,
    ``balanced_error_std``, ``n_seeds``, ``n_cells``, ``cv_balanced_error`` on Training) and
    ``confusion`` (long form: classifier, split, true, predicted, count summed over seeds).
    """
    name = f"{representation}/{layer}"
    feats, x = validate_feature_table(table, name, label_col, split_col, splits)
    configs = classifier_configs(classifiers, "classifiers")
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    y = table[label_col].to_numpy()
    split = table[split_col].astype(str).to_numpy()
    labels = np.unique(y)
    train = split == "train"
    x_train, x_all = standardize_by_training(x[train], x)
    rows, conf_rows = [], []
    for clf_name, cfg in configs.items():
        spec = CLASSIFIERS[clf_name]
        if not spec.applies(feats):
            continue
        run_seeds = list(seeds) if spec.stochastic else [seeds[0]]
        errors = {s: [] for s in splits}
        cv_errors = []
        conf = {s: np.zeros((len(labels), len(labels)), np.int64) for s in splits}
        fit_x, inputs = (x_train, x_all) if spec.standardise else (x[train], x)
        for seed in run_seeds:
            model = spec.build(cfg, int(seed), feats)
            model.fit(fit_x, y[train])
            cv_errors.append(spec.training_error(model, fit_x, y[train], cv_folds, int(seed), table, train))
            for s in splits:
                m = split == s
                pred = model.predict(inputs[m])
                errors[s].append(balanced_error(y[m], pred))
                conf[s] += confusion_matrix(y[m], pred, labels)
        for s in splits:
            e = np.asarray(errors[s])
            rows.append(
                dict(
                    representation=representation,
                    layer=layer,
                    classifier=clf_name,
                    split=s,
                    balanced_error=float(e.mean()),
                    balanced_error_std=float(e.std(ddof=1)) if len(e) > 1 else 0.0,
                    n_seeds=len(e),
                    n_cells=int((split == s).sum()),
                    cv_balanced_error=float(np.mean(cv_errors)),
                )
            )
            for i, t in enumerate(labels):
                for j, p in enumerate(labels):
                    conf_rows.append(
                        dict(representation=representation, layer=layer, classifier=clf_name, split=s,
                             true=t, predicted=p, count=int(conf[s][i, j]))
                    )
    return pd.DataFrame(rows), pd.DataFrame(conf_rows)


def select_best(results: pd.DataFrame) -> pd.DataFrame:
    """Per representation, the (layer, classifier) with the lowest Training CV error (no test split used)."""
    cv = results.drop_duplicates(["representation", "layer", "classifier"])
    idx = cv.groupby("representation")["cv_balanced_error"].idxmin()
    return cv.loc[idx, ["representation", "layer", "classifier", "cv_balanced_error"]].reset_index(drop=True)


RESULT_COLUMNS = ["representation", "layer", "classifier", "split", "balanced_error", "balanced_error_std",
                  "n_seeds", "n_cells", "cv_balanced_error"]
CONFUSION_COLUMNS = ["representation", "layer", "classifier", "split", "true", "predicted", "count"]


def evaluate_layers(features: Mapping, config: EvaluationConfig, representation: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every layer of one representation (``{layer: table or loader}``, in sorted layer order)
    through every configured classifier that applies to it; an empty representation (e.g. VGG16
    without weights) gives empty tables."""
    if not features:
        return pd.DataFrame(columns=RESULT_COLUMNS), pd.DataFrame(columns=CONFUSION_COLUMNS)
    results, confusion = [], []
    for layer in sorted(features):
        part = features[layer]
        r, c = evaluate_features(part() if callable(part) else part, representation=representation, layer=layer,
                                 classifiers=config.classifiers, seeds=config.seeds, splits=config.splits,
                                 cv_folds=config.cv_folds)
        results.append(r)
        confusion.append(c)
    return pd.concat(results, ignore_index=True), pd.concat(confusion, ignore_index=True)
