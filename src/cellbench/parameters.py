"""The schema of every parameter section, checked before any node does work.

``SECTIONS`` maps each top-level key of ``conf/*/parameters*.yml`` to its typed configuration;
:func:`validate_parameters` builds them all from a run's merged parameters (``--env`` and
``--params`` included), so a misspelt or unknown key anywhere stops the run before it starts, with
an error naming the full parameter path (``cellbench.hooks.ValidateParameters`` calls it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from cellbench.benchmark import EvaluationConfig
from cellbench.config import Config, ConfigError
from cellbench.adaptation.online import AdaptConfig, CodaModelConfig
from cellbench.embedding import EmbedConfig
from cellbench.exploration import ExplorationConfig
from cellbench.ingest.sources import IngestionConfig
from cellbench.profiling.summarize import SummaryConfig, WellsConfig
from cellbench.profiling.variants import ProfilingConfig
from cellbench.reporting.montage import MontageConfig
from cellbench.reporting.vae import VAEFiguresConfig
from cellbench.representations.coda import CodaConfig
from cellbench.representations.deeploc import DeepLocConfig
from cellbench.representations.pci import AutoencoderConfig, PCIConfig
from cellbench.representations.texture import ChannelTextureConfig, TextureConfig
from cellbench.representations.vae import VAEConfig
from cellbench.representations.vgg16 import VGG16Config
from cellbench.representations.weak import WeakConfig


@dataclasses.dataclass(frozen=True)
class RepresentationConfig(Config):
    """``representation``: one section per representation of the COOS benchmark."""

    texture: TextureConfig
    deeploc: DeepLocConfig
    pci: PCIConfig
    autoencoder: AutoencoderConfig
    vgg16: VGG16Config


@dataclasses.dataclass(frozen=True)
class TableConfig(Config):
    """``treatments.table``: the title and the ``{column: [summary, variant]}`` of the Markdown table."""

    title: str
    columns: dict


@dataclasses.dataclass(frozen=True)
class TreatmentsConfig(Config):
    """``treatments``: the simulated treatment screen and its feature sets."""

    ingestion: IngestionConfig
    montage: MontageConfig
    texture: ChannelTextureConfig
    weak: Mapping[str, WeakConfig]
    vae: Mapping[str, VAEConfig]
    wells: WellsConfig
    profiling: ProfilingConfig
    summaries: Mapping[str, SummaryConfig]
    table: TableConfig
    vae_figures: VAEFiguresConfig


@dataclasses.dataclass(frozen=True)
class ExplorationRepresentations(Config):
    """``exploration.representation``: the representations explored on the protein library."""

    texture: TextureConfig
    deeploc: DeepLocConfig
    pci: PCIConfig
    autoencoder: AutoencoderConfig


@dataclasses.dataclass(frozen=True)
class ExplorationSection(Config):
    """``exploration``: the simulated protein library, its representations, the layer of each
    that the figures show, and the analysis settings."""

    ingestion: IngestionConfig
    montage: MontageConfig
    representation: ExplorationRepresentations
    layers: dict
    analysis: ExplorationConfig

    def check(self, path: str) -> None:
        names = [f.name for f in dataclasses.fields(ExplorationRepresentations)]
        unknown = [k for k in self.layers if k not in names]
        if unknown:
            raise ConfigError(f"{path}.layers.{unknown[0]}: unknown representation; expected one layer for each of {names}")
        missing = [k for k in names if k not in self.layers]
        if missing:
            raise ConfigError(f"{path}.layers.{missing[0]}: missing; expected one layer for each of {names}")


SECTIONS: dict[str, type[Config]] = {
    "ingestion": IngestionConfig,
    "representation": RepresentationConfig,
    "evaluation": EvaluationConfig,
    "profiling": ProfilingConfig,
    "treatments": TreatmentsConfig,
    "domain_adaptation": CodaConfig,
    "exploration": ExplorationSection,
    "embed": EmbedConfig,
    "coda_model": CodaModelConfig,
    "adapt": AdaptConfig,
}


def validate_parameters(params: Mapping[str, Any]) -> dict[str, Config]:
    """``{section: configuration}`` of every section present; an unknown top-level key or any bad
    value raises :class:`ConfigError` naming its path."""
    unknown = [k for k in params if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown parameter section; known sections {sorted(SECTIONS)}")
    return {k: SECTIONS[k].from_params(v, k) for k, v in params.items()}


__all__ = ["SECTIONS", "ConfigError", "ExplorationSection", "RepresentationConfig", "TableConfig", "TreatmentsConfig",
           "validate_parameters"]
