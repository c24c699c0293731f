"""The JUMP recipe's pieces: pycytominer's remaining feature_select operations and aggregate
arguments (hand cases, parity with pycytominer 1.7.1), the compensation-free group mean, Harmony
on a table with a known batch shift, and the recipe's bad inputs."""

import warnings

import numpy as np
import pandas as pd
import pytest

from cellbench.metrics.integration import silhouette_batch, silhouette_label
from cellbench.profiling import aggregate, apply_recipe, feature_select
from cellbench.profiling.harmony import harmony

pycytominer = pytest.importorskip("pycytominer")
warnings.filterwarnings("ignore", category=pd.errors.PerformanceWarning)


@pytest.fixture(scope="module")
def messy():
    """Offsets of 1e6 with spread 1e3, 10 % missing, infinities, a missing stratum, an Image_ column."""
    rng = np.random.default_rng(1)
    n = 4000
    df = pd.DataFrame(rng.standard_normal((n, 12)) * 1e3 + rng.standard_normal(12) * 1e6,
                      columns=[f"Cells_f{j}" for j in range(12)])
    df = df.mask(rng.random(df.shape) < 0.1)
    df.iloc[0, 3] = np.inf  # first value of a column infinite
    df.iloc[5, 4], df.iloc[7, 4] = np.inf, -np.inf  # inf - inf in one group -> NaN
    df.insert(0, "Metadata_Well", rng.choice([f"W{i}" for i in range(37)], n))
    df.insert(0, "Metadata_Plate", rng.choice(["P1", "P2", None], n))
    df["Metadata_ObjectNumber"] = np.where(rng.random(n) < 0.05, np.nan, 1.0)
    df["Image_Count_Cells"] = rng.integers(0, 50, n).astype(float)
    return df


@pytest.mark.parametrize("image_features", [False, True])
def test_aggregate_mean_matches_pycytominer(messy, image_features):
    ref = pycytominer.aggregate(messy, operation="mean", image_features=image_features, compute_object_count=True)
    ours = aggregate(messy, operation="mean", image_features=image_features, compute_object_count=True)
    assert list(ours.columns) == list(ref.columns)
    assert ("Image_Count_Cells" in ours.columns) is image_features
    count = "Metadata_Object_Count"
    pd.testing.assert_frame_equal(ours.drop(columns=count), ref.drop(columns=count), check_dtype=False, rtol=1e-12, atol=0)
    # deliberate difference: pycytominer counts with groupby's default dropna=True, so a group with
    # a missing stratum (plate None) gets no count; cellbench counts its objects too
    known = ref[count].notna()
    assert (ours.loc[known, count] == ref.loc[known, count]).all()
    lost = ours.loc[~known]
    assert lost["Metadata_Plate"].isna().all() and len(lost) > 0
    expected = messy[messy["Metadata_Plate"].isna()].groupby("Metadata_Well")["Metadata_ObjectNumber"].count()
    assert lost.set_index("Metadata_Well")[count].to_dict() == expected.to_dict()


def test_group_mean_by_hand():
    """Means of 1e9 + {1, 2} and {NaN, 4}: the shift keeps the small part exact."""
    df = pd.DataFrame({"Metadata_Well": ["a", "b", "a", "b"], "x": [1e9 + 1, np.nan, 1e9 + 2, 4.0]})
    out = aggregate(df, strata=["Metadata_Well"], operation="mean")
    assert out["x"].tolist() == [1e9 + 1.5, 4.0]


# -- feature_select: the operations added for the JUMP recipe ---------------------------------

@pytest.fixture(scope="module")
def profiles():
    rng = np.random.default_rng(3)
    n = 60
    df = pd.DataFrame({
        "Metadata_Group": np.repeat(["a", "b", "c"], 20),
        "Cells_smooth": rng.standard_normal(n),                       # kept by everything
        "Cells_rare": np.r_[np.ones(58), 2.0, 3.0],                   # frequency ratio 1 / 58
        "Cells_few": np.tile([0.0, 1.0], 30),                         # 2 distinct values of 60: 3.3 %
        "Cells_huge": np.r_[rng.standard_normal(n - 1), 900.0],       # max |x| > 500
        "Cells_noisy": np.r_[rng.standard_normal(n) * 3],             # within-group SD ~3
        "Cells_Correlation_Manders_DNA": rng.standard_normal(n),      # blocklisted
    })
    df.loc[4, "Cells_smooth"] = np.nan
    return df


