"""The bad-input matrix: every case fails with the expected error type, a message that names the
culprit (file, column, key or parameter path), and leaves ``data/`` exactly as it was.

Three families:

* every numeric parameter of ``conf/base`` given a word (``"ten"``): a ``ConfigError`` naming its
  full path, from ``validate_parameters``, the function the ``ValidateParameters`` hook runs before
  MLflow or any node starts (the session tests in ``test_run.py`` show that wiring per pipeline);
* every parameter key of ``conf/base`` misspelt (free-form table titles aside): the same;
* files, tables, arrays and arguments that are wrong in the ways users meet: readers, datasets,
  profiling, exploration, metrics and representations.
"""

from __future__ import annotations

import copy
import glob
import hashlib
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from kedro.io.core import DatasetError

from cellbench.config import ConfigError
from cellbench.parameters import validate_parameters

ROOT = Path(__file__).resolve().parents[1]


def _base() -> dict:
    params = {}
    for f in sorted(glob.glob(str(ROOT / "conf" / "base" / "parameters_*.yml"))):
        params.update(yaml.safe_load(Path(f).read_text()))
    return params


BASE = _base()


def _leaves(d, path=()):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path, d


NUMERIC = [p for p, v in _leaves(BASE) if isinstance(v, (int, float)) and not isinstance(v, bool)]
FREE_FORM = (("treatments", "table", "columns"),)  # display titles of the result table: any text
KEYS = [p for p, _ in _leaves(BASE) if not any(p[:len(f)] == f for f in FREE_FORM)]


def _set(params: dict, path: tuple, value=None, rename: str | None = None) -> dict:
    out = copy.deepcopy(params)
    node = out
    for key in path[:-1]:
        node = node[key]
    if rename is not None:
        node[rename] = node.pop(path[-1])
    else:
        node[path[-1]] = value
    return out


@pytest.fixture
def data_dir(tmp_path):
    """A project's data/ with outputs in it; the test asserts it is unchanged afterwards."""
    data = tmp_path / "data"
    (data / "04_feature" / "texture").mkdir(parents=True)
    pd.DataFrame({"Metadata_Plate": ["p"], "f": [1.0]}).to_parquet(data / "04_feature" / "texture" / "haralick.parquet")
    (data / "08_reporting").mkdir()
    (data / "08_reporting" / "results.csv").write_text("a,b\n1,2\n")

    def snapshot():
        return {p.relative_to(data).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir"
                for p in sorted(data.rglob("*"))}

    before = snapshot()
    yield data
    assert snapshot() == before, "a bad input changed data/"


@pytest.mark.parametrize("path", NUMERIC, ids=lambda p: ".".join(map(str, p)))
def test_a_word_for_a_number_names_the_parameter(path, data_dir):
    with pytest.raises(ConfigError, match=".".join(map(str, path)).replace(".", r"\.").replace("+", r"\+")):
        validate_parameters(_set(BASE, path, "ten"))


@pytest.mark.parametrize("path", KEYS, ids=lambda p: ".".join(map(str, p)))
def test_a_misspelt_key_names_the_parameter(path, data_dir):
    wrong = f"{path[-1]}x"
    with pytest.raises(ConfigError, match=".".join(map(str, (*path[:-1], wrong))).replace(".", r"\.")):
        validate_parameters(_set(BASE, path, rename=wrong))


# -- files, tables, arrays, arguments ---------------------------------------------------------------
def _crops(n=6, dtype=np.uint16):
    from cellbench.crops import Crops

    return Crops(np.ones((n, 2, 16, 16), dtype), pd.DataFrame({"Metadata_Label": np.arange(n) % 2,
                                                               "Metadata_Split": ["train"] * n}))


def _write_h5(path: Path, data=None, labels=None, keys=("data", "labels")):
    with h5py.File(path, "w") as f:
        if "data" in keys:
            f["data"] = np.zeros((4, 2, 64, 64), np.uint16) if data is None else data
        if "labels" in keys:
            f["labels"] = np.array([0, 1, 2, 3]) if labels is None else labels


