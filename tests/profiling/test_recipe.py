"""Profile summaries, recipes and the BBBC021 dataset's errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io.core import DatasetError

from cellbench.datasets import Bbbc021ProfilesDataset
from cellbench.profiling import apply_recipe, mean_sd_profiles, treatment_profiles

BBBC = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "bbbc021_ljosa2013"


def test_mean_sd_profiles_hand_case():
    df = pd.DataFrame({"Metadata_Well": ["A", "A", "A", "B"], "f": [1.0, 2.0, 6.0, 5.0]})
    out = mean_sd_profiles(df, ["Metadata_Well"])
    assert list(out.columns) == ["Metadata_Well", "f", "f__sd"]
    np.testing.assert_allclose(out["f"], [3.0, 5.0])
    np.testing.assert_allclose(out["f__sd"], [np.std([1, 2, 6], ddof=1), 0.0])  # one row: SD 0


def test_treatment_profiles_carry_and_join():
    df = pd.DataFrame({"Metadata_Compound": ["x", "x", "y", "DMSO"], "Metadata_Concentration": [1.0, 1.0, 2.0, 0.0],
                       "Metadata_MoA": ["m1", "m1", "m2", "DMSO"], "Metadata_Batch": ["Week2", "Week1", "Week1", "Week1"],
                       "Metadata_Control": [False, False, False, True], "f": [1.0, 3.0, 5.0, 0.0]})
    out = treatment_profiles(df, exclude="Metadata_Control == True")
    assert out["Metadata_Compound"].tolist() == ["x", "y"]
    assert out["Metadata_Batch"].tolist() == ["Week1,Week2", "Week1"]
    assert out["Metadata_Count"].tolist() == [2, 1] and out["f"].tolist() == [2.0, 5.0]
    bad = df.assign(Metadata_MoA=["m1", "m9", "m2", "DMSO"])
    with pytest.raises(ValueError, match="'Metadata_MoA' is not constant within treatment"):
        treatment_profiles(bad)


def test_recipe_errors():
    df = pd.DataFrame({"Metadata_Control": [True, True, False], "Metadata_Compound": ["D", "D", "x"],
                       "Metadata_Concentration": [0.0, 0.0, 1.0], "Metadata_MoA": ["D", "D", "m"],
                       "Metadata_Batch": ["w", "w", "w"], "f": [1.0, 1.0, 3.0]})
    with pytest.raises(ValueError, match="unknown step"):
        apply_recipe(df, {"normalise": {}})
    # MAD of identical controls is 0: with epsilon 0 the feature is not finite, and that is said
    with pytest.raises(ValueError, match="not finite after normalisation"):
        apply_recipe(df, {"normalize": {"method": "mad_robustize", "mad_robustize_epsilon": 0}})


def test_bbbc021_dataset_errors(tmp_path):
    ds = Bbbc021ProfilesDataset(profiles=str(tmp_path / "missing.csv.gz"), image=str(BBBC / "BBBC021_v1_image.csv.gz"),
                                moa=str(BBBC / "BBBC021_v1_moa.csv"))
    with pytest.raises(DatasetError, match="profiles table: file not found: .*missing.csv.gz"):
        ds.load()
    pd.DataFrame({"Image_Metadata_Plate": ["Week1_22123"]}).to_csv(tmp_path / "p.csv", index=False)
    ds = Bbbc021ProfilesDataset(profiles=str(tmp_path / "p.csv"), image=str(BBBC / "BBBC021_v1_image.csv.gz"),
                                moa=str(BBBC / "BBBC021_v1_moa.csv"))
    with pytest.raises(DatasetError, match=r"p.csv: missing column\(s\) \['Image_Metadata_Well'\]"):
        ds.load()
    with pytest.raises(DatasetError, match="read-only"):
        ds.save(pd.DataFrame())
