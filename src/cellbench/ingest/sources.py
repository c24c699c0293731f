"""Where crops come from, by name: the simulator (a COOS-7, BBBC021-like or JUMP-like design),
COOS-7 HDF5 files, per-cell TIFF folders or fields of view. ``IngestionConfig`` is a pipeline's
``ingestion`` section; ``ingest(config)`` streams the crops of its ``source``."""

from __future__ import annotations

import dataclasses

from cellbench.config import Config, ConfigError, check_arguments, non_negative, one_of, positive
from cellbench.crops import ChunkedCrops

SOURCES = ("simulation", "coos7", "tiff", "fields")


def simulators() -> dict:
    from cellbench.simulate import CoosDesign, simulate_coos7
    from cellbench.simulate.library import LibraryDesign, simulate_library
    from cellbench.simulate.treatments import TreatmentDesign, simulate_treatments

    return {"coos7": (CoosDesign, simulate_coos7),
            "bbbc021": (TreatmentDesign, simulate_treatments),  # treatment assay, one source, weekly batches
            "jump": (TreatmentDesign, simulate_treatments),  # several sources (labs, microscopes)
            "protein_library": (LibraryDesign, simulate_library)}  # seed 002's exploration (many proteins, cell lines)


def simulation(params: dict, path: str = "ingestion.simulation"):
    """``(design, simulate)``: the simulator's design dataclass for ``params`` (its ``design`` key
    names it) and the function that streams its crops; unknown keys and bad values are errors
    naming ``path``."""
    params = dict(params)
    if "design" not in params:  # a misspelt design key would silently select the COOS-7 default
        import difflib

        typo = difflib.get_close_matches("design", [str(k) for k in params], 1, 0.6)
        if typo:
            raise ConfigError(f"{path}.{typo[0]}: unknown parameter; did you mean design?")
    name = params.get("design", "coos7")
    sims = simulators()
    if name not in sims:
        raise ConfigError(f"{path}.design: unknown design {name!r}; known {sorted(sims)}")
    design_cls, simulate = sims[name]
    checked = check_arguments({k: v for k, v in params.items() if k != "design"}, design_cls, path)
    try:
        return design_cls.from_params({**checked, "design": name}), simulate
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


@dataclasses.dataclass(frozen=True)
class Coos7Source(Config):
    """``ingestion.coos7``: a directory of ``COOS7_v1.1_<split>.hdf5`` files."""

    path: str | None
    chunk_cells: int
    splits: tuple[str, ...] | None
    version: str

    def check(self, path: str) -> None:
        positive(path, chunk_cells=self.chunk_cells)


@dataclasses.dataclass(frozen=True)
class TiffSource(Config):
    """``ingestion.tiff``: ``<split>/<class>/<cell>.tif`` (or one file per channel)."""

    path: str | None
    channels: tuple[str, ...]
    class_names: tuple[str, ...] | None
    chunk_cells: int

    def check(self, path: str) -> None:
        positive(path, chunk_cells=self.chunk_cells)


@dataclasses.dataclass(frozen=True)
class FieldsSource(Config):
    """``ingestion.fields``: fields of view, one TIFF per channel; nuclei segmented and cropped."""

    path: str | None
    pattern: str
    channels: tuple[str, ...]
    nucleus_channel: str
    crop_size: int
    min_cells: int
    illumination: dict | None
    segmentation: dict | None
    chunk_cells: int

    def check(self, path: str) -> None:
        from .segment import illumination_function, segment_nuclei

        positive(path, crop_size=self.crop_size, chunk_cells=self.chunk_cells)
        if self.segmentation is not None:
            seg = check_arguments(self.segmentation, segment_nuclei, f"{path}.segmentation", exclude=("image",))
            non_negative(f"{path}.segmentation", **{k: seg[k] for k in ("sigma", "min_area") if k in seg})
            if seg.get("min_distance", 1) < 1:
                raise ConfigError(f"{path}.segmentation.min_distance: must be >= 1, got {seg['min_distance']}")
        if self.illumination is not None:
            check_arguments(self.illumination, illumination_function, f"{path}.illumination", exclude=("images",))
        if self.nucleus_channel not in self.channels:
            raise ConfigError(f"{path}.nucleus_channel: {self.nucleus_channel!r} is not one of channels "
                              f"{list(self.channels)}")


def _absent():
    return dataclasses.field(metadata={"default": None})


@dataclasses.dataclass(frozen=True)
class IngestionConfig(Config):
    """``<pipeline>.ingestion``: ``source`` and the settings of that source (sources a pipeline
    never reads may be left out)."""

    source: str
    simulation: dict | None = _absent()
    coos7: Coos7Source | None = _absent()
    tiff: TiffSource | None = _absent()
    fields: FieldsSource | None = _absent()
    montage: dict | None = _absent()  # validated by the montage node's MontageConfig

    def check(self, path: str) -> None:
        one_of(path, "source", self.source, SOURCES)
        if getattr(self, self.source) is None:
            raise ConfigError(f"{path}.{self.source}: missing; source {self.source!r} needs its settings")
        if self.simulation is not None:
            simulation(self.simulation, f"{path}.simulation")
        if self.montage is not None:
            from cellbench.reporting.montage import MontageConfig

            MontageConfig.from_params(self.montage, f"{path}.montage")


def _require_path(settings, key: str) -> str:
    if not settings.path:
        raise ConfigError(f"ingestion.{key}.path: set it to the data directory, e.g. "
                          f'kedro run --params "ingestion.{key}.path=/data/..."')
    return str(settings.path)


def ingest(config: IngestionConfig) -> ChunkedCrops:
    """Crops from ``config.source`` (streamed chunk by chunk into the crop store by its dataset)."""
    from . import read_coos7, read_fields, read_tiff_folder

    if config.source == "simulation":
        design, simulate = simulation(config.simulation)
        return simulate(design)
    if config.source == "coos7":
        c = config.coos7
        return read_coos7(_require_path(c, "coos7"), splits=list(c.splits) if c.splits else None,
                          chunk_cells=c.chunk_cells, version=c.version)
    if config.source == "tiff":
        t = config.tiff
        return read_tiff_folder(_require_path(t, "tiff"), channels=list(t.channels),
                                class_names=list(t.class_names) if t.class_names else None, chunk_cells=t.chunk_cells)
    f = config.fields
    return read_fields(_require_path(f, "fields"), channels=list(f.channels), nucleus_channel=f.nucleus_channel,
                       pattern=f.pattern, crop_size=f.crop_size, min_cells=f.min_cells, illumination=f.illumination,
                       segmentation=f.segmentation, chunk_cells=f.chunk_cells)