def test_new_operations_by_hand(profiles, tmp_path):
    def dropped(**kw):
        return sorted(set(profiles.columns) - set(feature_select(profiles, **kw).columns))

    assert dropped(operation="frequency_threshold") == ["Cells_rare"]  # 1/58 < 0.05
    assert dropped(operation="frequency_threshold", unique_cut=0.05) == ["Cells_few", "Cells_rare"]  # 2/60 < 0.05
    assert dropped(operation="drop_outliers") == ["Cells_huge"]
    assert dropped(operation="drop_outliers", outlier_cutoff=1000) == []
    calm = [c for c in profiles if c.startswith("Cells_") and c != "Cells_huge"]  # huge: SD ~200 in group c
    assert dropped(operation="noise_removal", features=calm, noise_removal_perturb_groups="Metadata_Group",
                   noise_removal_stdev_cutoff=2.0) == ["Cells_noisy"]
    assert dropped(operation="blocklist", blocklist=["Cells_Correlation_Manders_DNA", "Not_In_Table"]) == [
        "Cells_Correlation_Manders_DNA"]
    path = tmp_path / "blocklist.txt"
    path.write_text("blocklist\nCells_Correlation_Manders_DNA\n")
    assert dropped(operation="blocklist", blocklist_file=str(path)) == ["Cells_Correlation_Manders_DNA"]


@pytest.mark.parametrize("kwargs", [
    {"operation": "frequency_threshold"},
    {"operation": "frequency_threshold", "freq_cut": 0.5, "unique_cut": 0.5},
    {"operation": "drop_outliers", "outlier_cutoff": 2.5},
    {"operation": "noise_removal", "noise_removal_perturb_groups": "Metadata_Group", "noise_removal_stdev_cutoff": 1.0},
    {"operation": ["variance_threshold", "frequency_threshold", "drop_outliers", "correlation_threshold"]},
    {"operation": "drop_outliers", "samples": "Metadata_Group == 'a'"},
])
def test_new_operations_match_pycytominer(profiles, kwargs):
    ref = pycytominer.feature_select(profiles, features=[c for c in profiles if c.startswith("Cells_")], **kwargs)
    ours = feature_select(profiles, **kwargs)
    assert sorted(ours.columns) == sorted(ref.columns)


def test_blocklist_matches_pycytominer(profiles):
    kwargs = {"operation": "blocklist", "blocklist": ["Cells_Correlation_Manders_DNA"]}
    ref = pycytominer.feature_select(profiles, features=[c for c in profiles if c.startswith("Cells_")], **kwargs)
    assert sorted(feature_select(profiles, **kwargs).columns) == sorted(ref.columns)


def test_new_operations_bad_input(profiles, tmp_path):
    with pytest.raises(ValueError, match="'noise_removal' needs both"):
        feature_select(profiles, operation="noise_removal", noise_removal_perturb_groups="Metadata_Group")
    with pytest.raises(ValueError, match="column 'Metadata_Plate' not in the table"):
        feature_select(profiles, operation="noise_removal", noise_removal_perturb_groups="Metadata_Plate",
                       noise_removal_stdev_cutoff=1.0)
    with pytest.raises(ValueError, match="3 labels for 60 sample rows"):
        feature_select(profiles, operation="noise_removal", noise_removal_perturb_groups=["a", "b", "c"],
                       noise_removal_stdev_cutoff=1.0)
    with pytest.raises(ValueError, match="blocklist .* or blocklist_file"):
        feature_select(profiles, operation="blocklist")
    bad = tmp_path / "names.txt"
    bad.write_text("Cells_smooth\n")
    with pytest.raises(ValueError, match="must start with a 'blocklist' header"):
        feature_select(profiles, operation="blocklist", blocklist_file=str(bad))
    with pytest.raises(ValueError, match="cannot read blocklist_file"):
        feature_select(profiles, operation="blocklist", blocklist_file=str(tmp_path / "absent.txt"))
    with pytest.raises(ValueError, match="freq_cut must be in"):
        feature_select(profiles, operation="frequency_threshold", freq_cut=2)