def _store(tmp_path, damage):
    from cellbench.datasets import CropStoreDataset

    ds = CropStoreDataset(str(tmp_path / "store"), chunk_size=2)
    ds.save(_crops())
    damage(tmp_path / "store")
    return ds.load()


def _profiles():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(12, 3)), columns=["Cells_a", "Cells_b", "Cells_c"])
    df.insert(0, "Metadata_Plate", ["p1"] * 6 + ["p2"] * 6)
    df.insert(1, "Metadata_Control", [True, False] * 6)
    return df


def _library_table():
    rows = []
    for p in range(6):
        for c in range(3):
            rows.append({"Metadata_Protein": f"P{p}", "Metadata_Kind": "single",
                         "Metadata_Compartments": "ER" if p < 3 else "Golgi", "Metadata_CellLine": f"L{p % 2}",
                         "Metadata_Image": f"P{p}/L{p % 2}", "Metadata_Proportion": np.nan,
                         "Metadata_Subpopulation": -1, "f0": p + 0.1 * c, "f1": (p % 3) * 1.0 - c})
    return pd.DataFrame(rows)


def _explore(table, **change):
    from cellbench.exploration import ExplorationConfig, explore

    base = dict(linkage="average", min_cells_per_protein=2, rare_class=None, rare_window=3, n_pairs=20,
                cell_line_pairs=100, seed=0)
    return explore(table, ExplorationConfig.from_params({**base, **change}, "exploration.analysis"))


def _run(method, overrides, crops=None):
    from cellbench.representations import run

    section = "representation" if method in BASE["representation"] else None
    params = {**BASE["representation"][method], **overrides} if section else overrides
    return run(method, crops if crops is not None else _crops(), params, f"representation.{method}")


def _cp(tmp_path, text):
    from cellbench.ingest.tables import cellprofiler_table

    (tmp_path / "cp.csv").write_text(text)
    return cellprofiler_table(tmp_path / "cp.csv")


def _tiff_root(tmp_path, shape=(16, 16), with_nucleus=True):
    import tifffile

    d = tmp_path / "tiff" / "train" / "Golgi"
    d.mkdir(parents=True)
    tifffile.imwrite(d / "c1_protein.tif", np.ones(shape, np.uint16))
    if with_nucleus:
        tifffile.imwrite(d / "c1_nucleus.tif", np.ones((8, 8) if shape == (16, 16, 1) else shape, np.uint16))
    return tmp_path / "tiff"


def _norm(**kw):
    from cellbench.profiling import normalize

    df = kw.pop("df", _profiles())
    return normalize(df, **kw)


def _fs(**kw):
    from cellbench.profiling.feature_select import feature_select

    return feature_select(_profiles(), **kw)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _torch_file(tmp_path, obj, name="w.pt"):
    torch.save(obj, tmp_path / name)
    return tmp_path / name


