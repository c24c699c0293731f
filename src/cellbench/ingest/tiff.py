"""Per-cell TIFF folders: ``root/<split>/<class>/<cell>.tif`` (the curated COOS-7 layout, METHODS.md 1.1).

A cell is either one file with its channels stacked (``C x H x W`` or ``H x W x C``) or one file per
channel named ``<cell>_<channel>.tif`` (e.g. ``_protein``, ``_nucleus``); ``_mask`` files are
ignored. Headers of every file are checked before the first crop is produced; a file that turns out
truncated when its pixels are read fails the stream with its name, and the crop store's atomic
write leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from cellbench.crops import ChunkedCrops, Crops

TIFF_SUFFIXES = (".tif", ".tiff")
SPLIT_ALIASES = {"training": "train", "train": "train"}


@dataclass
class _Cell:
    split: str
    label_name: str
    name: str
    files: tuple[Path, ...]  # one stacked file, or one per channel in channel order


def _tiff_shape(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    try:
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            return tuple(int(s) for s in series.shape), np.dtype(series.dtype)
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct.error...
        raise ValueError(f"TIFF folder: {path} is not a readable TIFF ({type(exc).__name__}: {exc})") from exc


def _read(path: Path) -> np.ndarray:
    try:
        return tifffile.imread(path)
    except Exception as exc:
        raise ValueError(f"TIFF folder: {path} could not be read, truncated or corrupt "
                         f"({type(exc).__name__}: {exc})") from exc


def _to_chw(array: np.ndarray, n_channels: int, path: Path) -> np.ndarray:
    if array.ndim == 2 and n_channels == 1:
        return array[None]
    if array.ndim == 3 and array.shape[0] == n_channels:
        return array
    if array.ndim == 3 and array.shape[-1] == n_channels:
        return np.moveaxis(array, -1, 0)
    raise ValueError(f"TIFF folder: {path} has shape {array.shape}; expected {n_channels} channels "
                     "stacked as C x H x W or H x W x C")


def scan_tiff_folder(root: str | Path, channels: list[str]) -> list[_Cell]:
    """Find the cells under ``root/<split>/<class>/``; raise ``ValueError`` on an empty or odd layout."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"TIFF folder: {root} is not a directory")
    cells: list[_Cell] = []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        split = SPLIT_ALIASES.get(split_dir.name, split_dir.name)
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            groups: dict[str, dict[str, Path]] = {}
            for f in sorted(class_dir.iterdir()):
                if f.suffix.lower() not in TIFF_SUFFIXES:
                    continue
                stem = f.stem
                base, _, tag = stem.rpartition("_")
                if base and tag == "mask":
                    continue
                if base and tag in channels:
                    groups.setdefault(base, {})[tag] = f
                else:
                    groups.setdefault(stem, {})["*"] = f
            for name, parts in groups.items():
                if "*" in parts and len(parts) == 1:
                    files = (parts["*"],)
                else:
                    missing = [c for c in channels if c not in parts]
                    if missing:
                        raise ValueError(f"TIFF folder: cell {class_dir / name} lacks channel file(s) "
                                         f"{[f'{name}_{c}.tif' for c in missing]}")
                    files = tuple(parts[c] for c in channels)
                cells.append(_Cell(split, class_dir.name, name, files))
    if not cells:
        raise ValueError(f"TIFF folder: no TIFF files found under {root}; expected <split>/<class>/<cell>.tif")
    return cells


def read_tiff_folder(root: str | Path, channels: list[str] = ("protein", "nucleus"),
                     class_names: list[str] | None = None, chunk_cells: int = 1024) -> ChunkedCrops:
    """Per-cell TIFFs as chunked crops with ``Metadata_Split/Label/LabelName/File``.

    Labels follow ``class_names`` when given (a folder not in it is an error), else the sorted
    folder names. uint8 is widened to uint16; uint16 and float32 are kept.
    """
    channels = list(channels)
    cells = scan_tiff_folder(root, channels)
    found = sorted({c.label_name for c in cells})
    if class_names is not None:
        unknown = [c for c in found if c not in class_names]
        if unknown:
            raise ValueError(f"TIFF folder {root}: class folder(s) {unknown} not in class_names {list(class_names)}")
        names = list(class_names)
    else:
        names = found
    shape, dtype = None, None
    for cell in cells:  # headers only: cheap, catches corrupt files before anything is written
        for f in cell.files:
            s, d = _tiff_shape(f)
            if len(cell.files) == 1:
                s = _to_chw(np.empty(s, dtype=np.uint8), len(channels), f).shape
            elif len(s) == 2:
                s = (len(channels),) + s
            else:
                raise ValueError(f"TIFF folder: {f} has shape {s}; a per-channel file must be H x W")
            shape, dtype = shape or s, dtype or d
            if s != shape:
                raise ValueError(f"TIFF folder: {f} has crop shape {s}, other cells have {shape}")
            if d != dtype:
                raise ValueError(f"TIFF folder: {f} has dtype {d}, other cells have {dtype}")
    if dtype not in (np.dtype("uint8"), np.dtype("uint16"), np.dtype("float32")):
        raise ValueError(f"TIFF folder {root}: dtype {dtype} unsupported; expected uint8, uint16 or float32")
    out_dtype = np.uint16 if dtype == np.uint8 else dtype
    chunk_cells = int(chunk_cells)

    def chunks():
        for start in range(0, len(cells), chunk_cells):
            part = cells[start:start + chunk_cells]
            images = np.empty((len(part),) + shape, dtype=out_dtype)
            for i, cell in enumerate(part):
                if len(cell.files) == 1:
                    images[i] = _to_chw(_read(cell.files[0]), len(channels), cell.files[0])
                else:
                    for c, f in enumerate(cell.files):
                        images[i, c] = _to_chw(_read(f), 1, f)[0]
            meta = pd.DataFrame({
                "Metadata_Split": [c.split for c in part],
                "Metadata_Label": [names.index(c.label_name) for c in part],
                "Metadata_LabelName": [c.label_name for c in part],
                "Metadata_File": [c.name for c in part],
            })
            yield Crops(images, meta)

    return ChunkedCrops(chunks, n_crops=len(cells), info={"source": str(root), "classes": names})
