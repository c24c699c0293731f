"""Real data to the crop store and to feature tables: COOS-7 HDF5, TIFF folders, fields of view,
BBBC021, CellProfiler and JUMP tables. Every reader yields the ``Metadata_`` convention."""

from .coos7 import COOS7_FILE_SPLITS, coos7_filename, inspect_coos7_file, read_coos7
from .fields import read_fields
from .segment import crop_cells, field_to_crops, illumination_function, nucleus_table, segment_nuclei
from .tables import (
    bbbc021_metadata,
    bbbc021_wells,
    cellprofiler_table,
    feature_columns,
    jump_load_data,
    ljosa_profiles,
    metadata_columns,
    read_bbbc021_moa,
    read_table,
)
from .tiff import read_tiff_folder

__all__ = [
    "COOS7_FILE_SPLITS", "bbbc021_metadata", "bbbc021_wells", "cellprofiler_table", "coos7_filename",
    "crop_cells", "feature_columns", "field_to_crops", "illumination_function", "inspect_coos7_file",
    "jump_load_data", "ljosa_profiles", "metadata_columns", "nucleus_table", "read_bbbc021_moa",
    "read_coos7", "read_fields", "read_table", "read_tiff_folder", "segment_nuclei",
]
