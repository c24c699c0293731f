"""Real BBBC021, CellProfiler and JUMP tables to the Metadata_ convention."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellbench.ingest import (
    bbbc021_metadata,
    bbbc021_wells,
    cellprofiler_table,
    feature_columns,
    jump_load_data,
    ljosa_profiles,
    read_bbbc021_moa,
)

ROOT = Path(__file__).resolve().parents[2]
BBBC = ROOT / "data" / "01_raw" / "bbbc021_ljosa2013"
CP = ROOT / "tests" / "data" / "cell_painting_profiles"
PROFILES = BBBC / "ljosa_jbiomolscreen_2013_per_well_mean.csv.gz"
IMAGES, MOA = BBBC / "BBBC021_v1_image.csv.gz", BBBC / "BBBC021_v1_moa.csv"


def test_bbbc021_sites_and_wells():
    sites = bbbc021_metadata(IMAGES, MOA, root="/data/bbbc021")
    assert len(sites) == 13_200 and sites["Metadata_Plate"].nunique() == 55
    assert sorted(sites["Metadata_Site"].unique()) == [1, 2, 3, 4]
    assert sites.groupby("Metadata_Batch")["Metadata_Plate"].nunique().loc[
        [f"Week{i}" for i in range(1, 11)]].tolist() == [6, 6, 6, 6, 6, 6, 5, 5, 6, 3]
    first = sites.iloc[0]
    assert first["Metadata_Path_DAPI"] == "/data/bbbc021/Week4/Week4_27481/" + first["Metadata_FileName_DAPI"]
    wells = bbbc021_wells(sites)
    assert len(wells) == 3_300 and wells["Metadata_Control"].sum() == 330
    dmso_wells = set(wells.loc[wells["Metadata_Control"], "Metadata_Well"])
    assert dmso_wells == {"B02", "C02", "D02", "E11", "F11", "G11"}


def test_ljosa_profiles_counts():
    t = ljosa_profiles(PROFILES, IMAGES, MOA)
    assert t.shape == (632, 9 + 516) and len(feature_columns(t)) == 516
    assert int(t["Metadata_Control"].sum()) == 330
    treated = t[~t["Metadata_Control"]]
    assert len(treated) == 302 and treated["Metadata_Treatment"].nunique() == 103
    assert treated["Metadata_Compound"].nunique() == 38 and treated["Metadata_MoA"].nunique() == 12
    assert treated["Metadata_MoA"].notna().all()
    assert t["Metadata_Concentration"].dtype == np.float64


def test_moa_formats_parse_the_same(tmp_path):
    published = read_bbbc021_moa(MOA)
    # the other published copy: unquoted, plain numbers, CR line endings
    lines = ["compound,concentration,moa"] + [f"{r.compound},{r.concentration:g},{r.moa}" for r in published.itertuples()]
    other = tmp_path / "moa_cr.csv"
    other.write_bytes("\r".join(lines).encode())
    pd.testing.assert_frame_equal(read_bbbc021_moa(other), published)
    assert len(published) == 104 and published["concentration"].dtype == np.float64


def test_bbbc021_bad_input(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        read_bbbc021_moa(tmp_path / "missing.csv")
    pd.DataFrame({"compound": ["a"], "moa": ["b"]}).to_csv(tmp_path / "moa.csv", index=False)
    with pytest.raises(ValueError, match=r"moa.csv: missing column\(s\) \['concentration'\]"):
        read_bbbc021_moa(tmp_path / "moa.csv")
    images = pd.read_csv(IMAGES).drop(columns="Replicate")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['Replicate'\]"):
        bbbc021_metadata(images, MOA)
    profiles = pd.read_csv(PROFILES, nrows=3)
    profiles.loc[0, "Image_Metadata_Well"] = "Z99"
    with pytest.raises(ValueError, match=r"1 well\(s\) not in the BBBC021 image table, e.g. \['Week10_40111', 'Z99'\]"):
        ljosa_profiles(profiles, IMAGES, MOA)


def test_cellprofiler_per_object_table_against_pycytominer_inference():
    from pycytominer.cyto_utils import infer_cp_features

    raw = pd.read_csv(CP / "BR00121431-A01-1_Cells.csv")
    t = cellprofiler_table(raw, compartment="Cells", metadata={"Plate": "BR00121431", "Well": "A01", "Site": 1})
    assert len(t) == 89
    assert list(t.columns[:3]) == ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    feats = feature_columns(t)
    # pycytominer infers by prefix only, so location / parent / number / count columns count as features
    inferred = infer_cp_features(t.rename(columns=lambda c: c.replace("Metadata_Cells_", "Cells_")))
    moved = set(inferred) - set(feats)
    assert set(feats) < set(inferred)
    assert moved and all(("_Location_" in c) or ("_Parent_" in c) or ("Number_Object_Number" in c)
                         or c.endswith("_Count") for c in moved)
    assert "Metadata_ObjectNumber" in t and "Metadata_Cells_Location_Center_X" in t
    assert all(pd.api.types.is_numeric_dtype(t[c]) for c in feats)
    with pytest.raises(ValueError, match="no compartment prefix"):
        cellprofiler_table(raw)


def test_cellprofiler_well_level_and_merged_tables():
    well = cellprofiler_table(CP / "BR00121431_main.csv")
    assert len(well) == 2 and well["Metadata_Object_Count"].tolist() == [277, 185]
    assert all(c.startswith(("Cells_", "Cytoplasm_", "Nuclei_")) for c in feature_columns(well))
    merged = cellprofiler_table(CP / "test_SQ00014613.csv.gz")
    assert len(merged) == 2 and not any("_Location_" in c for c in feature_columns(merged))
    assert not any(c.startswith("Image_") for c in feature_columns(merged))


def test_jump_load_data_paths():
    t = jump_load_data(CP / "test_BR00126114_load_data_with_illum.parquet")
    assert len(t) == 2 and t["Metadata_Source"].tolist() == ["source_4"] * 2
    assert t["Metadata_Batch"].iloc[0] == "2021_08_23_Batch12"
    channels = {c.removeprefix("Metadata_Path_Orig") for c in t if c.startswith("Metadata_Path_Orig")}
    assert channels == {"AGP", "DNA", "ER", "Mito", "RNA"}
    assert t["Metadata_Path_OrigDNA"].iloc[0].endswith("/r01c01f01p01-ch5sk1fk1fl1.tiff")
    with pytest.raises(ValueError, match="FileName_Orig"):
        jump_load_data(pd.DataFrame({"Metadata_Plate": ["P"], "Metadata_Well": ["A01"], "Metadata_Site": [1]}))
