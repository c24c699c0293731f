"""Published tables to the ``Metadata_`` convention: BBBC021, CellProfiler per-object tables, JUMP load_data.

Every function accepts a DataFrame or a path (``.csv``, ``.csv.gz``, ``.parquet``), like pycytominer,
and names the file and the column in its errors. Feature tables follow pycytominer / JUMP: metadata
columns start with ``Metadata_``, every other column is a numeric feature (:func:`feature_columns`).
"""

from __future__ import annotations

import logging

import re
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from cellbench.metadata import feature_columns, metadata_columns, require_columns  # noqa: F401  (re-exported)

TableLike = pd.DataFrame | str | Path

BBBC021_IMAGE_COLUMNS = (
    "TableNumber", "ImageNumber", "Image_FileName_DAPI", "Image_PathName_DAPI", "Image_FileName_Tubulin",
    "Image_PathName_Tubulin", "Image_FileName_Actin", "Image_PathName_Actin", "Image_Metadata_Plate_DAPI",
    "Image_Metadata_Well_DAPI", "Replicate", "Image_Metadata_Compound", "Image_Metadata_Concentration",
)
BBBC021_MOA_COLUMNS = ("compound", "concentration", "moa")
BBBC021_CHANNELS = ("DAPI", "Tubulin", "Actin")
BBBC021_CONTROL = "DMSO"

log = logging.getLogger(__name__)

#: CellProfiler measurements that describe where or which an object is, not what it looks like
#: (pycytominer treats them as features by prefix, issues #510, #122, #81; cellbench does not)
CP_METADATA_PATTERN = re.compile(
    r"^(ImageNumber|ObjectNumber|TableNumber|Number_Object_Number|Parent_.*|Children_.*_Count|Location_.*"
    r"|ObjectNumber_.*)$"
)
CP_COMPARTMENTS = ("Cells", "Cytoplasm", "Nuclei")


def read_table(table: TableLike, name: str = "table") -> tuple[pd.DataFrame, str]:
    """``(DataFrame, where)``: the table itself or read from a CSV / Parquet path; ``where`` names it."""
    if isinstance(table, pd.DataFrame):
        return table, name
    path = Path(table)
    if not path.is_file():
        raise ValueError(f"{name}: file not found: {path}")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path), str(path)
        return pd.read_csv(path), str(path)
    except Exception as exc:
        raise ValueError(f"{name}: could not read {path} as a table ({type(exc).__name__}: {exc})") from exc


def _concentration_key(values) -> np.ndarray:
    """Concentrations as floats rounded to 9 significant digits, so '3' and '3.000000' join."""
    return np.array([float(f"{float(v):.9g}") for v in values])


# -- BBBC021 ----------------------------------------------------------------------------------------
def read_bbbc021_moa(moa: TableLike) -> pd.DataFrame:
    """``BBBC021_v1_moa.csv`` as ``compound, concentration (float, uM), moa``; both published formats."""
    df, where = read_table(moa, "BBBC021 moa table")
    require_columns(df, BBBC021_MOA_COLUMNS, where)
    out = df[list(BBBC021_MOA_COLUMNS)].copy()
    out["compound"] = out["compound"].astype(str).str.strip().str.strip('"')
    out["moa"] = out["moa"].astype(str).str.strip().str.strip('"')
    try:
        out["concentration"] = _concentration_key(out["concentration"])
    except ValueError as exc:
        raise ValueError(f"{where}: column 'concentration' must be numbers ({exc})") from exc
    dup = out.duplicated(["compound", "concentration"])
    if dup.any():
        raise ValueError(f"{where}: duplicated (compound, concentration) rows: "
                         f"{out.loc[dup, ['compound', 'concentration']].to_records(index=False).tolist()[:5]}")
    return out.reset_index(drop=True)


