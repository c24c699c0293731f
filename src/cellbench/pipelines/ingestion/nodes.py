"""Ingestion nodes: validate the section, call ``cellbench.ingest.sources`` / the montage."""

from __future__ import annotations

from cellbench.crops import ChunkedCrops, Crops
from cellbench.ingest.sources import IngestionConfig, ingest
from cellbench.reporting.montage import MontageConfig
from cellbench.reporting.montage import qc_montage as montage


def ingest_crops(ingestion: dict) -> ChunkedCrops:
    """Crops from the source named by ``ingestion.source`` (conf environments choose it)."""
    return ingest(IngestionConfig.from_params(ingestion, "ingestion"))


def qc_montage(crops: Crops, params: dict):
    """Example crops per class (rows) and split (columns)."""
    return montage(crops, MontageConfig.from_params(params, "ingestion.montage"))
