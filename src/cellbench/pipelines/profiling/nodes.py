"""Profiling nodes: unpack parameters, call cellbench.profiling and cellbench.metrics."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from cellbench.metadata import feature_columns
from cellbench.metrics.retrieval import (average_precision, mean_average_precision, nearest_neighbour_matching,
                                        nsc_nscb)
from cellbench.profiling import apply_recipe

log = logging.getLogger(__name__)


def moa_map(treatments: pd.DataFrame, feats: np.ndarray, params: dict, moa: str, compound: str) -> dict:
    """MoA retrieval mAP over treatments: positives share the MoA but not the compound."""
    ap = average_precision(treatments, feats, pos_sameby=[moa], pos_diffby=[compound],
                           neg_sameby=[], neg_diffby=[moa])
    maps = mean_average_precision(ap, [moa], null_size=int(params.get("null_size", 1000)),
                                  threshold=float(params.get("threshold", 0.05)), seed=int(params.get("seed", 0)))
    return {"map_moa": float(maps["mean_average_precision"].mean()),
            "map_moa_significant": int(maps["below_corrected_p"].sum()), "map_moa_n": len(maps)}


def well_matching(wells: pd.DataFrame, control: str, moa: str, compound: str, plate: str,
                  treatment: list[str]) -> dict:
    """Well-level 1-NN (cosine) accuracy of the normalised, non-control well profiles.

    * replicate accuracy: the nearest well on another plate is a replicate (same treatment);
    * group accuracy: the nearest well of another compound has the same MoA.
    Wells with no allowed neighbour are left out of each rate.
    """
    treated = wells.drop(index=wells.query(control).index).reset_index(drop=True)
    missing = [c for c in [plate, *treatment, moa, compound] if c not in treated.columns]
    if missing or treated.empty:
        return {"replicate_accuracy": np.nan, "group_accuracy": np.nan}
    feats = treated[feature_columns(treated)].to_numpy()
    key = treated[treatment].astype(str).agg("@".join, axis=1).rename("_treatment")
    rep = nearest_neighbour_matching(pd.concat([treated[[plate]], key], axis=1), feats, "_treatment", exclude_same=[plate])
    grp = nearest_neighbour_matching(treated[[moa, compound]], feats, moa, exclude_same=[compound])
    return {"replicate_accuracy": float(rep.loc[rep.neighbour >= 0, "correct"].mean()),
            "group_accuracy": float(grp.loc[grp.neighbour >= 0, "correct"].mean())}


def profile_variants(wells: pd.DataFrame, params: dict) -> tuple[dict, pd.DataFrame, pd.DataFrame, dict]:
    """Every recipe in ``params.variants``: treatment profiles, NSC / NSCB and MoA mAP per variant."""
    cols = params.get("columns", {})
    moa, compound, batch = (cols.get("moa", "Metadata_MoA"), cols.get("compound", "Metadata_Compound"),
                            cols.get("batch", "Metadata_Batch"))
    control = params.get("control", "Metadata_Control == True")
    variants = params.get("variants") or {}
    if not variants:
        raise ValueError("profiling.variants: no recipe given")
    profiles, rows, per_treatment = {}, [], []
    plate = cols.get("plate", "Metadata_Plate")
    treatment = list(cols.get("treatment", [compound, "Metadata_Concentration"]))
    for name, recipe in variants.items():
        normalised, treatments = apply_recipe(wells, recipe, control=control)
        treatments = treatments[treatments[moa].notna()].reset_index(drop=True)
        feats = treatments[feature_columns(treatments)].to_numpy()
        res = nsc_nscb(treatments, feats, moa=moa, compound=compound, batch=batch)
        row = {"variant": name, "description": recipe.get("description", ""), "n_features": feats.shape[1],
               **{k: v for k, v in res.items() if not k.endswith("_table") and k != "nscb_dropped_moas"},
               "nscb_dropped_moas": "; ".join(res["nscb_dropped_moas"])}
        row.update(moa_map(treatments, feats, params.get("map", {}), moa, compound))
        row.update(well_matching(normalised, control, moa, compound, plate, treatment))
        rows.append(row)
        log.info("profiling variant %s: NSC %.1f %%, NSCB %.1f %%, MoA mAP %.3f", name, 100 * row["nsc"],
                 100 * row["nscb"], row["map_moa"])
        profiles[name] = treatments
        for kind in ("nsc", "nscb"):
            t = res[f"{kind}_table"]
            per_treatment.append(pd.DataFrame({"variant": name, "protocol": kind, "treatment": t["Metadata_Treatment"]
                                               if "Metadata_Treatment" in t else t[compound],
                                               "moa": t[moa], "predicted": t["predicted"], "correct": t["correct"]}))
    table = pd.DataFrame(rows)
    prefix = params.get("metric_prefix", "profiling")
    metrics = {f"{prefix}/{r['variant']}/{m}": {"value": float(r[m]), "step": 0}
               for r in rows for m in ("nsc", "nscb", "map_moa")}
    return profiles, table, pd.concat(per_treatment, ignore_index=True), metrics