CASES = {
    # -- COOS-7 HDF5 files ------------------------------------------------------------------------
    "coos7_missing_dir": (lambda t: __import__("cellbench.ingest", fromlist=["read_coos7"]).read_coos7(t / "none"),
                          ValueError, r"none"),
    "coos7_not_hdf5": (lambda t: (t.joinpath("COOS7_v1.1_training.hdf5").write_text("x"),
                                  _read_coos7(t))[1], ValueError, r"COOS7_v1.1_training.hdf5 is not a readable HDF5"),
    "coos7_no_labels": (lambda t: (_write_h5(t / "COOS7_v1.1_training.hdf5", keys=("data",)), _read_coos7(t))[1],
                        ValueError, r"lacks key\(s\) \['labels'\]"),
    "coos7_three_channels": (lambda t: (_write_h5(t / "COOS7_v1.1_training.hdf5", np.zeros((4, 3, 64, 64), np.uint16)),
                                        _read_coos7(t))[1], ValueError, r"crops of shape \(3, 64, 64\)"),
    "coos7_small_crops": (lambda t: (_write_h5(t / "COOS7_v1.1_training.hdf5", np.zeros((4, 2, 32, 32), np.uint16)),
                                     _read_coos7(t))[1], ValueError, r"crops of shape \(2, 32, 32\)"),
    "coos7_label_7": (lambda t: (_write_h5(t / "COOS7_v1.1_training.hdf5", labels=np.array([0, 1, 2, 7])),
                                 _read_coos7(t))[1], ValueError, r"expected integers 0..6"),
    "coos7_float_labels": (lambda t: (_write_h5(t / "COOS7_v1.1_training.hdf5", labels=np.array([0.5, 1, 2, 3])),
                                      _read_coos7(t))[1], ValueError, r"must hold integers"),
    "coos7_int32_data": (lambda t: (_write_h5(t / "COOS7_v1.1_training.hdf5", np.zeros((4, 2, 64, 64), np.int32)),
                                    _read_coos7(t))[1], ValueError, r"dtype int32"),
    "coos7_short_labels": (lambda t: (_write_h5(t / "COOS7_v1.1_training.hdf5", labels=np.array([0, 1])),
                                      _read_coos7(t))[1], ValueError, r"must have shape \(4,\)"),
    # -- crop store ---------------------------------------------------------------------------------
    "store_missing": (lambda t: _load_store(t / "nothing"), DatasetError, r"nothing: directory not found"),
    "store_no_metadata": (lambda t: _store(t, lambda s: (s / "metadata.parquet").unlink()), DatasetError,
                          r"metadata.parquet"),
    "store_truncated_chunk": (lambda t: _store(t, lambda s: _truncate(next((s / "images.zarr").rglob("c/1/0/0/0")))),
                              DatasetError, r"images.zarr/c/1/0/0/0 has \d+ bytes"),
    "store_missing_chunk": (lambda t: _store(t, lambda s: next((s / "images.zarr").rglob("c/2/0/0/0")).unlink()),
                            DatasetError, r"images.zarr/c/2/0/0/0 is missing"),
    "store_bad_manifest": (lambda t: _store(t, lambda s: (s / "manifest.json").write_text("{")), DatasetError,
                           r"unreadable manifest.json"),
    "store_nan_pixels": (lambda t: _save_store(t, _nan_crops()), DatasetError, r"crop 2 \(row 2\) has NaN"),
    "store_int32": (lambda t: _save_store(t, _bad_crops(np.int32)), ValueError, r"uint16 or float32"),
    "store_rank3": (lambda t: _save_store(t, _bad_crops(None)), ValueError, r"rank 4"),
    "store_wrong_type": (lambda t: _save_store(t, "crops"), DatasetError, r"can save Crops or ChunkedCrops, got str"),
    "store_chunk_size_0": (lambda t: __import__("cellbench.datasets", fromlist=["x"]).CropStoreDataset(str(t / "s"), 0),
                           ValueError, r"chunk_size must be positive"),
    "crops_feature_column": (lambda t: __import__("cellbench.crops", fromlist=["x"]).Crops(
        np.zeros((2, 1, 4, 4), np.uint16), pd.DataFrame({"Label": [0, 1]})), ValueError, r"'Metadata_'.*Label"),
    "crops_row_mismatch": (lambda t: __import__("cellbench.crops", fromlist=["x"]).Crops(
        np.zeros((2, 1, 4, 4), np.uint16), pd.DataFrame({"Metadata_L": [0]})), ValueError, r"1 rows but images have 2"),
    # -- feature tables, models ---------------------------------------------------------------------
    "features_truncated": (lambda t: _features_damaged(t), DatasetError, r"conv1.parquet: not a readable Parquet"),
    "parquet_truncated": (lambda t: _parquet_damaged(t), DatasetError, r"table.parquet"),
    "model_missing": (lambda t: _model(t / "none.pt"), DatasetError, r"none.pt: file not found"),
    "model_not_torch": (lambda t: (t.joinpath("m.pt").write_text("hello"), _model(t / "m.pt"))[1], DatasetError,
                        r"m.pt: not a readable weights-only torch file"),
    "model_pickled_code": (lambda t: (torch.save({"f": _Unsafe()}, t / "m.pt"), _model(t / "m.pt"))[1], DatasetError,
                           r"m.pt: not a readable weights-only"),
    "model_save_no_state": (lambda t: __import__("cellbench.datasets", fromlist=["x"]).TorchModelDataset(
        str(t / "m.pt")).save({"model": "x"}), DatasetError, r"m.pt: expected a dict with a 'state_dict'"),
    "vit_weights_tensor": (lambda t: _load_vit(_torch_file(t, torch.zeros(3))), ValueError, r"w.pt"),
    "vit_weights_missing": (lambda t: _load_vit(t / "absent.pth"), (FileNotFoundError, ValueError), r"absent.pth"),
    "resnet_weights_wrong_keys": (lambda t: _load_resnet(_torch_file(t, {"foo": torch.zeros(2)})), (ValueError, KeyError),
                                  r"w.pt|foo"),
    # -- CellProfiler and other tables -------------------------------------------------------------
    "cp_div0": (lambda t: _cp(t, "ImageNumber,Cells_AreaShape_Area\n1,10\n1,#DIV/0!\n"), ValueError,
                r"'Cells_AreaShape_Area' has 1 value\(s\) that are not numbers \(first: row 1, '#DIV/0!'\)"),
    "cp_no_prefix": (lambda t: _cp(t, "ImageNumber,AreaShape_Area\n1,10\n"), ValueError, r"'AreaShape_Area' has no compartment"),
    "cp_empty": (lambda t: _cp(t, "ImageNumber,Cells_AreaShape_Area\n"), ValueError, r"no rows"),
    "cp_bad_option": (lambda t: __import__("cellbench.ingest.tables", fromlist=["x"]).cellprofiler_table(
        pd.DataFrame({"Cells_a": [1]}), unparsable="ignore"), ValueError, r"unparsable must be 'error' or 'drop'"),
    # -- TIFF folders and fields of view -----------------------------------------------------------
    "tiff_not_dir": (lambda t: _read_tiff(t / "absent"), ValueError, r"absent"),
    "fields_not_dir": (lambda t: _read_fields(t / "absent"), ValueError, r"absent is not a directory"),
    "fields_no_match": (lambda t: (t.joinpath("f").mkdir(), _read_fields(t / "f"))[1], ValueError, r"no TIFF under"),
    "fields_bad_pattern": (lambda t: (t.joinpath("f").mkdir(), _read_fields(t / "f", pattern="(?P<image>.+)"))[1],
                           ValueError, r"lacks named group\(s\) \['channel'\]"),
    "fields_nucleus_channel": (lambda t: _read_fields(t, nucleus_channel="9"), ValueError, r"nucleus_channel '9'"),
    "segment_3d": (lambda t: __import__("cellbench.ingest", fromlist=["x"]).segment_nuclei(np.zeros((2, 4, 4))),
                   ValueError, r"must be 2-D"),
    "segment_sigma": (lambda t: __import__("cellbench.ingest", fromlist=["x"]).segment_nuclei(np.zeros((4, 4)), sigma=-1),
                      ValueError, r"sigma=-1"),
    # -- profiling ----------------------------------------------------------------------------------
    "norm_method": (lambda t: _norm(method="zscore"), ValueError, r"method must be one of .* got 'zscore'"),
    "norm_inf": (lambda t: _norm(df=_profiles().assign(Cells_b=[np.inf] + [0.0] * 11)), ValueError,
                 r"'Cells_b' has an infinite value"),
    "norm_no_controls": (lambda t: _norm(samples="Metadata_Control == 'yes'"), ValueError, r"selects no rows"),
    "norm_bad_query": (lambda t: _norm(samples="Metadata_Missing == 1"), ValueError, r"samples query .*Metadata_Missing"),
    "norm_by_missing": (lambda t: _norm(by="Metadata_Batch"), ValueError, r"by column\(s\) \['Metadata_Batch'\]"),
    "norm_text_feature": (lambda t: _norm(features=["Metadata_Plate"]), ValueError, r"\['Metadata_Plate'\] are not numeric"),
    "norm_missing_feature": (lambda t: _norm(features=["Cells_z"]), ValueError, r"\['Cells_z'\] not in the table"),
    "norm_mad_eps": (lambda t: _norm(method="mad_robustize", mad_robustize_epsilon=-1), ValueError,
                     r"mad_robustize_epsilon must be"),
    "norm_int_quantiles": (lambda t: _norm(method="inverse_normal", inverse_normal_n_quantiles=0), ValueError,
                           r"inverse_normal_n_quantiles must be a positive integer"),
    "norm_spherize_one_row": (lambda t: _norm(method="spherize", samples="index == 0"), ValueError,
                              r"at least 2 reference rows"),
    "norm_spherize_method": (lambda t: _norm(method="spherize", spherize_method="PCB"), ValueError,
                             r"spherize_method must be one of"),
    "fs_operation": (lambda t: _fs(operation="drop_outlier"), ValueError, r"unknown operation\(s\) \['drop_outlier'\]"),
    "fs_na_cutoff": (lambda t: _fs(operation="drop_na_columns", na_cutoff=2), ValueError, r"na_cutoff must be in"),
    "fs_corr": (lambda t: _fs(operation="correlation_threshold", corr_threshold=-0.1), ValueError, r"corr_threshold"),
    "fs_inf": (lambda t: __import__("cellbench.profiling.feature_select", fromlist=["x"]).feature_select(
        _profiles().assign(Cells_c=-np.inf)), ValueError, r"'Cells_c' has an infinite value"),
    "recipe_step": (lambda t: _recipe({"normalise": {}}), ConfigError, r"v\.normalise: unknown recipe step"),
    "recipe_argument": (lambda t: _recipe({"normalize": {"methd": "mad_robustize"}}), ConfigError,
                        r"v\.normalize\.methd: unknown argument of normalize"),
    "recipe_type": (lambda t: _recipe({"tvn": {"reg": "small"}}), ConfigError, r"v\.tvn\.reg: expected a number"),
    "recipe_float_arg": (lambda t: _recipe({"feature_select": {"na_cutoff": "half"}}), ConfigError,
                         r"v\.feature_select\.na_cutoff: expected a number"),
    # -- exploration --------------------------------------------------------------------------------
    "explore_no_column": (lambda t: _explore(_library_table().drop(columns="Metadata_Image")), ValueError,
                          r"missing column\(s\) \['Metadata_Image'\]"),
    "explore_nan": (lambda t: _explore(_library_table().assign(f1=np.nan)), ValueError, r"column 'f1' has NaN"),
    "explore_one_cell": (lambda t: _explore(_library_table().drop(index=[1, 2])), ValueError, r"protein 'P0' has 1 cell"),
    "explore_one_protein_class": (lambda t: _explore(_library_table().assign(
        Metadata_Compartments=["ER"] * 15 + ["Golgi"] * 3)), ValueError, r"class 'Golgi' has 1 protein"),
    "explore_rare_absent": (lambda t: _explore(_library_table(), rare_class="Nucleolar Rim"), ConfigError,
                            r"rare_class: 'Nucleolar Rim' has 0 protein"),
    "explore_linkage": (lambda t: _explore(_library_table(), linkage="upgma"), ConfigError, r"linkage: 'upgma'"),
    "explore_image_mixed": (lambda t: _explore(_library_table().assign(Metadata_Image="one")), ValueError,
                            r"image 'one' has cells of more than one"),
    # -- metrics ------------------------------------------------------------------------------------
    "ap_null_metadata": (lambda t: __import__("cellbench.metrics.retrieval", fromlist=["x"]).average_precision(
        pd.DataFrame({"g": ["a", None]}), np.ones((2, 2)), ["g"], [], [], ["g"]), ValueError, r"must not contain nulls"),
    "map_empty": (lambda t: __import__("cellbench.metrics.retrieval", fromlist=["x"]).mean_average_precision(
        pd.DataFrame({"g": [], "average_precision": [], "n_pos_pairs": [], "n_total_pairs": []}), ["g"]), ValueError,
                  r"no profile has an average precision"),
    # -- representations ----------------------------------------------------------------------------
    "rep_unknown_method": (lambda t: __import__("cellbench.representations", fromlist=["x"]).run(
        "deeplok", _crops(), {}, "x"), ValueError, r"unknown representation method 'deeplok'"),
    "deeploc_crop_too_big": (lambda t: _run("deeploc", {"crop": 60}), ConfigError, r"deeploc.crop: 60 px is larger"),
    "deeploc_steps_0": (lambda t: _run("deeploc", {"steps": 0}), ConfigError, r"representation.deeploc.steps: must be > 0"),
    "deeploc_batch_0": (lambda t: _run("deeploc", {"batch_size": 0}), ConfigError, r"deeploc.batch_size: must be > 0"),
    "deeploc_device": (lambda t: _run("deeploc", {"device": "gpu"}), ConfigError, r"deeploc.device: 'gpu'"),
    "deeploc_split": (lambda t: _run("deeploc", {"train_splits": ["training"], "crop": 12}), ValueError,
                      r"no crops in the training split\(s\) \['training'\]"),
    "pci_steps_0": (lambda t: _run("pci", {"steps": 0}), ConfigError, r"representation.pci.steps: must be > 0"),
    "pci_steps_negative": (lambda t: _run("pci", {"steps": -5}), ConfigError, r"pci.steps: must be > 0"),
    "ae_batch_0": (lambda t: _run("autoencoder", {"batch_size": 0}), ConfigError, r"autoencoder.batch_size"),
    "texture_levels_0": (lambda t: _run("texture", {"levels": 0}), ConfigError, r"texture.levels: must be > 0"),
    "texture_batch_0": (lambda t: _run("texture", {"batch_size": 0}), ConfigError, r"texture.batch_size"),
    "vgg16_weights_missing": (lambda t: _run("vgg16", {"weights": str(t / "vgg.pth")}), (ConfigError, ValueError,
                                                                                        FileNotFoundError), r"vgg.pth"),
    "vgg16_weights_tensor": (lambda t: _run("vgg16", {"weights": str(_torch_file(t, torch.zeros(2), "v.pth"))}),
                             ValueError, r"v.pth: expected a state dict, found a Tensor"),
    # -- simulation ---------------------------------------------------------------------------------
    "sim_design": (lambda t: _sim({"design": "coos8"}), ConfigError, r"design: unknown design 'coos8'"),
    "sim_design_typo": (lambda t: _sim({"desing": "jump"}), ConfigError, r"desing: unknown parameter; did you mean design"),
    "sim_class": (lambda t: _sim({"classes": ["Golgi", "Lysosome"]}), ConfigError, r"Lysosome"),
    "sim_size": (lambda t: _sim({"size": -1}), ConfigError, r"size must be > 0"),
    "sim_library_pair": (lambda t: _sim({"design": "protein_library", "multi_pairs": [["Cytosol"]]}), ConfigError,
                         r"multi_pairs"),
    "sim_library_lines": (lambda t: _sim({"design": "protein_library", "images_per_protein": 9}), ConfigError,
                          r"images_per_protein \(9\)"),
    "sim_nuisance_key": (lambda t: _sim({"nuisance": {"plate_sd": 1}}), ConfigError, r"nuisance.plate_sd"),
    "sim_nuisance_type": (lambda t: _sim({"nuisance": {"plate_expression_sd": "big"}}), ConfigError,
                          r"nuisance.plate_expression_sd: expected a number"),
    # -- zeros that mean nothing ---------------------------------------------------------------------
    "zero_min_distance": (lambda t: _param(("ingestion", "fields", "segmentation", "min_distance"), 0), ConfigError,
                          r"ingestion.fields.segmentation.min_distance: must be >= 1"),
    "negative_sigma": (lambda t: _param(("ingestion", "fields", "segmentation", "sigma"), -1.0), ConfigError,
                       r"ingestion.fields.segmentation.sigma: must be >= 0"),
    "zero_vgg_batch": (lambda t: _param(("representation", "vgg16", "embed_batch_size"), 0), ConfigError,
                       r"representation.vgg16.embed_batch_size: must be > 0"),
    "zero_rf_jobs": (lambda t: _param(("evaluation", "classifiers", "random_forest", "n_jobs"), 0), ConfigError,
                     r"random_forest.n_jobs: 0 has no meaning"),
    "zero_decay_rate": (lambda t: _param(("representation", "deeploc", "decay_rate"), 0), ConfigError,
                        r"representation.deeploc.decay_rate: must be > 0"),
    "zero_chunk": (lambda t: _param(("ingestion", "coos7", "chunk_cells"), 0), ConfigError,
                   r"ingestion.coos7.chunk_cells: must be > 0"),
    "zero_batch_texture": (lambda t: _param(("representation", "texture", "batch_size"), 0), ConfigError,
                           r"representation.texture.batch_size: must be > 0"),
    "illumination_key": (lambda t: _param(("ingestion", "fields", "illumination"), {"downscal": 4}), ConfigError,
                         r"ingestion.fields.illumination.downscal: unknown parameter"),
    "segmentation_key": (lambda t: _param(("ingestion", "fields", "segmentation"), {"sigma": 1, "min_dist": 3}),
                         ConfigError, r"ingestion.fields.segmentation.min_dist: unknown parameter"),
    # -- the environment ----------------------------------------------------------------------------
    "env_misspelt": (lambda t: _session_env(t, "papr"), ConfigError, r"--env papr: there is no configuration environment"),
}


