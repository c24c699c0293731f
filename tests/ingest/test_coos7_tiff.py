"""COOS-7 HDF5 and per-cell TIFF readers: layouts as published, counts, dtypes, bad input."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from kedro.io.core import DatasetError

from cellbench.datasets import CropStoreDataset
from cellbench.ingest import coos7_filename, read_coos7, read_tiff_folder
from cellbench.simulate import COOS7_CLASSES


def write_coos7(directory: Path, crops, extra: bool = True) -> dict[str, int]:
    """The simulated crops written as COOS7_v1.1_<split>.hdf5 files (published layout)."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {}
    meta = crops.metadata
    for split in ("train", "test1", "test2", "test3", "test4"):
        idx = np.flatnonzero(meta["Metadata_Split"].to_numpy() == split)
        with h5py.File(directory / coos7_filename(split), "w") as f:
            f["data"] = np.asarray(crops.images)[idx]
            f["labels"] = meta["Metadata_Label"].to_numpy()[idx].astype(np.int64)
            if extra:
                f["plate"] = meta["Metadata_Plate"].astype(str).to_numpy()[idx].astype("S")
                f["summary"] = np.zeros(3)  # not one value per cell: not carried
        sizes[split] = len(idx)
    return sizes


@pytest.fixture
def coos7_dir(tmp_path, small_coos):
    sizes = write_coos7(tmp_path / "coos7", small_coos)
    return tmp_path / "coos7", sizes


def test_coos7_reads_every_cell_with_metadata(coos7_dir, small_coos):
    path, sizes = coos7_dir
    chunked = read_coos7(path, chunk_cells=100)
    assert chunked.n_crops == sum(sizes.values())
    crops = chunked.materialize()
    assert crops.dtype == np.uint16 and crops.shape[1:] == (2, 64, 64)
    meta = crops.metadata
    assert meta.groupby("Metadata_Split").size().to_dict() == sizes
    assert set(meta.columns) >= {"Metadata_Split", "Metadata_Label", "Metadata_LabelName", "Metadata_plate",
                                 "Metadata_Index", "Metadata_Source"}
    assert "Metadata_summary" not in meta
    assert meta["Metadata_LabelName"].tolist() == [COOS7_CLASSES[i] for i in meta["Metadata_Label"]]
    # rows come back in file order with their pixels untouched
    train = np.flatnonzero(small_coos.metadata["Metadata_Split"].to_numpy() == "train")
    np.testing.assert_array_equal(np.asarray(crops.images)[: len(train)], np.asarray(small_coos.images)[train])
    assert meta["Metadata_plate"].iloc[0] == small_coos.metadata["Metadata_Plate"].astype(str).iloc[train[0]]


def test_coos7_uint8_is_widened(tmp_path):
    with h5py.File(tmp_path / coos7_filename("train"), "w") as f:
        f["data"] = np.full((3, 2, 64, 64), 7, np.uint8)
        f["labels"] = np.array([0, 1, 6])
    crops = read_coos7(tmp_path, splits=["train"]).materialize()
    assert crops.dtype == np.uint16 and int(np.asarray(crops.images).max()) == 7


def _bad_file(path: Path, **kw):
    data = kw.get("data", np.zeros((4, 2, 64, 64), np.uint16))
    labels = kw.get("labels", np.array([0, 1, 2, 3]))
    with h5py.File(path, "w") as f:
        if data is not None:
            f[kw.get("data_key", "data")] = data
        if labels is not None:
            f["labels"] = labels


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"data_key": "images"}, "lacks key(s) ['data']"),
        ({"labels": None}, "lacks key(s) ['labels']"),
        ({"data": np.zeros((4, 64, 64), np.uint16)}, "rank-4"),
        ({"data": np.zeros((4, 2, 64, 64), np.int32)}, "dtype int32"),
        ({"data": np.zeros((4, 3, 64, 64), np.uint16)}, "crops of shape (3, 64, 64); the published COOS-7 crops are (2, 64, 64)"),
        ({"data": np.zeros((4, 2, 32, 32), np.uint16)}, "crops of shape (2, 32, 32)"),
        ({"labels": np.array([0, 1, 2, 7])}, "expected integers 0..6"),
        ({"labels": np.array([0, -1, 2, 3])}, "expected integers 0..6"),
        ({"labels": np.array([0, 1, 2])}, "must have shape (4,)"),
        ({"labels": np.array([0.5, 1, 2, 3])}, "must hold integers"),
    ],
)
def test_coos7_bad_files_are_named(tmp_path, kwargs, message):
    path = tmp_path / coos7_filename("train")
    _bad_file(path, **kwargs)
    with pytest.raises(ValueError) as err:
        read_coos7(tmp_path, splits=["train"])
    assert message in str(err.value) and str(path) in str(err.value)


