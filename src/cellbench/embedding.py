"""Embedding new crops with a registered feature extractor (``models:/<name>/<version>``): the
``embed`` section, the resolution of the model URI to one registry version (for lineage), and the
feature table of the crops (``Metadata_`` columns, then the model's features)."""

from __future__ import annotations

import dataclasses
import re
from typing import NamedTuple

import numpy as np
import pandas as pd

from cellbench.config import Config, ConfigError, positive
from cellbench.ingest.sources import IngestionConfig
from cellbench.reporting.montage import MontageConfig

URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+|latest)|@(?P<alias>[\w-]+))$")


@dataclasses.dataclass(frozen=True)
class EmbedConfig(Config):
    """``embed``: the registered model (``models:/<name>/<version>``, ``models:/<name>/latest`` or
    ``models:/<name>@<alias>``), the crops per ``predict`` call, and the crops to embed (any source
    the ingestion pipeline reads, with its montage)."""

    model: str
    batch_size: int
    ingestion: IngestionConfig
    montage: MontageConfig

    def check(self, path: str) -> None:
        positive(path, batch_size=self.batch_size)
        check_model_uri(path, self.model)


def check_model_uri(path: str, uri: str) -> None:
    """A ``ConfigError`` naming ``<path>.model`` unless ``uri`` is a registered model URI."""
    if not URI.match(uri):
        raise ConfigError(f"{path}.model: {uri!r} is not a registered model URI; expected "
                          "models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>")


class ModelVersion(NamedTuple):
    """The registry version a model URI resolves to."""

    name: str
    version: str
    run_id: str
    source: str


def resolve(uri: str, client) -> ModelVersion:
    """The one registered version ``uri`` names in ``client``'s registry; an error naming the URI
    and what the registry holds when there is none."""
    match = URI.match(uri)
    if not match:
        raise ValueError(f"embed.model: {uri!r} is not a registered model URI (models:/<name>/<version>)")
    name = match["name"]
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception as exc:  # an unreachable store
        raise ValueError(f"embed.model: cannot read the model registry for {uri!r} ({exc})") from exc
    if not versions:
        known = sorted({m.name for m in client.search_registered_models()})
        raise ValueError(f"embed.model: no registered model named {name!r} (URI {uri!r}); the registry holds {known}")
    if match["alias"]:
        try:
            v = client.get_model_version_by_alias(name, match["alias"])
        except Exception as exc:
            raise ValueError(f"embed.model: model {name!r} has no alias {match['alias']!r} (URI {uri!r})") from exc
    elif match["version"] == "latest":
        v = max(versions, key=lambda m: int(m.version))
    else:
        found = [m for m in versions if str(m.version) == match["version"]]
        if not found:
            raise ValueError(f"embed.model: model {name!r} has no version {match['version']} (URI {uri!r}); its "
                             f"versions are {sorted(int(m.version) for m in versions)}")
        v = found[0]
    return ModelVersion(name, str(v.version), v.run_id, v.source)


def embed_table(metadata: pd.DataFrame, batches, predict) -> pd.DataFrame:
    """``metadata`` beside the concatenated ``predict(batch)`` tables of the crop ``batches`` (float32)."""
    parts = [pd.DataFrame(predict(np.asarray(batch, dtype=np.float32))) for batch in batches]
    features = pd.concat(parts, ignore_index=True)
    if len(features) != len(metadata):
        raise ValueError(f"embed: the model returned {len(features)} rows for {len(metadata)} crops")
    clash = [c for c in features.columns if str(c).startswith("Metadata_")]
    if clash:
        raise ValueError(f"embed: the model's output column {clash[0]!r} looks like metadata")
    return pd.concat([metadata.reset_index(drop=True), features.astype(np.float64)], axis=1)
