"""Folders of fields of view (one TIFF per channel) to single-cell crops.

File names are matched with a regular expression whose named groups say which field and which
channel a file is: ``image`` (required), ``channel`` (required), and optionally ``plate``, ``well``,
``site`` (carried into the metadata). The default fits CellProfiler's ExampleHuman
(``AS_09125_050116030001_D03f00d0.tif``: field ``..._D03f00``, channel ``0``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from cellbench.crops import ChunkedCrops, rechunk

from .segment import field_to_crops, illumination_function
from .tiff import TIFF_SUFFIXES, _read

log = logging.getLogger(__name__)
DEFAULT_PATTERN = r"(?P<image>.+)d(?P<channel>\d+)$"


def scan_fields(root: str | Path, pattern: str, channels: list[str]) -> list[dict]:
    """Fields found under ``root``: dicts with ``image``, optional plate/well/site and ``files`` by channel."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"fields of view: {root} is not a directory")
    regex = re.compile(pattern)
    missing_groups = {"image", "channel"} - set(regex.groupindex)
    if missing_groups:
        raise ValueError(f"fields of view: pattern {pattern!r} lacks named group(s) {sorted(missing_groups)}")
    fields: dict[str, dict] = {}
    for f in sorted(root.rglob("*")):
        if f.suffix.lower() not in TIFF_SUFFIXES:
            continue
        m = regex.match(f.stem)
        if not m or m["channel"] not in channels:
            continue
        entry = fields.setdefault(m["image"], {"image": m["image"], "files": {},
                                              **{k: m[k] for k in ("plate", "well", "site") if k in regex.groupindex}})
        entry["files"][m["channel"]] = f
    if not fields:
        raise ValueError(f"fields of view: no TIFF under {root} matches {pattern!r} with a channel in {channels}")
    for entry in fields.values():
        absent = [c for c in channels if c not in entry["files"]]
        if absent:
            raise ValueError(f"fields of view: field {entry['image']!r} under {root} lacks channel(s) {absent}")
    return list(fields.values())


def _load_field(entry: dict, channels: list[str]) -> np.ndarray:
    planes = [_read(entry["files"][c]) for c in channels]
    shapes = {p.shape for p in planes}
    if len(shapes) != 1 or planes[0].ndim != 2:
        raise ValueError(f"fields of view: channels of field {entry['image']!r} must be 2-D and equal in shape, "
                         f"got {[p.shape for p in planes]}")
    return np.stack(planes)


def read_fields(root: str | Path, channels: list[str], nucleus_channel: str, pattern: str = DEFAULT_PATTERN,
                crop_size: int = 64, min_cells: int = 1, illumination: dict | None = None,
                segmentation: dict | None = None, chunk_cells: int = 2048) -> ChunkedCrops:
    """Crops of every nucleus in every field under ``root`` (channels in the order of ``channels``).

    ``illumination`` (e.g. ``{"downscale": 4, "median_size": 24}``) turns on per-plate illumination
    correction (plate = the ``plate`` group, else all fields); ``segmentation`` is passed to
    :func:`cellbench.ingest.segment_nuclei`.
    """
    channels = [str(c) for c in channels]
    if str(nucleus_channel) not in channels:
        raise ValueError(f"fields of view: nucleus_channel {nucleus_channel!r} not in channels {channels}")
    nuc = channels.index(str(nucleus_channel))
    fields = scan_fields(root, pattern, channels)
    seg = dict(segmentation or {})

    def illum_functions() -> dict:
        if not illumination:
            return {}
        by_plate: dict = {}
        for entry in fields:
            by_plate.setdefault(entry.get("plate"), []).append(entry)
        out = {}
        for plate, entries in by_plate.items():
            stack = np.stack([_load_field(e, channels) for e in entries])  # N x C x H x W
            out[plate] = np.stack([illumination_function(stack[:, c], **illumination) for c in range(len(channels))])
        return out

    report: list[dict] = []  # one row per field: nuclei, separability, covered, verdict

    def pieces():
        report.clear()
        illum = illum_functions()
        for entry in fields:
            crops, meta = field_to_crops(_load_field(entry, channels), nuc, int(crop_size), int(min_cells),
                                         illum.get(entry.get("plate")), **seg)
            q = meta.attrs.get("quality", {})
            report.append({"image": entry["image"], **q})
            if q.get("verdict") != "ok":
                log.warning("field %s (%s): %s - %d objects, Otsu separability %.2f (noise ~0.64), %.0f %% of the "
                            "field covered; check the nucleus channel %r and the segmentation settings",
                            entry["image"], entry["files"][str(nucleus_channel)], q.get("verdict"),
                            q.get("nuclei", 0), q.get("separability", 0.0), 100 * q.get("covered", 0.0),
                            nucleus_channel)
            if not len(meta):
                continue
            meta.insert(0, "Metadata_Image", entry["image"])
            for k in ("plate", "well", "site"):
                if k in entry:
                    meta.insert(1, f"Metadata_{k.capitalize()}", entry[k])
            yield crops, meta

    def chunks():
        return rechunk(pieces(), chunk_cells)

    return ChunkedCrops(chunks, info={"source": str(root), "fields": len(fields), "nuclei_report": report})
