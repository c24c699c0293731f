"""aggregate / normalize / feature_select: hand-computed cases and parity with pycytominer 1.7.1."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellbench.ingest import cellprofiler_table, feature_columns, ljosa_profiles
from cellbench.profiling import aggregate, aggregate_partitions, feature_select, normalize, spherize_matrix

ROOT = Path(__file__).resolve().parents[2]
CP = ROOT / "tests" / "data" / "cell_painting_profiles"
BBBC = ROOT / "data" / "01_raw" / "bbbc021_ljosa2013"
LINCS = CP / "SQ00015054_normalized_feature_select.csv.gz"
DMSO = "Metadata_broad_sample == 'DMSO'"

pycytominer = pytest.importorskip("pycytominer")
warnings.filterwarnings("ignore", category=pd.errors.PerformanceWarning)


@pytest.fixture(scope="module")
def cells():
    """Real CellProfiler single cells (JUMP plate BR00121431, well A01) spread over three wells."""
    t = cellprofiler_table(CP / "BR00121431-A01-1_Cells.csv", compartment="Cells",
                           metadata={"Plate": "BR00121431", "Well": "A01"})
    t["Metadata_Well"] = np.random.default_rng(0).choice(["A01", "A02", "B01"], len(t))
    t.loc[[3, 7], "Cells_AreaShape_Area"] = np.nan
    return t


@pytest.fixture(scope="module")
def ljosa():
    return ljosa_profiles(BBBC / "ljosa_jbiomolscreen_2013_per_well_mean.csv.gz", BBBC / "BBBC021_v1_image.csv.gz",
                          BBBC / "BBBC021_v1_moa.csv")


def test_aggregate_hand_case():
    df = pd.DataFrame({"Metadata_Well": ["B", "A", "B", "A", "A", "B"], "Metadata_ObjectNumber": [1, 2, 3, 4, 5, None],
                       "x": [1.0, 10.0, 3.0, 20.0, np.nan, 8.0], "y": [np.nan, 1.0, np.nan, 2.0, 3.0, np.nan]})
    med = aggregate(df, strata=["Metadata_Well"], features=["x", "y"], compute_object_count=True)
    assert med["Metadata_Well"].tolist() == ["A", "B"]  # sorted strata
    assert med["Metadata_Object_Count"].tolist() == [3, 2]
    np.testing.assert_allclose(med["x"], [15.0, 3.0])  # A: median(10, 20) (NaN skipped); B: median(1, 3, 8)
    np.testing.assert_allclose(med["y"], [2.0, np.nan])  # B is all NaN
    mean = aggregate(df, strata=["Metadata_Well"], features=["x"], operation="mean")
    np.testing.assert_allclose(mean["x"], [15.0, 4.0])


@pytest.mark.parametrize("operation", ["median", "mean"])
def test_aggregate_matches_pycytominer_on_real_cells(cells, operation):
    feats = feature_columns(cells)
    ref = pycytominer.aggregate(cells, features=feats, operation=operation, compute_object_count=True)
    ours = aggregate(cells, features=feats, operation=operation, compute_object_count=True, block_columns=100)
    assert list(ours.columns) == list(ref.columns)
    pd.testing.assert_frame_equal(ours, ref, check_dtype=False, rtol=1e-12, atol=1e-12)


def test_aggregate_partitions_stream_and_refuse_split_strata(cells):
    feats = feature_columns(cells)
    parts = {w: (lambda g=g: g) for w, g in cells.groupby("Metadata_Well")}
    whole = aggregate(cells, features=feats)
    pd.testing.assert_frame_equal(aggregate_partitions(parts, features=feats), whole)
    halves = [cells.iloc[:40], cells.iloc[40:]]
    with pytest.raises(ValueError, match="spans several partitions"):
        aggregate_partitions(halves, features=feats)


def test_aggregate_bad_input(cells):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['Metadata_Site'\]"):
        aggregate(cells, strata=["Metadata_Plate", "Metadata_Site"])
    with pytest.raises(ValueError, match="operation must be one of"):
        aggregate(cells, operation="mode")
    with pytest.raises(ValueError, match="not numeric"):
        aggregate(cells.assign(Cells_bad="x"), features=["Cells_bad"])
    with pytest.raises(ValueError, match="no feature columns"):
        aggregate(cells[["Metadata_Plate", "Metadata_Well"]])


def test_normalize_hand_case():
    df = pd.DataFrame({"Metadata_Control": [True, True, False, False], "f": [1.0, 3.0, 5.0, 2.0]})
    out = normalize(df, features=["f"], samples="Metadata_Control == True", method="standardize")
    np.testing.assert_allclose(out["f"], [-1.0, 1.0, 3.0, 0.0])  # controls: mean 2, population SD 1
    out = normalize(df, features=["f"], samples="Metadata_Control == True", method="mad_robustize",
                    mad_robustize_epsilon=0)
    np.testing.assert_allclose(out["f"], np.array([-1.0, 1.0, 3.0, 0.0]) / 1.4826)  # median 2, MAD 1


@pytest.mark.parametrize("method", ["standardize", "robustize", "mad_robustize"])
@pytest.mark.parametrize("samples", ["all", DMSO])
def test_normalize_matches_pycytominer(method, samples):
    df = pd.read_csv(LINCS)
    feats = feature_columns(df)
    ref = pycytominer.normalize(df, features=feats, samples=samples, method=method)
    ours = normalize(df, features=feats, samples=samples, method=method)
    assert list(ours.columns) == list(ref.columns)
    np.testing.assert_allclose(ours[feats].to_numpy(), ref[feats].to_numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sph", ["PCA", "ZCA", "PCA-cor", "ZCA-cor"])
def test_spherize_matches_pycytominer_171_and_whitens(sph):
    df = pd.read_csv(LINCS)
    feats = feature_columns(df)
    ref = pycytominer.normalize(df, features=feats, method="spherize", spherize_method=sph)
    ours = normalize(df, features=feats, method="spherize", spherize_method=sph)
    out_feats = [c for c in ours.columns if not c.startswith("Metadata_")]
    assert out_feats == [c for c in ref.columns if not c.startswith("Metadata_")]
    np.testing.assert_allclose(ours[out_feats].to_numpy(), ref[out_feats].to_numpy(), atol=1e-8)
    # fit on n > d rows: the output covariance is the identity (1.7.0 and earlier did not whiten)
    sub = df[feats[:40]]
    white = normalize(sub, features=feats[:40], meta_features=[], method="spherize", spherize_method=sph,
                      spherize_epsilon=0).to_numpy()
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(40), atol=1e-8)


def test_normalize_by_plate_equals_a_loop_of_pycytominer(ljosa):
    feats = feature_columns(ljosa)[:60]
    samples = "Metadata_Control == True"
    ours = normalize(ljosa, features=feats, samples=samples, by="Metadata_Plate")
    for plate, grp in list(ljosa.groupby("Metadata_Plate"))[:5]:
        ref = pycytominer.normalize(grp, features=feats, samples=samples)
        np.testing.assert_allclose(ours.loc[grp.index, feats].to_numpy(), ref[feats].to_numpy(), atol=1e-10)


def test_normalize_bad_input(ljosa):
    feats = feature_columns(ljosa)[:20]
    with pytest.raises(ValueError, match="selects no rows"):
        normalize(ljosa, features=feats, samples="Metadata_Compound == 'water'")
    with pytest.raises(ValueError, match="by column"):
        normalize(ljosa, features=feats, by="Metadata_Lab")
    const = ljosa.assign(**{feats[0]: 1.0})
    with pytest.raises(ValueError, match="zero variance"):
        normalize(const, features=feats, method="spherize", spherize_method="ZCA-cor")
    # a constant feature under standardize is left centred (scale 1), as sklearn does
    assert np.allclose(normalize(const, features=feats)[feats[0]], 0)
    few = ljosa[ljosa["Metadata_Control"]]  # n = 330 > d = 21, with one exact linear dependency
    dup = few.assign(extra=few[feats[1]] * 2)
    with pytest.raises(ValueError, match="not full rank"):
        normalize(dup, features=feats + ["extra"], method="spherize", spherize_method="ZCA")
    nan = ljosa.copy()
    nan.loc[nan.index[0], feats[2]] = np.nan
    with pytest.raises(ValueError, match="NaN in the reference rows"):
        normalize(nan, features=feats, method="spherize")
    with pytest.raises(ValueError, match="method must be one of"):
        normalize(ljosa, features=feats, method="zscore")


def test_spherize_fewer_controls_than_features_is_handled(ljosa):
    """n <= d (the per-plate DMSO case): singular values past the rank are padded, as in 1.7.1."""
    feats = feature_columns(ljosa)[:30]
    ctrl = ljosa[ljosa["Metadata_Control"]].iloc[:12]
    ours = normalize(ctrl, features=feats, method="spherize", spherize_method="ZCA")
    ref = pycytominer.normalize(ctrl, features=feats, method="spherize", spherize_method="ZCA")
    np.testing.assert_allclose(ours[feats].to_numpy(), ref[feats].to_numpy(), atol=1e-6)
    shift, scale, W = spherize_matrix(ctrl[feats].to_numpy(), method="ZCA")
    assert W.shape == (30, 30)


@pytest.mark.parametrize("ops", [["variance_threshold"], ["correlation_threshold"], ["drop_na_columns"],
                                 ["drop_na_columns", "variance_threshold", "correlation_threshold"]])
def test_feature_select_matches_pycytominer(ljosa, ops):
    feats = feature_columns(ljosa)
    ref = pycytominer.feature_select(ljosa, features=feats, operation=ops)
    ours = feature_select(ljosa, features=feats, operation=ops)
    assert list(ours.columns) == list(ref.columns)


def test_feature_select_hand_case_and_errors():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    df = pd.DataFrame({"Metadata_x": range(50), "a": a, "b": a * 2 + 1e-3 * rng.normal(size=50),
                       "c": rng.normal(size=50), "const": 1.0, "holes": np.where(np.arange(50) < 10, np.nan, 1.0)})
    out = feature_select(df, features=["a", "b", "c", "const"], operation=["variance_threshold", "correlation_threshold"])
    assert "const" not in out and "c" in out and (("a" in out) != ("b" in out))
    out = feature_select(df, features=["a", "holes"], operation="drop_na_columns", na_cutoff=0.1)
    assert "holes" not in out
    with pytest.raises(ValueError, match="unknown operation"):
        feature_select(df, features=["a"], operation="mode_filter")
    with pytest.raises(ValueError, match="every feature was excluded"):
        feature_select(df, features=["const"], operation="variance_threshold")


def test_aggregate_kernel_on_ties_nan_and_group_sizes():
    """The compiled quickselect against pandas on hard cases: ties, constants, NaN, sizes 1..400."""
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 400, size=60)
    well = np.repeat([f"W{i:02d}" for i in range(len(sizes))], sizes)
    n = len(well)
    df = pd.DataFrame({"Metadata_Well": well,
                       "normal": rng.normal(size=n),
                       "counts": rng.integers(0, 3, size=n).astype(float),
                       "constant": 7.0,
                       "sorted": np.arange(n, dtype=float),
                       "sparse": np.where(rng.random(n) < 0.6, 0.0, rng.normal(size=n)),
                       "holes": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n))})
    df = df.sample(frac=1.0, random_state=0).reset_index(drop=True)  # rows in random order
    ref = df.groupby("Metadata_Well").median().reset_index()
    for block in (1, 3, 128):
        ours = aggregate(df, strata=["Metadata_Well"], block_columns=block)
        pd.testing.assert_frame_equal(ours, ref, check_exact=True)
