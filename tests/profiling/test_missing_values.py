"""NaN and infinity in profiles: parity with pycytominer 1.7.1 (its scikit-learn scalers and
RobustMAD) on tables with missing values, and infinity refused by name."""

import warnings

import numpy as np
import pandas as pd
import pytest

from cellbench.profiling import normalize
from cellbench.profiling.feature_select import feature_select
from cellbench.profiling.recipe import apply_recipe

CONTROLS = "Metadata_ctrl == 'DMSO'"


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(60, 7)), columns=[f"Cells_f{i}" for i in range(7)])
    df["Cells_f6"] = df["Cells_f0"] * 2 + rng.normal(scale=0.05, size=60)  # correlated with f0
    df.insert(0, "Metadata_ctrl", ["DMSO" if i % 3 == 0 else "cpd" for i in range(60)])
    df.iloc[0, 1] = np.nan   # a missing value in a control well
    df.iloc[6, 2] = np.nan   # another, in another feature
    df.iloc[4, 3] = np.nan   # in a treated well only
    df.iloc[[3, 9, 12], 4] = np.nan
    df["Cells_f5"] = np.nan  # a feature missing everywhere
    return df


def _features(df):
    return [c for c in df if c.startswith("Cells_")]


@pytest.mark.parametrize("method", ["standardize", "robustize", "mad_robustize"])
def test_normalize_matches_pycytominer_with_missing_values(table, method):
    from pycytominer import normalize as reference

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reference(table, features=_features(table), meta_features=["Metadata_ctrl"], samples=CONTROLS,
                        method=method)
    ours = normalize(table, samples=CONTROLS, method=method)
    pd.testing.assert_frame_equal(ref.reset_index(drop=True), ours, check_dtype=False, rtol=1e-9)
    # one NaN in a control well leaves that feature defined everywhere else
    assert ours["Cells_f0"].isna().sum() == 1 and ours["Cells_f1"].isna().sum() == 1
    assert ours["Cells_f3"].isna().sum() == 3 and ours["Cells_f5"].isna().all()


@pytest.mark.parametrize("operation", ["drop_na_columns", "correlation_threshold",
                                       ["drop_na_columns", "correlation_threshold"]])
def test_feature_select_matches_pycytominer_with_missing_values(table, operation):
    from pycytominer import feature_select as reference

    ref = reference(table, features=_features(table), operation=operation, na_cutoff=0.04)
    ours = feature_select(table, operation=operation, na_cutoff=0.04)
    assert list(ours.columns) == list(ref.columns)


def test_standardize_by_hand_skips_missing_values():
    df = pd.DataFrame({"Metadata_w": ["a", "b", "c", "d"], "f": [1.0, np.nan, 3.0, 5.0]})
    out = normalize(df, method="standardize")["f"]
    # mean of 1, 3, 5 = 3, population SD = sqrt(8 / 3)
    np.testing.assert_allclose(out.to_numpy(), [-2 / np.sqrt(8 / 3), np.nan, 0.0, 2 / np.sqrt(8 / 3)])


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("call", ["normalize", "feature_select", "recipe"])
def test_infinity_is_an_error_naming_the_column(table, value, call):
    table.loc[7, "Cells_f3"] = value
    with pytest.raises(ValueError, match=r"feature column 'Cells_f3' has an infinite value .* in row 7"):
        if call == "normalize":
            normalize(table, samples=CONTROLS, method="standardize")
        elif call == "feature_select":
            feature_select(table, operation="variance_threshold")
        else:
            apply_recipe(table, {"normalize": {"samples": CONTROLS}})


def test_spherize_names_missing_values_and_constant_features(table):
    with pytest.raises(ValueError, match="NaN in the reference rows"):
        normalize(table, samples=CONTROLS, method="spherize")
    clean = table[["Metadata_ctrl", "Cells_f6"]].assign(Cells_g=np.arange(60.0) ** 2, Cells_c=1.0)
    with pytest.raises(ValueError, match=r"zero variance .*column index 2\)"):
        normalize(clean, method="spherize", spherize_method="ZCA-cor")


@pytest.mark.parametrize("n_quantiles", [1000, 7])
def test_inverse_normal_matches_pycytominer(table, n_quantiles):
    """Rank-based INT fitted on the controls (NaN in controls and treated wells, an all-NaN column,
    tied values), against pycytominer 1.7.1's normalize(method="inverse_normal")."""
    from pycytominer import normalize as reference

    table["Cells_f4"] = table["Cells_f4"].round(0)  # many ties
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = reference(table, features=_features(table), meta_features=["Metadata_ctrl"], samples=CONTROLS,
                        method="inverse_normal", inverse_normal_n_quantiles=n_quantiles)
    ours = normalize(table, samples=CONTROLS, method="inverse_normal", inverse_normal_n_quantiles=n_quantiles)
    pd.testing.assert_frame_equal(ref.reset_index(drop=True), ours, check_dtype=False, rtol=1e-9, atol=1e-12)


def test_inverse_normal_by_hand():
    """Reference 1, 2, 3, 4 (4 landmarks at 0, 1/3, 2/3, 1): 2.5 sits half-way, u = 0.5 -> 0; 2 is
    the landmark 1/3 -> Phi^-1(1/3); 0 and 9 lie outside -> the clipped ends (about -+5.2)."""
    from scipy import stats

    from cellbench.profiling.normalize import inverse_normal

    out = inverse_normal(np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([[2.5], [2.0], [0.0], [9.0], [np.nan]]))
    np.testing.assert_allclose(out[:2, 0], [0.0, stats.norm.ppf(1 / 3)], atol=1e-12)
    assert out[2, 0] == pytest.approx(-5.199337582605575) and out[3, 0] == pytest.approx(5.199337582605575)
    assert np.isnan(out[4, 0])
