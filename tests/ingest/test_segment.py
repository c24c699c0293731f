"""Nuclei segmentation and cropping, on hand-made images and on a real field of view."""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from cellbench.ingest import crop_cells, field_to_crops, illumination_function, nucleus_table, read_fields, segment_nuclei

FOV = Path(__file__).resolve().parents[1] / "data" / "cellprofiler_example_human"


def disks(centres, radius=6, shape=(64, 64), value=200):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.full(shape, 10.0)
    for cy, cx in centres:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = value
    return img.astype(np.uint16)


def test_separate_and_touching_disks():
    assert segment_nuclei(disks([(15, 15), (45, 45)]), sigma=1).max() == 2
    touching = disks([(32, 24), (32, 35)])  # overlap by one pixel: one blob with a waist
    assert segment_nuclei(touching, sigma=1, split_touching=False).max() == 1
    assert segment_nuclei(touching, sigma=1, split_touching=True).max() == 2


def test_size_filter_holes_and_constant_image():
    img = disks([(15, 15)], radius=6)
    img[15, 15] = 10  # a hole inside the nucleus
    img = np.maximum(img, disks([(45, 45)], radius=2))  # a speck of 13 px
    labels = segment_nuclei(img, sigma=0, min_area=30)
    assert labels.max() == 1 and (labels[15, 15] == 1)
    assert segment_nuclei(np.full((32, 32), 5, np.uint16)).max() == 0
    with pytest.raises(ValueError, match="must be 2-D"):
        segment_nuclei(np.zeros((2, 8, 8)))


def test_nucleus_table_and_crops_hand_case():
    labels = np.zeros((20, 20), np.int32)
    labels[2:5, 2:5] = 1      # centre (3, 3): a 6 x 6 window would start at row 0 -> inside
    labels[9:12, 14:17] = 2   # centre (10, 15): window cols 12..18 inside
    labels[17:20, 17:20] = 3  # centre (18, 18): window leaves the frame -> skipped
    table = nucleus_table(labels)
    np.testing.assert_allclose(table[["Center_Y", "Center_X"]].to_numpy(), [[3, 3], [10, 15], [18, 18]])
    assert table["Area"].tolist() == [9, 9, 9]
    image = np.arange(2 * 20 * 20).reshape(2, 20, 20)
    crops, kept = crop_cells(image, table[["Center_Y", "Center_X"]].to_numpy(), 6)
    assert kept.tolist() == [0, 1] and crops.shape == (2, 2, 6, 6)
    np.testing.assert_array_equal(crops[1], image[:, 7:13, 12:18])


def test_illumination_function_recovers_a_smooth_field(rng):
    yy, xx = np.mgrid[:64, :64]
    field = 0.6 + 0.8 * (xx / 63.0)  # a left-to-right gradient
    images = rng.poisson(200 * field, size=(9, 64, 64)).astype(np.float64)
    illum = illumination_function(images, downscale=4, median_size=3)
    assert illum.shape == (64, 64) and abs(illum.mean() - 1) < 1e-9
    expected = field / field.mean()
    assert np.abs(illum[8:-8, 8:-8] - expected[8:-8, 8:-8]).max() < 0.05
    corrected = images / illum
    assert corrected[:, :, -8:].mean() / corrected[:, :, :8].mean() == pytest.approx(1, abs=0.05)


def test_real_field_of_view_nuclei_and_crops(tmp_path):
    dna = tifffile.imread(FOV / "AS_09125_050116030001_D03f00d0.tif")
    labels = segment_nuclei(dna)
    # established by looking at the image (PROVENANCE.md): about 300 nuclei, 8-14 px across
    assert 250 <= labels.max() <= 380
    areas = np.bincount(labels.ravel())[1:]
    assert 50 <= np.median(areas) <= 160
    assert segment_nuclei(dna, split_touching=False).max() < labels.max()  # touching pairs get split
    image = np.stack([tifffile.imread(FOV / f"AS_09125_050116030001_D03f00d{c}.tif") for c in range(3)])
    crops, meta = field_to_crops(image, 0, crop_size=48)
    assert crops.dtype == np.uint16 and crops.shape[1:] == (3, 48, 48)
    assert 0.6 * labels.max() <= len(crops) < labels.max()  # border nuclei skipped
    # each crop is centred on a nucleus: its centre is brighter in DNA than its corners
    centre = crops[:, 0, 20:28, 20:28].mean(axis=(1, 2))
    corners = crops[:, 0, :6, :6].mean(axis=(1, 2))
    assert np.mean(centre > corners) > 0.95
    assert set(meta.columns) == {"Metadata_ObjectNumber", "Metadata_Nuclei_Location_Center_X",
                                 "Metadata_Nuclei_Location_Center_Y", "Metadata_Nuclei_Area", "Metadata_Field_Nuclei",
                                 "Metadata_Field_Separability", "Metadata_Field_Verdict"}
    assert (meta["Metadata_Field_Verdict"] == "ok").all() and meta.attrs["quality"]["separability"] > 0.7
    assert field_to_crops(image, 0, crop_size=48, min_cells=10_000)[0].shape[0] == 0


def test_read_fields_folder_and_errors(tmp_path):
    crops = read_fields(FOV, ["0", "1", "2"], "0", crop_size=48, chunk_cells=50).materialize()
    assert crops.shape[1:] == (3, 48, 48) and crops.metadata["Metadata_Image"].nunique() == 1
    corrected = read_fields(FOV, ["0", "2"], "0", crop_size=48, illumination={"downscale": 4, "median_size": 24})
    assert corrected.materialize().dtype == np.float32
    with pytest.raises(ValueError, match="nucleus_channel '5' not in channels"):
        read_fields(FOV, ["0", "1"], "5")
    with pytest.raises(ValueError, match="lacks channel"):
        read_fields(FOV, ["0", "9"], "0")
    with pytest.raises(ValueError, match="lacks named group"):
        read_fields(FOV, ["0"], "0", pattern=r"(?P<image>.+)")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no TIFF under"):
        read_fields(tmp_path / "empty", ["0"], "0")


def test_a_field_of_pure_noise_is_reported_implausible(tmp_path, caplog):
    """Noise gives hundreds of "nuclei"; the field's report says they are not believable."""
    import tifffile

    from cellbench.ingest import read_fields

    rng = np.random.default_rng(0)
    for ch in range(2):
        tifffile.imwrite(tmp_path / f"noise_f00d{ch}.tif", rng.normal(1000, 30, (256, 256)).astype(np.uint16))
    tifffile.imwrite(tmp_path / "blank_f01d0.tif", np.full((256, 256), 100, np.uint16))
    tifffile.imwrite(tmp_path / "blank_f01d1.tif", np.full((256, 256), 100, np.uint16))
    chunked = read_fields(tmp_path, channels=["0", "1"], nucleus_channel="0", crop_size=32)
    with caplog.at_level("WARNING"):
        crops = chunked.materialize()
    report = {r["image"]: r for r in chunked.info["nuclei_report"]}
    assert report["noise_f00"]["verdict"] == "implausible" and report["noise_f00"]["nuclei"] > 50
    assert report["noise_f00"]["separability"] < 0.7 and report["blank_f01"]["verdict"] == "no nuclei"
    assert (crops.metadata["Metadata_Field_Verdict"] == "implausible").all()
    assert "noise_f00" in caplog.text and "implausible" in caplog.text and "noise_f00d0.tif" in caplog.text
    assert "blank_f01" in caplog.text and "no nuclei" in caplog.text