def bbbc021_metadata(image: TableLike, moa: TableLike, root: str | Path | None = None) -> pd.DataFrame:
    """One row per BBBC021 image (site) in the ``Metadata_`` convention.

    Columns: ``Metadata_Plate`` (e.g. ``Week4_27481``), ``Metadata_Well``, ``Metadata_Site`` (from the
    file name ``{Well}_s{site}_w...``), ``Metadata_Batch`` (the week, e.g. ``Week4``),
    ``Metadata_Replicate``, ``Metadata_Compound``, ``Metadata_Concentration`` (float, uM),
    ``Metadata_Treatment`` (``compound@concentration``), ``Metadata_MoA`` (missing for compounds
    without a label), ``Metadata_Control`` (DMSO), ``Metadata_ImageNumber`` and, per channel,
    ``Metadata_FileName_{DAPI,Tubulin,Actin}`` plus ``Metadata_Path_{...}`` resolved under ``root``.
    """
    df, where = read_table(image, "BBBC021 image table")
    require_columns(df, BBBC021_IMAGE_COLUMNS, where)
    moa_df = read_bbbc021_moa(moa)
    site = df["Image_FileName_DAPI"].astype(str).str.extract(r"_s(\d+)_", expand=False)
    if site.isna().any():
        bad = df.loc[site.isna(), "Image_FileName_DAPI"].iloc[0]
        raise ValueError(f"{where}: column 'Image_FileName_DAPI' value {bad!r} lacks the site tag '_s<n>_'")
    plate = df["Image_Metadata_Plate_DAPI"].astype(str)
    out = pd.DataFrame({
        "Metadata_Plate": plate,
        "Metadata_Well": df["Image_Metadata_Well_DAPI"].astype(str),
        "Metadata_Site": site.astype(np.int64),
        "Metadata_Batch": plate.str.split("_").str[0],
        "Metadata_Replicate": df["Replicate"].astype(np.int64),
        "Metadata_Compound": df["Image_Metadata_Compound"].astype(str),
        "Metadata_Concentration": _concentration_key(df["Image_Metadata_Concentration"]),
        "Metadata_ImageNumber": df["ImageNumber"].astype(np.int64),
    })
    labels = moa_df.rename(columns={"compound": "Metadata_Compound", "concentration": "Metadata_Concentration",
                                    "moa": "Metadata_MoA"})
    out = out.merge(labels, on=["Metadata_Compound", "Metadata_Concentration"], how="left", validate="many_to_one")
    out["Metadata_Control"] = out["Metadata_Compound"] == BBBC021_CONTROL
    out["Metadata_Treatment"] = out["Metadata_Compound"] + "@" + out["Metadata_Concentration"].map("{:g}".format)
    for ch in BBBC021_CHANNELS:
        out[f"Metadata_FileName_{ch}"] = df[f"Image_FileName_{ch}"].astype(str).to_numpy()
        rel = df[f"Image_PathName_{ch}"].astype(str) + "/" + df[f"Image_FileName_{ch}"].astype(str)
        out[f"Metadata_Path_{ch}"] = (rel if root is None else
                                      rel.map(lambda r: str(Path(root) / PurePosixPath(r)))).to_numpy()
    return out


def bbbc021_wells(sites: pd.DataFrame) -> pd.DataFrame:
    """One row per plate and well: the site table without its per-site columns."""
    per_site = ["Metadata_Site", "Metadata_ImageNumber"] + [c for c in sites.columns
                                                            if c.startswith(("Metadata_FileName_", "Metadata_Path_"))]
    wells = sites.drop(columns=per_site).drop_duplicates(["Metadata_Plate", "Metadata_Well"])
    return wells.sort_values(["Metadata_Plate", "Metadata_Well"]).reset_index(drop=True)