class _Unsafe:
    def __reduce__(self):
        return (print, ("this would run on load",))


def _read_coos7(t):
    from cellbench.ingest import read_coos7

    return read_coos7(t, splits=["train"])


def _load_store(path):
    from cellbench.datasets import CropStoreDataset

    return CropStoreDataset(str(path)).load()


def _save_store(t, crops):
    from cellbench.datasets import CropStoreDataset

    return CropStoreDataset(str(t / "store")).save(crops)


def _nan_crops():
    from cellbench.crops import Crops

    c = _crops(dtype=np.float32)
    images = np.asarray(c.images).copy()
    images[2, 0, 0, 0] = np.nan
    return Crops(images, c.metadata)


def _bad_crops(dtype):
    from cellbench.crops import Crops

    if dtype is None:
        return Crops(np.zeros((6, 16, 16), np.uint16), _crops().metadata)
    return Crops(np.zeros((6, 2, 16, 16), dtype), _crops().metadata)


def _features_damaged(t):
    from cellbench.datasets import FeatureTablesDataset

    ds = FeatureTablesDataset(str(t / "features"))
    ds.save({"conv1": pd.DataFrame({"Metadata_a": [1], "f": [1.0]})})
    _truncate(t / "features" / "conv1.parquet")
    return ds.load()


