"""Profile summaries: mean + SD per stratum (seed 003) and treatment profiles (seeds 003, 004)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from cellbench.config import Config, one_of

from cellbench.metadata import require_columns

from ._common import resolve_features
from .aggregate import aggregate


def mean_sd_profiles(population_df: pd.DataFrame, strata: list[str], features: list[str] | str = "infer") -> pd.DataFrame:
    """Per stratum the mean and the sample SD (ddof 1) of every feature: ``{f}`` then ``{f}__sd``.

    The mean+SD profile of Lafarge et al. (seed 003) concatenates first and second moments so that
    a treatment that changes the spread of a population, not its centre, is still seen.
    """
    features = resolve_features(population_df, features, "mean_sd_profiles")
    mean = aggregate(population_df, strata=strata, features=features, operation="mean")
    sd = population_df.groupby(list(strata), sort=True, dropna=False)[features].std(ddof=1).reset_index(drop=True)
    sd.columns = [f"{f}__sd" for f in features]
    return pd.concat([mean, sd.fillna(0.0)], axis=1)


def treatment_profiles(profiles: pd.DataFrame, treatment: list[str] = ("Metadata_Compound", "Metadata_Concentration"),
                       features: list[str] | str = "infer", operation: str = "median",
                       carry: list[str] = ("Metadata_MoA",), join: list[str] = ("Metadata_Batch",),
                       exclude: str | None = None) -> pd.DataFrame:
    """One profile per treatment: the median (or mean) of its rows (wells or sites).

    ``carry`` columns must be constant within a treatment (e.g. the MoA) and are kept; ``join``
    columns are summarised as the sorted, comma-joined set of their values (a treatment seen in
    weeks 1 and 3 has batch ``Week1,Week3``, as DeepProfiler writes it); ``Metadata_Count`` is the
    number of rows. ``exclude`` is a query of rows to leave out first (e.g. controls).
    """
    where = "treatment_profiles"
    treatment, carry, join = list(treatment), list(carry), list(join)
    require_columns(profiles, treatment + carry + join, where)
    if exclude:
        profiles = profiles.drop(index=profiles.query(exclude).index)
    if profiles.empty:
        raise ValueError(f"{where}: no rows left to aggregate")
    features = resolve_features(profiles, features, where)
    out = aggregate(profiles, strata=treatment, features=features, operation=operation)
    grouped = profiles.groupby(treatment, sort=True, dropna=False)
    for col in carry:
        n_values = grouped[col].nunique(dropna=False)
        if (n_values > 1).any():
            bad = n_values[n_values > 1].index[0]
            raise ValueError(f"{where}: column {col!r} is not constant within treatment {bad}")
        out.insert(len(treatment), col, grouped[col].first().to_numpy())
    for col in join:
        out.insert(len(treatment), col, grouped[col].agg(lambda v: ",".join(sorted(set(map(str, v))))).to_numpy())
    out.insert(len(treatment), "Metadata_Count", grouped.size().to_numpy().astype(np.int64))
    return out


@dataclasses.dataclass(frozen=True)
class WellsConfig(Config):
    """``treatments.wells``: which feature layer (null: the table's only one), the summary
    operation and the well-level metadata kept (``strata``, constant within a well)."""

    layer: str | None
    operation: str
    strata: tuple[str, ...]

    def check(self, path: str) -> None:
        one_of(path, "operation", self.operation, ("mean", "median"))


@dataclasses.dataclass(frozen=True)
class SummaryConfig(Config):
    """``treatments.summaries.<name>``: ``sd: true`` adds each feature's SD (seed 003's Mean+S.D.)."""

    sd: bool


def well_profiles(features: dict, config: WellsConfig, summary: SummaryConfig) -> pd.DataFrame:
    """Well profiles of one representation's ``{layer: table or loader}``: ``operation`` of each
    feature over a well's cells, or its mean and SD with ``summary.sd``."""
    from .aggregate import aggregate

    layer = config.layer or (next(iter(features)) if len(features) == 1 else None)
    if layer not in features:
        raise ValueError(f"treatments.wells.layer: no feature table {layer!r}; have {sorted(features)}")
    table = features[layer]() if callable(features[layer]) else features[layer]
    if summary.sd:
        return mean_sd_profiles(table, strata=list(config.strata))
    return aggregate(table, strata=list(config.strata), operation=config.operation, compute_object_count=False)