def test_coos7_missing_and_corrupt_files(tmp_path, coos7_dir):
    path, _ = coos7_dir
    (path / coos7_filename("test3")).unlink()
    with pytest.raises(ValueError, match=r"test3: file not found: .*COOS7_v1.1_test3.hdf5"):
        read_coos7(path)
    (path / coos7_filename("test3")).write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        read_coos7(path)
    with pytest.raises(ValueError, match="is not a directory"):
        read_coos7(path / "nowhere")


def test_coos7_bad_split_leaves_no_crop_store(tmp_path, coos7_dir):
    path, _ = coos7_dir
    _bad_file(path / coos7_filename("test4"), labels=np.array([0, 1, 2, 9]))
    store = CropStoreDataset(str(tmp_path / "store"))
    with pytest.raises((ValueError, DatasetError), match="test4"):
        store.save(read_coos7(path))
    assert not (tmp_path / "store").exists()
    assert not list(tmp_path.glob(".store.tmp-*"))


# -- TIFF folders -----------------------------------------------------------------------------------
def _tiff_tree(root: Path, crops, stacked: bool, n_per: int = 3):
    meta = crops.metadata
    written = 0
    for split in ("train", "test1"):
        for lab in (0, 3):
            idx = np.flatnonzero((meta["Metadata_Split"] == split).to_numpy() & (meta["Metadata_Label"] == lab).to_numpy())
            d = root / ("training" if split == "train" else split) / COOS7_CLASSES[lab]
            d.mkdir(parents=True)
            for k in idx[:n_per]:
                img = np.asarray(crops.images[k])
                if stacked:
                    tifffile.imwrite(d / f"cell{k}.tif", img)
                else:
                    tifffile.imwrite(d / f"cell{k}_protein.tif", img[0])
                    tifffile.imwrite(d / f"cell{k}_nucleus.tif", img[1])
                    tifffile.imwrite(d / f"cell{k}_mask.tif", (img[1] > 0).astype(np.uint8))
                written += 1
    return written


@pytest.mark.parametrize("stacked", [True, False])
def test_tiff_folder_both_layouts(tmp_path, small_coos, stacked):
    n = _tiff_tree(tmp_path / "tiffs", small_coos, stacked)
    crops = read_tiff_folder(tmp_path / "tiffs", class_names=list(COOS7_CLASSES), chunk_cells=5).materialize()
    assert len(crops) == n >= 6
    assert crops.dtype == np.uint16 and crops.shape[1:] == (2, 64, 64)
    assert set(crops.metadata["Metadata_Split"]) == {"train", "test1"}
    assert set(crops.metadata["Metadata_Label"]) == {0, 3}
    k = int(crops.metadata["Metadata_File"].iloc[0].removeprefix("cell").split("_")[0])
    np.testing.assert_array_equal(np.asarray(crops.images[0]), np.asarray(small_coos.images[k]))


def test_tiff_folder_bad_input(tmp_path, small_coos):
    with pytest.raises(ValueError, match="no TIFF files found"):
        (tmp_path / "empty").mkdir()
        read_tiff_folder(tmp_path / "empty")
    _tiff_tree(tmp_path / "t", small_coos, stacked=False)
    victim = next((tmp_path / "t").rglob("*_nucleus.tif"))
    with pytest.raises(ValueError, match="not in class_names"):
        read_tiff_folder(tmp_path / "t", class_names=["ER"])
    victim.unlink()
    with pytest.raises(ValueError, match=r"lacks channel file\(s\).*_nucleus.tif"):
        read_tiff_folder(tmp_path / "t")


def test_tiff_corrupt_and_truncated_files_are_named_and_leave_nothing(tmp_path, small_coos):
    _tiff_tree(tmp_path / "t", small_coos, stacked=True)
    files = sorted((tmp_path / "t").rglob("*.tif"))
    files[0].write_bytes(b"this is not a tiff at all")
    with pytest.raises(ValueError, match=f"{files[0].name} is not a readable TIFF"):
        read_tiff_folder(tmp_path / "t")
    tifffile.imwrite(files[0], np.asarray(small_coos.images[0]))
    raw = files[-1].read_bytes()
    files[-1].write_bytes(raw[: len(raw) // 2])  # header intact, pixels cut off
    store = CropStoreDataset(str(tmp_path / "store"), chunk_size=4)
    with pytest.raises((ValueError, DatasetError), match=files[-1].name):  # kedro wraps save errors
        store.save(read_tiff_folder(tmp_path / "t", chunk_cells=4))
    assert not (tmp_path / "store").exists()
