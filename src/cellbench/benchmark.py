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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold, cross_val_predict
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier

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
class ClassifierSpec:
    name: str
    build: Callable[[dict, int], object]
    stochastic: bool


def _knn(cfg: dict, seed: int):
    return KNeighborsClassifier(n_neighbors=int(cfg.get("n_neighbors", 11)), metric="euclidean")


def _l1_logreg(cfg: dict, seed: int):
    # scikit-learn's 2019 L1 default (the seed's): liblinear, one-vs-rest
    return OneVsRestClassifier(
        LogisticRegression(
            l1_ratio=1.0,
            C=float(cfg.get("C", 1.0)),
            solver="liblinear",
            max_iter=int(cfg.get("max_iter", 1000)),
            tol=float(cfg.get("tol", 1e-4)),
            random_state=seed,
        )
    )


def _random_forest(cfg: dict, seed: int):
    grid = cfg.get("param_grid") or SEED_RF_GRID
    grid = {k: [None if v in ("None", None) else v for v in vals] for k, vals in grid.items()}
    n_candidates = int(np.prod([len(v) for v in grid.values()]))
    return RandomizedSearchCV(
        RandomForestClassifier(random_state=seed, n_jobs=int(cfg.get("n_jobs", 1))),
        grid,
        n_iter=min(int(cfg.get("n_iter", 100)), n_candidates),
        cv=StratifiedKFold(int(cfg.get("cv", 5)), shuffle=True, random_state=seed),
        scoring="balanced_accuracy",
        random_state=seed,
        n_jobs=int(cfg.get("search_n_jobs", 1)),
        refit=True,
    )


class EndToEnd:
    """The network's own prediction: the class whose probability column (``Prob_<label>``) is largest.

    Nothing is fitted; the Training CV error of an end-to-end model is its error on the part of
    Training it held out for model selection (``Metadata_Validation``), set by the caller.
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
    "knn": ClassifierSpec("knn", _knn, stochastic=False),
    "l1_logreg": ClassifierSpec("l1_logreg", _l1_logreg, stochastic=False),
    "random_forest": ClassifierSpec("random_forest", _random_forest, stochastic=True),
    "end_to_end": ClassifierSpec("end_to_end", lambda cfg, seed: None, stochastic=False),
}


def _cv_error(model, x, y, folds: int, seed: int) -> float:
    """Training CV error: the search's own best score, else k-fold on clones of ``model``."""
    if hasattr(model, "best_score_"):
        return float(1.0 - model.best_score_)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return balanced_error(y, cross_val_predict(model, x, y, cv=cv))


def evaluate_features(
    table: pd.DataFrame,
    representation: str,
    layer: str,
    classifiers: dict[str, dict],
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
    unknown = sorted(set(classifiers) - set(CLASSIFIERS))
    if unknown:
        raise ValueError(f"unknown classifier(s) {unknown}; available: {sorted(CLASSIFIERS)}")
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    y = table[label_col].to_numpy()
    split = table[split_col].astype(str).to_numpy()
    labels = np.unique(y)
    train = split == "train"
    x_train, x_all = standardize_by_training(x[train], x)
    rows, conf_rows = [], []
    for clf_name, cfg in classifiers.items():
        spec = CLASSIFIERS[clf_name]
        cfg = dict(cfg or {})
        run_seeds = list(seeds) if spec.stochastic else [seeds[0]]
        errors = {s: [] for s in splits}
        cv_errors = []
        conf = {s: np.zeros((len(labels), len(labels)), np.int64) for s in splits}
        end_to_end = clf_name == "end_to_end"
        for seed in run_seeds:
            if end_to_end:  # raw probabilities: standardising would change the argmax
                model, inputs = EndToEnd(feats), x
                held = train & table.get("Metadata_Validation", pd.Series(False, index=table.index)).to_numpy(bool)
                cv_errors.append(balanced_error(y[held], model.predict(x[held])) if held.any() else float("nan"))
            else:
                model, inputs = spec.build(cfg, int(seed)), x_all
                model.fit(x_train, y[train])
                cv_errors.append(_cv_error(model, x_train, y[train], cv_folds, int(seed)))
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
