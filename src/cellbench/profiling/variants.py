"""Every profiling recipe of a configuration on one table of well profiles: treatment profiles,
NSC / NSCB 1-NN MoA matching, MoA retrieval mAP (copairs conventions), well-level replicate /
group accuracy, and the batch-removal / biology scores of the JUMP batch-correction benchmark
(``metrics.integration``: overall = 0.4 batch + 0.6 biology, per batch key), per variant.
``ProfilingConfig`` is the ``profiling`` section."""

from __future__ import annotations

import dataclasses
import logging
from typing import NamedTuple

import numpy as np
import pandas as pd

from cellbench.config import Config, ConfigError, positive
from cellbench.metadata import feature_columns, require_columns
from cellbench.metrics.integration import integration_scores
from cellbench.metrics.retrieval import average_precision, mean_average_precision, nsc_nscb, well_matching

from .recipe import apply_recipe, check_recipe

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class MapConfig(Config):
    """``profiling.map``: the permutation null of mAP (size, significance threshold, seed) and the
    folder that keeps its draws between runs (``null_cache``; null = draw every time)."""

    null_size: int
    threshold: float
    seed: int
    null_cache: str | None

    def check(self, path: str) -> None:
        positive(path, null_size=self.null_size, threshold=self.threshold)


@dataclasses.dataclass(frozen=True)
class IntegrationConfig(Config):
    """``profiling.integration``: batch-removal / biology scores of the treated wells (MoA labels),
    once per batch key in ``batches`` (e.g. ``[Metadata_Source, Metadata_Batch]``); ``k`` neighbours
    of the graph scores; ``seed`` of k-means. ``batches: []`` turns the scores off."""

    batches: tuple[str, ...]
    k: int
    seed: int

    def check(self, path: str) -> None:
        positive(path, k=self.k)


@dataclasses.dataclass(frozen=True)
class ProfilingColumns(Config):
    """``profiling.columns``: the metadata columns of the MoA protocol."""

    moa: str
    compound: str
    batch: str
    plate: str
    treatment: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ProfilingConfig(Config):
    """``profiling`` (and ``treatments.profiling``): control wells, columns, mAP and the recipes."""

    control: str
    columns: ProfilingColumns
    map: MapConfig
    integration: IntegrationConfig
    variants: dict
    metric_prefix: str

    def check(self, path: str) -> None:
        if not self.variants:
            raise ConfigError(f"{path}.variants: no recipe given")
        for name, recipe in self.variants.items():
            check_recipe(recipe, f"{path}.variants.{name}")


class VariantResults(NamedTuple):
    profiles: dict[str, pd.DataFrame]
    table: pd.DataFrame
    per_treatment: pd.DataFrame
    metrics: dict


def moa_map(treatments: pd.DataFrame, feats: np.ndarray, config: MapConfig, moa: str, compound: str) -> dict:
    """MoA retrieval mAP over treatments: positives share the MoA but not the compound."""
    ap = average_precision(treatments, feats, pos_sameby=[moa], pos_diffby=[compound], neg_sameby=[], neg_diffby=[moa])
    maps = mean_average_precision(ap, [moa], null_size=config.null_size, threshold=config.threshold, seed=config.seed,
                                  cache_dir=config.null_cache)
    return {"map_moa": float(maps["mean_average_precision"].mean()),
            "map_moa_significant": int(maps["below_corrected_p"].sum()), "map_moa_n": len(maps)}


def batch_scores(normalised: pd.DataFrame, config: ProfilingConfig, map_moa: float) -> dict:
    """Integration scores of the treated wells with a MoA (controls left out), per batch key:
    ``<score>`` for the first key and, when there are several keys, ``<score>@<key without
    Metadata_>`` for each of them."""
    integ, moa = config.integration, config.columns.moa
    if not integ.batches:
        return {}
    require_columns(normalised, list(integ.batches), "profiling.integration.batches")
    treated = normalised[~normalised.index.isin(normalised.query(config.control).index) & normalised[moa].notna()]
    X = treated[feature_columns(treated)].to_numpy(dtype=np.float64)
    out, keyed = {}, {}
    for i, key in enumerate(integ.batches):
        scores = integration_scores(X, treated[key].to_numpy(), treated[moa].to_numpy(), k=integ.k, seed=integ.seed,
                                    extra_bio={"map_moa": map_moa})
        scores.pop("map_moa")
        if i == 0:
            out.update(scores)
        keyed.update({f"{name}@{key.removeprefix('Metadata_')}": v for name, v in scores.items()})
    return {**out, **keyed} if len(integ.batches) > 1 else out


def profile_variants(wells: pd.DataFrame, config: ProfilingConfig) -> VariantResults:
    """Every recipe of ``config.variants`` on ``wells``; MLflow metrics ``<metric_prefix>/<variant>/<metric>``."""
    cols = config.columns
    moa, compound, batch, plate, treatment = cols.moa, cols.compound, cols.batch, cols.plate, list(cols.treatment)
    control = config.control
    profiles, rows, per_treatment = {}, [], []
    for name, recipe in config.variants.items():
        normalised, treatments = apply_recipe(wells, recipe, control=control)
        treatments = treatments[treatments[moa].notna()].reset_index(drop=True)
        feats = treatments[feature_columns(treatments)].to_numpy()
        res = nsc_nscb(treatments, feats, moa=moa, compound=compound, batch=batch)
        row = {"variant": name, "description": recipe.get("description", ""), "n_features": feats.shape[1],
               **{k: v for k, v in res.items() if not k.endswith("_table") and k != "nscb_dropped_moas"},
               "nscb_dropped_moas": "; ".join(res["nscb_dropped_moas"])}
        row.update(moa_map(treatments, feats, config.map, moa, compound))
        row.update(well_matching(normalised, control, moa, compound, plate, treatment))
        row.update(batch_scores(normalised, config, row["map_moa"]))
        rows.append(row)
        log.info("profiling variant %s: NSC %.1f %%, NSCB %.1f %%, MoA mAP %.3f%s", name, 100 * row["nsc"],
                 100 * row["nscb"], row["map_moa"], f", batch {row['batch_score']:.3f}, biology {row['bio_score']:.3f}, "
                 f"overall {row['overall']:.3f}" if "overall" in row else "")
        profiles[name] = treatments
        for kind in ("nsc", "nscb"):
            t = res[f"{kind}_table"]
            per_treatment.append(pd.DataFrame({"variant": name, "protocol": kind, "treatment": t["Metadata_Treatment"]
                                               if "Metadata_Treatment" in t else t[compound],
                                               "moa": t[moa], "predicted": t["predicted"], "correct": t["correct"]}))
    scored = ("nsc", "nscb", "map_moa", "batch_score", "bio_score", "overall")
    metrics = {f"{config.metric_prefix}/{r['variant']}/{m.replace('@', '/by_')}": {"value": float(r[m]), "step": 0}
               for r in rows for m in r if m.split("@")[0] in scored}
    return VariantResults(profiles, pd.DataFrame(rows), pd.concat(per_treatment, ignore_index=True), metrics)