def _parquet_damaged(t):
    from cellbench.datasets import ParquetDataset

    ds = ParquetDataset(filepath=str(t / "table.parquet"))
    ds.save(pd.DataFrame({"Metadata_a": range(100), "f": np.arange(100.0)}))
    _truncate(t / "table.parquet")
    return ds.load()


def _model(path):
    from cellbench.datasets import TorchModelDataset

    return TorchModelDataset(str(path)).load()


def _load_vit(path):
    from cellbench.models.pretrained import load_vit
    from cellbench.models.vit import ViT

    return load_vit(ViT(image_size=16, patch_size=8, in_channels=2, dim=8, depth=1, heads=2), path)


def _load_resnet(path):
    from cellbench.models.pretrained import load_resnet18
    from cellbench.models.resnet import ResNet18

    return load_resnet18(ResNet18(in_channels=2, n_classes=2, width=0.125), path)


def _read_tiff(root):
    from cellbench.ingest import read_tiff_folder

    return read_tiff_folder(root, channels=["protein", "nucleus"])


def _read_fields(root, pattern=r"(?P<image>.+)d(?P<channel>\d+)$", nucleus_channel="0"):
    from cellbench.ingest import read_fields

    return read_fields(root, channels=["0", "1"], nucleus_channel=nucleus_channel, pattern=pattern)


def _param(path, value):
    return validate_parameters(_set(BASE, path, value))


def _recipe(recipe):
    from cellbench.profiling.recipe import check_recipe

    return check_recipe(recipe, "v")


def _sim(params):
    from cellbench.ingest.sources import simulation

    return simulation(params, "ingestion.simulation")


def _session_env(t, env):
    import shutil

    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from tests.test_run import copy_project

    project = copy_project(t)
    shutil.rmtree(project / "data", ignore_errors=True)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        session.load_context()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_named(case, tmp_path, data_dir, monkeypatch):
    func, error, message = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("CELLBENCH_MLFLOW_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(error, match=message):
        func(work)


def test_the_matrix_has_at_least_150_cases():
    assert len(NUMERIC) + len(KEYS) + len(CASES) >= 150
    assert len(CASES) >= 80
