"""COOS-7 as published: one HDF5 file per split (Lu et al. 2019, Zenodo; METHODS.md section 1.1).

Layout of a directory::

    COOS7_v1.1_training.hdf5   data (N, 2, 64, 64) uint16, labels (N,) integers 0..6
    COOS7_v1.1_test1.hdf5      ... test2, test3, test4 likewise

Channel 0 is the protein, channel 1 the nucleus. Any other 1-D dataset of length N found in a file
(plate, well, date ids, ...) is carried into the metadata as ``Metadata_<key>``. Files are
validated completely (names, keys, shapes, dtypes, label range) before the first crop is produced,
then read chunk by chunk, so a bad file never leaves a partial crop store behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cellbench.crops import ChunkedCrops, Crops
from cellbench.simulate.phenotypes import COOS7_CLASSES

log = logging.getLogger(__name__)

#: cellbench split name -> the split's name in the published file names
COOS7_FILE_SPLITS = {"train": "training", "test1": "test1", "test2": "test2", "test3": "test3", "test4": "test4"}
COOS7_VERSION = "v1.1"
#: dtypes stored as they are; uint8 is widened to uint16 without loss
COOS7_CROP = (2, 64, 64)  # channels (protein, nucleus) x height x width of every published crop
_KEPT = (np.dtype("uint16"), np.dtype("float32"))
_WIDENED = (np.dtype("uint8"),)


def coos7_filename(split: str, version: str = COOS7_VERSION) -> str:
    """Published file name of a split, e.g. ``COOS7_v1.1_training.hdf5`` for ``train``."""
    if split not in COOS7_FILE_SPLITS:
        raise ValueError(f"unknown COOS-7 split {split!r}; expected one of {list(COOS7_FILE_SPLITS)}")
    return f"COOS7_{version}_{COOS7_FILE_SPLITS[split]}.hdf5"


@dataclass
class Coos7File:
    """What a validated COOS-7 split file holds."""

    split: str
    path: Path
    n: int
    shape: tuple[int, int, int]
    dtype: np.dtype
    extra_keys: list[str] = field(default_factory=list)


def inspect_coos7_file(path: Path, split: str, n_classes: int = len(COOS7_CLASSES)) -> Coos7File:
    """Validate one split file; raise ``ValueError`` naming the file and key on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"COOS-7 {split}: file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"COOS-7 {split}: {path} is not a readable HDF5 file ({exc})") from exc
    with f:
        missing = [k for k in ("data", "labels") if k not in f]
        if missing:
            raise ValueError(
                f"COOS-7 {split}: {path} lacks key(s) {missing}; expected 'data' (N, 2, 64, 64) and "
                f"'labels' (N,), found keys {sorted(f.keys())}"
            )
        data, labels = f["data"], f["labels"]
        if not isinstance(data, h5py.Dataset) or data.ndim != 4:
            raise ValueError(
                f"COOS-7 {split}: {path} key 'data' must be a rank-4 array (N, C, H, W), "
                f"got shape {getattr(data, 'shape', None)}"
            )
        if tuple(data.shape[1:]) != COOS7_CROP:
            raise ValueError(f"COOS-7 {split}: {path} key 'data' holds crops of shape {tuple(data.shape[1:])}; the "
                             f"published COOS-7 crops are {COOS7_CROP} (protein, nucleus; 64 x 64 px)")
        n = int(data.shape[0])
        dtype = np.dtype(data.dtype)
        if dtype not in _KEPT + _WIDENED:
            raise ValueError(
                f"COOS-7 {split}: {path} key 'data' has dtype {dtype}; expected uint16 (as published), "
                "uint8 or float32"
            )
        if not isinstance(labels, h5py.Dataset) or labels.shape != (n,):
            raise ValueError(
                f"COOS-7 {split}: {path} key 'labels' must have shape ({n},) to match 'data', "
                f"got {getattr(labels, 'shape', None)}"
            )
        lab = labels[()]
        if lab.dtype.kind not in "iu" and not (lab.dtype.kind == "f" and np.all(lab == np.round(lab))):
            raise ValueError(f"COOS-7 {split}: {path} key 'labels' must hold integers, got dtype {lab.dtype}")
        if n and (lab.min() < 0 or lab.max() >= n_classes):
            raise ValueError(
                f"COOS-7 {split}: {path} key 'labels' has values in [{lab.min()}, {lab.max()}]; "
                f"expected integers 0..{n_classes - 1}"
            )
        extra = []
        for key in sorted(f.keys()):
            if key in ("data", "labels"):
                continue
            obj = f[key]
            if isinstance(obj, h5py.Dataset) and obj.shape == (n,):
                extra.append(key)
            else:
                log.warning("COOS-7 %s: %s key %r (shape %s) is not one value per cell; not carried",
                            split, path, key, getattr(obj, "shape", "group"))
        return Coos7File(split, path, n, tuple(int(s) for s in data.shape[1:]), dtype, extra)


def _column(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "SO":
        return np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
    return values


def read_coos7(directory: str | Path, splits: list[str] | None = None, chunk_cells: int = 4096,
               version: str = COOS7_VERSION) -> ChunkedCrops:
    """The COOS-7 splits under ``directory`` as chunked crops (uint16 kept, ``Metadata_`` columns).

    Metadata: ``Metadata_Split`` (train, test1..test4), ``Metadata_Label`` (0..6),
    ``Metadata_LabelName`` (seed Table 1 order), ``Metadata_Source`` (``COOS7_v1.1``),
    ``Metadata_Index`` (row in its file) and ``Metadata_<key>`` for every extra per-cell key.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"ingestion.coos7.path: {directory} is not a directory")
    if int(chunk_cells) <= 0:
        raise ValueError(f"ingestion.coos7.chunk_cells must be positive, got {chunk_cells}")
    splits = list(COOS7_FILE_SPLITS) if splits is None else list(splits)
    files = [inspect_coos7_file(directory / coos7_filename(s, version), s) for s in splits]
    shapes = {f.shape for f in files}
    if len(shapes) > 1:
        raise ValueError(f"COOS-7 {directory}: crops differ in shape between files: "
                         + ", ".join(f"{f.path.name} {f.shape}" for f in files))
    dtypes = {np.dtype("uint16") if f.dtype in _WIDENED else f.dtype for f in files}
    if len(dtypes) > 1:
        raise ValueError(f"COOS-7 {directory}: files mix dtypes "
                         + ", ".join(f"{f.path.name} {f.dtype}" for f in files))
    chunk_cells = int(chunk_cells)

    def chunks():
        for info in files:
            with h5py.File(info.path, "r") as f:
                for start in range(0, info.n, chunk_cells):
                    stop = min(start + chunk_cells, info.n)
                    images = f["data"][start:stop]
                    if images.dtype in _WIDENED:
                        images = images.astype(np.uint16)
                    labels = f["labels"][start:stop].astype(np.int64)
                    meta = {
                        "Metadata_Split": info.split,
                        "Metadata_Label": labels,
                        "Metadata_LabelName": np.asarray(COOS7_CLASSES, dtype=object)[labels],
                        "Metadata_Source": f"COOS7_{version}",
                        "Metadata_Index": np.arange(start, stop, dtype=np.int64),
                    }
                    for key in info.extra_keys:
                        meta[f"Metadata_{key}"] = _column(f[key][start:stop])
                    yield Crops(images, pd.DataFrame(meta))

    return ChunkedCrops(chunks, n_crops=sum(f.n for f in files),
                        info={"source": str(directory), "files": {f.split: f.n for f in files}})
