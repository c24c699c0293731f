import numpy as np
import pandas as pd
import pytest
import zarr
from kedro.io.core import DatasetError

from cellbench.crops import ChunkedCrops, Crops
from cellbench.datasets import CropStoreDataset


def _crops(n=50, dtype=np.uint16, start=0):
    imgs = (np.arange(n * 2 * 8 * 8) + start).reshape(n, 2, 8, 8).astype(dtype)
    meta = pd.DataFrame({"Metadata_Split": ["train"] * n, "Metadata_Label": np.arange(n) % 3})
    return Crops(imgs, meta)


def test_round_trip_uint16_and_float32(tmp_path):
    for dtype in (np.uint16, np.float32):
        ds = CropStoreDataset(str(tmp_path / f"store_{np.dtype(dtype).name}"), chunk_size=16)
        c = _crops(dtype=dtype)
        ds.save(c)
        back = ds.load()
        assert back.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(back.images[:]), c.images)
        pd.testing.assert_frame_equal(back.metadata, c.metadata)


def test_load_is_lazy_and_chunked(tmp_path):
    ds = CropStoreDataset(str(tmp_path / "s"), chunk_size=10)
    c = _crops(n=95)
    ds.save(c)
    back = ds.load()
    assert not isinstance(back.images, np.ndarray) and isinstance(back.images._array, zarr.Array)  # lazy, not a copy
    assert back.images.chunks[0] == 10
    np.testing.assert_array_equal(back.images[42:45], c.images[42:45])
    picked = back.take(np.array([90, 3, 41]))
    np.testing.assert_array_equal(picked.images, c.images[[90, 3, 41]])
    assert picked.metadata["Metadata_Label"].tolist() == [0, 0, 2]
    batches = list(back.batches(40))
    assert [b[1].shape[0] for b in batches] == [40, 40, 15]


def test_chunked_save_streams_and_concatenates(tmp_path):
    chunks = [_crops(n=7, start=i * 1000) for i in range(3)]
    ds = CropStoreDataset(str(tmp_path / "s"), chunk_size=4)
    ds.save(ChunkedCrops(lambda: iter(chunks)))
    back = ds.load()
    assert len(back) == 21
    np.testing.assert_array_equal(back.images[7:14], chunks[1].images)


def test_failed_write_leaves_nothing_and_keeps_old_store(tmp_path):
    root = tmp_path / "s"
    ds = CropStoreDataset(str(root))
    ds.save(_crops(n=5))

    def broken():
        yield _crops(n=5, start=7)
        raise RuntimeError("simulator crashed")

    with pytest.raises(DatasetError, match="simulator crashed"):
        ds.save(ChunkedCrops(broken))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary leftovers
    np.testing.assert_array_equal(np.asarray(ds.load().images[:]), _crops(n=5).images)


def test_missing_metadata_file_is_named(tmp_path):
    ds = CropStoreDataset(str(tmp_path / "s"))
    ds.save(_crops())
    (tmp_path / "s" / "metadata.parquet").unlink()
    with pytest.raises(DatasetError, match=r"missing metadata file .*metadata\.parquet"):
        ds.load()


def test_row_count_mismatch_is_reported(tmp_path):
    ds = CropStoreDataset(str(tmp_path / "s"))
    ds.save(_crops(n=10))
    pd.DataFrame({"Metadata_Split": ["train"] * 9}).to_parquet(tmp_path / "s" / "metadata.parquet")
    with pytest.raises(DatasetError, match=r"metadata.parquet has \d+ bytes, \d+ were written \(truncated or changed\)"):
        ds.load()
    (tmp_path / "s" / "manifest.json").unlink()  # a store written before manifests: the rows are compared
    with pytest.raises(DatasetError, match="9 rows but images.zarr has 10 crops"):
        ds.load()


@pytest.mark.parametrize(
    "images, match",
    [
        (np.zeros((4, 2, 8, 8), np.int32), "uint16 or float32"),
        (np.zeros((4, 8, 8), np.uint16), "rank 4"),
    ],
)
def test_bad_arrays_rejected_on_save(tmp_path, images, match):
    with pytest.raises(ValueError, match=match):
        Crops(images, pd.DataFrame({"Metadata_Split": ["train"] * 4}))


def test_bad_dtype_on_disk_rejected_on_load(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    zarr.create_array(store=str(root / "images.zarr"), shape=(3, 1, 4, 4), dtype="int32")
    pd.DataFrame({"Metadata_Split": ["train"] * 3}).to_parquet(root / "metadata.parquet")
    with pytest.raises(DatasetError, match="expected dtype uint16 or float32, got int32"):
        CropStoreDataset(str(root)).load()


def test_metadata_columns_must_be_prefixed():
    with pytest.raises(ValueError, match="must start with 'Metadata_'"):
        Crops(np.zeros((2, 1, 4, 4), np.uint16), pd.DataFrame({"split": ["a", "b"]}))


def test_damaged_store_is_named_not_read_as_zeros(tmp_path):
    """A chunk deleted or truncated after the save: the load (manifest) or the read names the store."""
    import pytest
    from kedro.io.core import DatasetError

    ds = CropStoreDataset(str(tmp_path / "s"), chunk_size=10)
    ds.save(_crops(n=35))
    chunk = sorted((tmp_path / "s" / "images.zarr").rglob("c/*/0/0/0"))[1]
    original = chunk.read_bytes()
    chunk.write_bytes(original[: len(original) // 2])
    with pytest.raises(DatasetError, match=r"crop store .*s: images.zarr/c/1/0/0/0 has \d+ bytes, \d+ were written"):
        ds.load()
    (tmp_path / "s" / "manifest.json").unlink()  # an old store without a manifest: the read names it
    crops = ds.load()
    with pytest.raises(DatasetError, match=r"crop store .*images.zarr: reading crops 10:20 failed"):
        np.asarray(crops.images[10:20])
    chunk.unlink()
    ds2 = CropStoreDataset(str(tmp_path / "t"), chunk_size=10)
    ds2.save(_crops(n=35))
    next((tmp_path / "t" / "images.zarr").rglob("c/2/0/0/0")).unlink()
    with pytest.raises(DatasetError, match=r"images.zarr/c/2/0/0/0 is missing"):
        ds2.load()


def test_nan_pixels_are_refused(tmp_path):
    import pytest
    from kedro.io.core import DatasetError

    c = _crops(n=12)
    images = np.asarray(c.images, np.float32)
    images[7, 1, 3, 3] = np.nan
    with pytest.raises(DatasetError, match=r"chunk 0 crop 7 \(row 7\) has NaN or infinite pixels"):
        CropStoreDataset(str(tmp_path / "s")).save(Crops(images, c.metadata))
    assert not (tmp_path / "s").exists() and list(tmp_path.iterdir()) == []
