"""TVN / CORAL, NSC / NSCB on the real BBBC021 profiles, mAP parity with copairs, Dask aggregation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellbench.ingest import feature_columns, ljosa_profiles
from cellbench.metrics.retrieval import (
    average_precision,
    benjamini_hochberg,
    mean_average_precision,
    nearest_neighbour_matching,
    nsc_nscb,
    null_average_precision,
)
from cellbench.profiling import aggregate, apply_recipe, coral_per_batch, tvn, tvn_fit

ROOT = Path(__file__).resolve().parents[2]
BBBC = ROOT / "data" / "01_raw" / "bbbc021_ljosa2013"
LINCS = ROOT / "tests" / "data" / "cell_painting_profiles" / "SQ00015054_normalized_feature_select.csv.gz"


@pytest.fixture(scope="module")
def ljosa():
    return ljosa_profiles(BBBC / "ljosa_jbiomolscreen_2013_per_well_mean.csv.gz", BBBC / "BBBC021_v1_image.csv.gz",
                          BBBC / "BBBC021_v1_moa.csv")


def test_tvn_whitens_controls_hand_case(rng):
    cov = np.array([[4.0, 1.5], [1.5, 1.0]])
    ctrl = rng.multivariate_normal([3.0, -1.0], cov, size=4000)
    mu, W = tvn_fit(ctrl, reg=0.0)
    white = (ctrl - mu) @ W
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(2), atol=1e-10)
    # PCA order: the first output axis is the control's largest-variance direction
    vals, vecs = np.linalg.eigh(np.cov(ctrl, rowvar=False))
    assert abs(abs(W[:, 0] @ vecs[:, -1]) * np.sqrt(vals[-1]) - 1) < 1e-8
    mu, W_reg = tvn_fit(ctrl, reg=1.0)
    assert np.cov((ctrl - mu) @ W_reg, rowvar=False)[0, 0] == pytest.approx(vals[-1] / (vals[-1] + 1), rel=1e-8)
    _, W_rot = tvn_fit(ctrl, reg=0.0, rotate=True)
    np.testing.assert_allclose(W_rot, W_rot.T, atol=1e-10)  # ZCA form is symmetric
    with pytest.raises(ValueError, match="at least 2 control"):
        tvn_fit(ctrl[:1])
    with pytest.raises(ValueError, match="use reg > 0"):
        tvn_fit(ctrl[:2], reg=0.0)


def test_coral_aligns_batch_second_moments(rng):
    X = np.concatenate([rng.normal(0, 1, (300, 3)), rng.normal(0, 3, (300, 3)) @ np.diag([1, 2, 0.5])])
    batches = np.repeat(["w1", "w2"], 300)
    ctrl = np.tile(np.arange(300) % 3 == 0, 2)
    out = coral_per_batch(X, batches, ctrl, reg=1e-9)
    target = X[ctrl].T @ X[ctrl] / ctrl.sum()
    for b in ("w1", "w2"):
        c = out[(batches == b) & ctrl]
        np.testing.assert_allclose(c.T @ c / len(c), target, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="batch 'w2' has no control rows"):
        coral_per_batch(X, batches, ctrl & (batches == "w1"))


def test_tvn_on_real_profiles(ljosa):
    wells, _ = apply_recipe(ljosa, {"normalize": {"method": "standardize", "by": "Metadata_Plate"},
                                    "feature_select": ["drop_na_columns", "variance_threshold", "correlation_threshold"]})
    out = tvn(wells, reg=1e-3)
    feats = [c for c in out if c.startswith("TVN_")]
    ctrl = out[out["Metadata_Control"]][feats].to_numpy()
    cov = np.cov(ctrl, rowvar=False)
    top = np.diag(cov)[:50]  # well-spanned directions are whitened to ~1
    assert np.all(np.abs(top - 1) < 0.01)
    with pytest.raises(ValueError, match="selects no rows"):
        tvn(wells, samples="Metadata_Compound == 'water'")


def test_nearest_neighbour_matching_hand_case():
    meta = pd.DataFrame({"moa": ["A", "A", "B", "B"], "cpd": ["a1", "a2", "b1", "b1"], "week": ["1", "2", "1", "1,2"]})
    feats = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 1.0]])
    nsc = nearest_neighbour_matching(meta, feats, "moa", ["cpd"])
    # a1 -> a2 (A, correct); a2 -> a1; b1 rows may only match compounds a1 / a2 -> wrong
    assert nsc["correct"].tolist() == [True, True, False, False]
    nscb = nearest_neighbour_matching(meta, feats, "moa", ["cpd", "week"], multi_valued=["week"])
    assert nscb["neighbour"].tolist() == [1, 0, 1, -1]  # row 3 shares weeks with everyone
    assert nscb["correct"].tolist() == [True, True, False, False]


def test_nsc_nscb_on_ljosa_reproduces_the_published_classical_result(ljosa):
    """Per-plate DMSO z-score, feature selection, mean of wells, cosine 1-NN: the cytominer
    vignette reports 82 % NSC (95 % CI 73-89 %) on this very table."""
    _, treatments = apply_recipe(ljosa, {
        "normalize": {"method": "standardize", "by": "Metadata_Plate"},
        "feature_select": ["drop_na_columns", "variance_threshold", "correlation_threshold"],
        "treatment": {"operation": "mean"}})
    res = nsc_nscb(treatments, treatments[feature_columns(treatments)].to_numpy())
    assert res["nsc_n"] == 103 and res["nscb_n"] == 92
    assert res["nscb_dropped_moas"] == ["Cholesterol-lowering", "Kinase inhibitors"]
    assert 0.78 <= res["nsc"] <= 0.86
    assert res["nscb"] < res["nsc"]
    raw = treatments.copy()
    assert set(raw["Metadata_Batch"].str.split(",").explode()) <= {f"Week{i}" for i in range(1, 11)}


def _lincs():
    from copairs.matching import assign_reference_index

    df = pd.read_csv(LINCS)
    df = assign_reference_index(df, "Metadata_broad_sample == 'DMSO'", reference_col="Metadata_Reference_Index",
                                default_value=-1)
    meta = df[[c for c in df.columns if c.startswith("Metadata_")]]
    return meta, df[feature_columns(df)].to_numpy()


ACTIVITY = dict(pos_sameby=["Metadata_broad_sample", "Metadata_Reference_Index"], pos_diffby=[],
                neg_sameby=[], neg_diffby=["Metadata_broad_sample", "Metadata_Reference_Index"])


def test_average_precision_and_map_match_copairs(tmp_path):
    from copairs.map import average_precision as cp_ap
    from copairs.map import mean_average_precision as cp_map

    meta, feats = _lincs()
    ref = cp_ap(meta, feats, progress_bar=False, **ACTIVITY)
    ours = average_precision(meta, feats, **ACTIVITY)
    np.testing.assert_allclose(ours["average_precision"], ref["average_precision"], atol=1e-12)
    assert (ours["n_pos_pairs"].to_numpy() == ref["n_pos_pairs"].to_numpy()).all()
    assert (ours["n_total_pairs"].to_numpy() == ref["n_total_pairs"].to_numpy()).all()
    ref = ref[ref["Metadata_broad_sample"] != "DMSO"]
    ours = ours[ours["Metadata_broad_sample"] != "DMSO"]
    # copairs caches its nulls in ~/.copairs keyed without the per-configuration seed, so what a user's
    # cache already holds changes its p-values: give the reference an empty cache of its own
    ref_map = cp_map(ref, sameby=["Metadata_broad_sample"], null_size=2000, threshold=0.05, seed=0, progress_bar=False,
                     cache_dir=tmp_path / "copairs")
    our_map = mean_average_precision(ours, ["Metadata_broad_sample"], null_size=2000, threshold=0.05, seed=0)
    np.testing.assert_allclose(our_map["mean_average_precision"], ref_map["mean_average_precision"], atol=1e-12)
    np.testing.assert_allclose(our_map["p_value"], ref_map["p_value"], atol=1e-12)
    np.testing.assert_allclose(our_map["corrected_p_value"], ref_map["corrected_p_value"], atol=1e-12)


def test_map_reference_numbers_on_the_lincs_plate():
    """PROFILING.md: 58 compounds, mean mAP 0.617832, 31 with corrected p < 0.05 (null 10,000, seed 0)."""
    meta, feats = _lincs()
    ap = average_precision(meta, feats, **ACTIVITY)
    maps = mean_average_precision(ap[ap["Metadata_broad_sample"] != "DMSO"], ["Metadata_broad_sample"],
                                  null_size=10_000, threshold=0.05, seed=0)
    assert len(maps) == 58
    assert maps["mean_average_precision"].mean() == pytest.approx(0.617832, abs=1e-6)
    assert int(maps["below_corrected_p"].sum()) == 31


def test_ap_hand_case_and_null():
    meta = pd.DataFrame({"g": ["a", "a", "b", "b"]})
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    ap = average_precision(meta, feats, ["g"], [], [], ["g"])
    # row 0: ranking by cosine = [row 2 (neg, .995), row 3 (neg, .0995), row 1 (pos, 0)] -> AP = 1/3
    assert ap["average_precision"].iloc[0] == pytest.approx(1 / 3)
    from copairs.compute import random_ap

    np.testing.assert_array_equal(null_average_precision(3, 10, 500, 7), random_ap(500, 3, 10, 7))
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.5, 0.002])
    np.testing.assert_allclose(benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])
    with pytest.raises(ValueError, match="no positive pairs"):
        average_precision(pd.DataFrame({"g": ["a", "b"]}), feats[:2], ["g"], [], [], ["g"])


def test_map_null_cache_is_keyed_atomic_and_changes_nothing(tmp_path, monkeypatch):
    import cellbench.metrics.retrieval as retrieval

    meta, feats = _lincs()
    ap = average_precision(meta, feats, **ACTIVITY)
    ap = ap[ap["Metadata_broad_sample"] != "DMSO"]
    args = dict(sameby=["Metadata_broad_sample"], null_size=300, threshold=0.05, seed=0)
    plain = mean_average_precision(ap, **args)
    cached = mean_average_precision(ap, **args, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(plain, cached)
    files = sorted(tmp_path.rglob("*.npy"))
    assert files and all(f.parent.parent.name == "ns300" and f.parent.name.startswith("seed") for f in files)
    assert not list(tmp_path.rglob(".*tmp-*"))  # written atomically, no temporaries left
    files[0].write_bytes(b"not a numpy file")  # a damaged entry is drawn again
    monkeypatch.setattr(retrieval, "null_average_precision", _count_calls(retrieval.null_average_precision))
    again = mean_average_precision(ap, **args, cache_dir=tmp_path)
    pd.testing.assert_frame_equal(plain, again)
    assert retrieval.null_average_precision.calls == 1  # only the damaged one was recomputed
    other = mean_average_precision(ap, **{**args, "seed": 1}, cache_dir=tmp_path)  # another seed: other keys
    assert not np.allclose(other["p_value"], plain["p_value"])


def _count_calls(func):
    def wrapper(*a, **k):
        wrapper.calls += 1
        return func(*a, **k)
    wrapper.calls = 0
    return wrapper


def test_aggregate_on_dask_local_cluster(tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    from cellbench.profiling import aggregate_dask

    rng = np.random.default_rng(1)
    for p in range(3):  # one Parquet partition per plate, as the feature tables are stored
        n = 400
        pd.DataFrame({"Metadata_Plate": f"P{p}", "Metadata_Well": rng.choice(["A01", "A02", "B07"], n),
                      **{f"f{i}": rng.normal(size=n) for i in range(6)}}).to_parquet(tmp_path / f"P{p}.parquet")
    whole = pd.concat([pd.read_parquet(f) for f in sorted(tmp_path.glob("*.parquet"))], ignore_index=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        ddf = dd.read_parquet(str(tmp_path))
        out = aggregate_dask(ddf, operation="median")
    pd.testing.assert_frame_equal(out, aggregate(whole, operation="median"), check_dtype=False)  # dask: pyarrow strings