def ljosa_profiles(profiles: TableLike, image: TableLike, moa: TableLike) -> pd.DataFrame:
    """The Ljosa et al. 2013 per-well mean CellProfiler profiles joined to the BBBC021 metadata.

    ``profiles`` has ``Image_Metadata_Plate``, ``Image_Metadata_Well`` and the 516 ``Cells_`` /
    ``Cytoplasm_`` / ``Nuclei_`` features; every well must be found in the image table.
    """
    df, where = read_table(profiles, "Ljosa 2013 per-well profiles")
    require_columns(df, ["Image_Metadata_Plate", "Image_Metadata_Well"], where)
    wells = bbbc021_wells(bbbc021_metadata(image, moa))
    feats = [c for c in df.columns if c not in ("Image_Metadata_Plate", "Image_Metadata_Well")]
    bad = [c for c in feats if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(f"{where}: feature column(s) {bad[:5]} are not numeric")
    keys = df[["Image_Metadata_Plate", "Image_Metadata_Well"]].astype(str).set_axis(
        ["Metadata_Plate", "Metadata_Well"], axis=1)
    joined = keys.merge(wells, on=["Metadata_Plate", "Metadata_Well"], how="left", validate="one_to_one",
                        indicator=True)
    unmatched = joined["_merge"] != "both"
    if unmatched.any():
        first = joined.loc[unmatched, ["Metadata_Plate", "Metadata_Well"]].iloc[0].tolist()
        raise ValueError(f"{where}: {int(unmatched.sum())} well(s) not in the BBBC021 image table, e.g. {first}")
    meta = joined.drop(columns="_merge")
    return pd.concat([meta.reset_index(drop=True), df[feats].astype(np.float64).reset_index(drop=True)], axis=1).copy()


# -- CellProfiler and JUMP --------------------------------------------------------------------------
def _unparsable(df: pd.DataFrame, col, where: str, unparsable: str) -> bool:
    """A measurement column that is mostly numbers but has values that are not (``#DIV/0!``, ``n/a``
    from a spreadsheet): an error naming the column, the first bad row and value, or, with
    ``unparsable="drop"``, True (the column is dropped with a warning). A column of text only is
    not a measurement (False: it becomes metadata)."""
    values = df[col]
    parsed = pd.to_numeric(values, errors="coerce")
    bad = parsed.isna() & values.notna() & values.astype(str).str.strip().ne("")
    if not bad.any() or parsed.notna().sum() == 0:
        return False
    row = bad.idxmax()
    if unparsable == "drop":
        log.warning("%s: column %r has %d value(s) that are not numbers (first: row %s, %r); dropped", where, col,
                    int(bad.sum()), row, values[row])
        return True
    raise ValueError(f"{where}: measurement column {col!r} has {int(bad.sum())} value(s) that are not numbers "
                     f"(first: row {row}, {values[row]!r}); fix the table, or pass unparsable='drop' to drop "
                     "such columns")


def cellprofiler_table(table: TableLike, compartment: str | None = None,
                       metadata: dict[str, object] | None = None, unparsable: str = "error") -> pd.DataFrame:
    """A CellProfiler table (per-object, merged single-cell or well-level) in the ``Metadata_`` convention.

    ``compartment`` prefixes the measurements of a raw per-object table (``AreaShape_Area`` ->
    ``Cells_AreaShape_Area``). Location, parent, object-number, children-count and table/image/object
    number columns become metadata (``Metadata_<Compartment>_<name>``), as do non-numeric and
    ``Image_`` columns; ``metadata`` adds constant columns (e.g. plate, well, site). The remaining
    columns are numeric features, in their original order after the metadata. A measurement with
    values that do not parse as numbers (``#DIV/0!``) is an error naming it, or dropped with
    ``unparsable="drop"``.
    """
    if unparsable not in ("error", "drop"):
        raise ValueError(f"cellprofiler_table: unparsable must be 'error' or 'drop', got {unparsable!r}")
    df, where = read_table(table, "CellProfiler table")
    if df.empty:
        raise ValueError(f"{where}: the table has no rows")
    rename, meta_cols, feats = {}, [], []
    dropped = []
    for col in df.columns:
        name = str(col)
        prefix, _, rest = name.partition("_")
        if name.startswith("Metadata_"):
            new = name
        elif name.startswith("Image_") or name in ("ImageNumber", "TableNumber", "ObjectNumber"):
            new = f"Metadata_{name}"
        else:
            comp, rest = (prefix, rest) if prefix in CP_COMPARTMENTS else (compartment, name)
            if (not CP_METADATA_PATTERN.match(rest) and not pd.api.types.is_numeric_dtype(df[col])
                    and _unparsable(df, col, where, unparsable)):
                dropped.append(col)
                continue
            if CP_METADATA_PATTERN.match(rest) or not pd.api.types.is_numeric_dtype(df[col]):
                new = f"Metadata_{comp}_{rest}" if comp else f"Metadata_{rest}"
            elif comp is None:
                raise ValueError(f"{where}: column {name!r} has no compartment prefix "
                                 f"({', '.join(CP_COMPARTMENTS)}); pass compartment= for a per-object table")
            else:
                rename[name] = f"{comp}_{rest}"
                feats.append(rename[name])
                continue
        rename[name] = new
        meta_cols.append(new)
    out = df.drop(columns=dropped).rename(columns=rename)
    extra = {(k if k.startswith("Metadata_") else f"Metadata_{k}"): v for k, v in (metadata or {}).items()}
    out = pd.concat([pd.DataFrame(extra, index=out.index), out.drop(columns=list(extra), errors="ignore")], axis=1)
    meta_cols = list(extra) + [c for c in meta_cols if c not in extra]
    return out[meta_cols + feats].copy()  # one consolidated block per dtype


def jump_load_data(table: TableLike) -> pd.DataFrame:
    """A JUMP ``load_data`` table: one row per site, ``Metadata_Source/Batch/Plate/Well/Site`` kept and,
    per channel ``X`` of ``FileName_OrigX``, ``Metadata_Path_OrigX`` (and ``Metadata_Path_IllumX``
    where present) joined from ``PathName_`` and ``FileName_``."""
    df, where = read_table(table, "JUMP load_data table")
    require_columns(df, ["Metadata_Plate", "Metadata_Well", "Metadata_Site"], where)
    channels = [c[len("FileName_Orig"):] for c in df.columns if c.startswith("FileName_Orig")]
    if not channels:
        raise ValueError(f"{where}: no 'FileName_Orig<channel>' columns; expected one per channel")
    out = df[metadata_columns(df)].copy()
    for kind in ("Orig", "Illum"):
        for ch in channels:
            fname, pname = f"FileName_{kind}{ch}", f"PathName_{kind}{ch}"
            if fname not in df:
                continue
            require_columns(df, [pname], where)
            out[f"Metadata_Path_{kind}{ch}"] = (df[pname].astype(str).str.rstrip("/") + "/" + df[fname].astype(str))
    return out