# -- Harmony ------------------------------------------------------------------------------------

def shifted_table(seed: int = 0) -> pd.DataFrame:
    """Two batches x 3 labels x 20 wells in 10 features: labels 4 apart, batch B shifted by 3."""
    rng = np.random.default_rng(seed)
    rows = []
    for b, shift in (("A", 0.0), ("B", 3.0)):
        for label in range(3):
            centre = np.zeros(10)
            centre[label] = 4.0
            X = centre + rng.standard_normal((20, 10)) * 0.7
            X[:, 5] += shift
            X[:, 6] -= shift
            for x in X:
                rows.append({"Metadata_Batch": b, "Metadata_Label": f"L{label}",
                             **{f"f{j}": v for j, v in enumerate(x)}})
    return pd.DataFrame(rows)


def test_harmony_removes_a_known_batch_shift_and_keeps_labels():
    df = shifted_table()
    feats = [f"f{j}" for j in range(10)]
    X0, labels, batch = df[feats].to_numpy(), df["Metadata_Label"].to_numpy(), df["Metadata_Batch"].to_numpy()
    out = harmony(df, batch="Metadata_Batch", n_components=10, seed=0)
    assert [c for c in out if not c.startswith("Metadata_")] == [f"harmony_PC{i}" for i in range(1, 11)]
    X1 = out.filter(like="harmony_PC").to_numpy()
    # batch silhouette (1 = batches mixed within each label) rises from 0.59 to 0.83; the label
    # silhouette is kept (0.69 -> 0.73: removing the shift tightens each label)
    before, after = silhouette_batch(X0, labels, batch), silhouette_batch(X1, labels, batch)
    assert before < 0.6 < 0.8 < after
    assert silhouette_label(X1, labels) > silhouette_label(X0, labels) > 0.65
    pd.testing.assert_frame_equal(out, harmony(df, batch="Metadata_Batch", n_components=10, seed=0))  # seeded


@pytest.mark.parametrize("change, message", [
    (lambda d: d.drop(columns=["Metadata_Batch"]), r"missing column\(s\) \['Metadata_Batch'\]"),
    (lambda d: d.assign(Metadata_Batch=["C"] + list(d["Metadata_Batch"][1:])), "batch 'C' of column 'Metadata_Batch' has a single well"),
    (lambda d: d.assign(Metadata_Batch="A"), "has a single batch"),
    (lambda d: d.assign(f3=[np.nan] + list(d["f3"][1:])), "feature column 'f3' has a missing or infinite value"),
    (lambda d: d.assign(f7=1.0), "feature column 'f7' is constant"),
])
def test_harmony_bad_input_names_the_column(change, message):
    with pytest.raises(ValueError, match=message):
        harmony(change(shifted_table()), n_components=5)


def test_jump_recipe_runs_and_refuses_bad_batches():
    df = shifted_table()
    df["Metadata_Plate"] = df["Metadata_Batch"] + np.tile(["1", "2"], len(df) // 2)
    df["Metadata_Control"] = df["Metadata_Label"] == "L0"
    df["Metadata_Compound"] = df["Metadata_MoA"] = df["Metadata_Label"]
    df["Metadata_Concentration"] = 1.0
    recipe = {"normalize": [{"method": "mad_robustize", "by": "Metadata_Plate", "samples": "all"},
                            {"method": "inverse_normal", "samples": "all"}],
              "feature_select": {"operation": ["drop_na_columns", "variance_threshold", "drop_outliers"]},
              "harmony": {"batch": "Metadata_Batch", "n_components": 5}, "treatment": {"operation": "mean"}}
    wells, treatments = apply_recipe(df, recipe, control="Metadata_Control == True")
    assert wells.filter(like="harmony_PC").shape == (len(df), 5)
    assert set(treatments["Metadata_Compound"]) == {"L1", "L2"}
    with pytest.raises(ValueError, match="missing column"):
        apply_recipe(df.drop(columns=["Metadata_Batch"]), recipe, control="Metadata_Control == True")
