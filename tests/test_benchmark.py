import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from cellbench.benchmark import evaluate_features, select_best
from cellbench.metrics import balanced_error

SPLITS = ["train", "test1", "test2", "test3", "test4"]


from .conftest import base_params

CLASSIFIERS = base_params("evaluation.classifiers")

def _table(rng, n=400, shift=0.0):
    y = rng.integers(0, 3, n)
    split = np.array(SPLITS)[rng.integers(0, 5, n)]
    split[:15] = "train"
    y[:15] = np.arange(15) % 3
    x = rng.normal(size=(n, 4)) + y[:, None] * 1.5
    x[split == "test4"] += shift
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(4)])
    df.insert(0, "Metadata_Label", y)
    df.insert(0, "Metadata_Split", split)
    return df


def test_knn_protocol_equals_direct_sklearn(rng):
    df = _table(rng)
    res, conf = evaluate_features(df, "toy", "l0", {"knn": {"n_neighbors": 11}}, seeds=[0, 1])
    tr = df[df.Metadata_Split == "train"]
    scaler = StandardScaler().fit(tr[["f0", "f1", "f2", "f3"]])
    knn = KNeighborsClassifier(11).fit(scaler.transform(tr[["f0", "f1", "f2", "f3"]]), tr.Metadata_Label)
    for s in SPLITS:
        sub = df[df.Metadata_Split == s]
        expected = balanced_error(sub.Metadata_Label, knn.predict(scaler.transform(sub[["f0", "f1", "f2", "f3"]])))
        row = res[res.split == s].iloc[0]
        assert row.balanced_error == pytest.approx(expected)
        assert row.n_cells == len(sub)
        assert row.n_seeds == 1  # deterministic: fitted once
    assert conf.groupby("split")["count"].sum().to_dict() == df.Metadata_Split.value_counts().to_dict()


def test_shift_raises_error_and_seeds_are_repeated(rng):
    df = _table(rng, shift=3.0)
    res, _ = evaluate_features(
        df, "toy", "l0", {"l1_logreg": {**CLASSIFIERS["l1_logreg"], "max_iter": 200},
                          "random_forest": {**CLASSIFIERS["random_forest"], "n_iter": 2, "cv": 3}}, seeds=[0, 1]
    )
    rf = res[res.classifier == "random_forest"].set_index("split")
    assert rf.loc["test4", "balanced_error"] > rf.loc["test1", "balanced_error"] + 0.1
    assert (rf.n_seeds == 2).all()  # stochastic: repeated per seed
    assert (res[res.classifier == "l1_logreg"].n_seeds == 1).all()  # liblinear: deterministic
    best = select_best(res)
    assert len(best) == 1 and best.classifier.iloc[0] in {"l1_logreg", "random_forest"}


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.assign(f0=np.where(np.arange(len(d)) == 3, np.nan, d.f0)), r"NaN or infinite values in column\(s\) \['f0'\]"),
        (lambda d: d.assign(f1=np.where(np.arange(len(d)) == 3, np.inf, d.f1)), r"\['f1'\]"),
        (lambda d: d.assign(f2="x"), r"non-numeric feature column\(s\) \['f2'\]"),
        (lambda d: d[d.Metadata_Split != "test2"], r"split\(s\) \['test2'\] missing"),
        (lambda d: d.assign(Metadata_Label=np.where(d.Metadata_Split == "test3", 9, d.Metadata_Label)), r"class\(es\) \[9\].*absent from the Training"),
        (lambda d: d.drop(columns="Metadata_Label"), "missing metadata column 'Metadata_Label'"),
    ],
)
def test_bad_tables_are_named(rng, mutate, match):
    with pytest.raises(ValueError, match=match):
        evaluate_features(mutate(_table(rng)), "toy", "l0", {"knn": {"n_neighbors": 11}})


def test_unknown_classifier(rng):
    with pytest.raises(ValueError, match="unknown classifier"):
        evaluate_features(_table(rng), "toy", "l0", {"svm": {}})


def test_percent_cells_by_hand():
    from cellbench.reporting.tables import percent_cell, percent_of

    assert percent_cell(0.1234) == "12.3"
    assert percent_cell(0.1234, 0.0051) == "12.3 ± 0.5"
    assert percent_cell(float("nan"), 0.1) == "-"
    assert percent_of([0.1, 0.2, np.nan]) == "15.0 ± 7.1"  # sample SD of 10 and 20 %: 7.07
    assert percent_of([0.25]) == "25.0"
    assert percent_of([]) == "-"


def test_classifier_settings_are_checked_and_end_to_end_is_a_registry_entry():
    import pytest

    from cellbench.benchmark import CLASSIFIERS as REGISTRY
    from cellbench.benchmark import EndToEnd, classifier_configs
    from cellbench.config import ConfigError

    with pytest.raises(ConfigError, match=r"evaluation\.classifiers\.knn\.k: unknown parameter"):
        classifier_configs({"knn": {"k": 3}})
    with pytest.raises(ConfigError, match=r"evaluation\.classifiers\.svm: unknown classifier"):
        classifier_configs({"svm": {}})
    spec = REGISTRY["end_to_end"]
    assert spec.applies(["Prob_0", "Prob_1"]) and not spec.applies(["f0", "Prob_1"]) and not spec.standardise
    assert not REGISTRY["knn"].applies(["Prob_0", "Prob_1"])
    assert list(EndToEnd(["Prob_0", "Prob_3"]).predict(np.array([[0.2, 0.8], [0.9, 0.1]]))) == [3, 0]
