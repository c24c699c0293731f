"""A profiling recipe: normalise -> select features -> (TVN / CORAL) -> (Harmony) -> treatment profiles.

A recipe is a plain dict (it comes from ``parameters_profiling.yml``)::

    normalize: {method: standardize, samples: "Metadata_Control == True", by: Metadata_Plate}
    feature_select: [drop_na_columns, variance_threshold, correlation_threshold]
    tvn: {reg: 1.0, coral_by: Metadata_Batch}      # or null
    harmony: {batch: Metadata_Batch, n_components: 50}   # or null (the JUMP recipe's last step)
    treatment: {operation: mean}

``normalize`` may be a list of normalisations applied in order (e.g. per-plate z-score, then
sphering on all controls). Each step is optional (null or absent skips it) and calls the pycytominer-compatible function
of the same name with the given arguments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.metadata import feature_columns

from .feature_select import feature_select
from .harmony import harmony
from .normalize import normalize
from .summarize import treatment_profiles
from .tvn import tvn

STEPS = ("normalize", "feature_select", "tvn", "harmony", "treatment")


def check_recipe(recipe, path: str) -> None:
    """Raise ``ConfigError`` naming ``path.<step>.<argument>`` for an unknown step or an argument
    its function does not take; nothing runs."""
    from collections.abc import Mapping

    from cellbench.config import ConfigError, check_arguments

    if not isinstance(recipe, Mapping):
        raise ConfigError(f"{path}: a recipe mapping expected, got {recipe!r}")
    unknown = [k for k in recipe if k not in STEPS and k != "description"]
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}: unknown recipe step; expected {list(STEPS)} (and description)")
    funcs = {"normalize": normalize, "feature_select": feature_select, "tvn": tvn, "harmony": harmony,
             "treatment": treatment_profiles}
    for step, func in funcs.items():
        value = recipe.get(step)
        if not value:
            continue
        if step == "feature_select" and isinstance(value, (list, str)):
            value = {"operation": value}
        items = [value] if isinstance(value, Mapping) else value
        if step != "normalize" and not isinstance(value, Mapping):
            raise ConfigError(f"{path}.{step}: a mapping of arguments expected, got {value!r}")
        for k, args in enumerate(items):
            where = f"{path}.{step}" if isinstance(value, Mapping) else f"{path}.{step}[{k}]"
            if not isinstance(args, Mapping):
                raise ConfigError(f"{where}: a mapping of arguments expected, got {args!r}")
            check_arguments(args, func, where, exclude=("profiles",), noun=f"argument of {func.__name__}")


def apply_recipe(profiles: pd.DataFrame, recipe: dict, control: str = "Metadata_Control == True") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(normalised well/site profiles, treatment profiles)`` of one recipe (controls excluded from
    the treatment profiles)."""
    unknown = sorted(set(recipe) - set(STEPS) - {"description"})
    if unknown:
        raise ValueError(f"profiling recipe: unknown step(s) {unknown}; expected {list(STEPS)}")
    out = profiles
    steps = recipe.get("normalize") or []
    for step in [steps] if isinstance(steps, dict) else steps:  # one normalisation or a list, in order
        args = dict(step)
        args.setdefault("samples", control)
        out = normalize(out, **args)
    if recipe.get("feature_select"):
        fs = recipe["feature_select"]
        args = {"operation": fs} if isinstance(fs, (list, str)) else dict(fs)
        out = feature_select(out, **args)
    if recipe.get("tvn"):
        args = dict(recipe["tvn"])
        args.setdefault("samples", control)
        out = tvn(out, **args)
    if recipe.get("harmony"):
        out = harmony(out, **dict(recipe["harmony"]))
    feats = feature_columns(out)
    bad = [c for c in feats if not np.isfinite(out[c].to_numpy()).all()]
    if bad:
        raise ValueError(f"profiling recipe: {len(bad)} feature(s) are not finite after normalisation "
                         f"(e.g. {bad[0]!r}: zero spread in the controls?); add drop_na_columns or use "
                         "mad_robustize_epsilon > 0")
    treat_args = dict(recipe.get("treatment") or {})
    treat_args.setdefault("exclude", control)
    return out, treatment_profiles(out, **treat_args)
