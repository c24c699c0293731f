"""Aggregation of single-cell (or site) rows into profiles: median or mean per stratum.

Same arguments and output as ``pycytominer.aggregate`` 1.7.1: strata columns (sorted as pandas'
``groupby(strata, dropna=False)`` sorts them), ``Metadata_Object_Count`` when asked, then the
features as float64; NaN values are skipped. The work is done differently so that it is fast and
light: rows are ordered by group once, and features are read in blocks of columns, each reduced by
a compiled kernel (quickselect median, threads over columns), so the extra memory is one block of
columns instead of a second copy of the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numba
import numpy as np
import pandas as pd

from cellbench.metadata import require_columns

from ._common import resolve_features
from ._group_kernel import gather_plan, group_reduce

OPERATIONS = ("median", "mean")


def _group_index(df: pd.DataFrame, strata: list[str]) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """``(order, bounds, keys)``: rows ``order[bounds[g]:bounds[g+1]]`` form group ``g`` (sorted strata)."""
    codes = df.groupby(strata, sort=True, dropna=False, observed=True).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
    keys = df[strata].iloc[order[bounds[:-1]]].reset_index(drop=True)
    return order, bounds, keys


def aggregate(population_df: pd.DataFrame, strata: list[str] = ("Metadata_Plate", "Metadata_Well"),
              features: list[str] | str = "infer", operation: str = "median", compute_object_count: bool = False,
              object_feature: str = "Metadata_ObjectNumber", block_columns: int = 128,
              n_jobs: int | None = None) -> pd.DataFrame:
    """Profiles per stratum: ``operation`` (median or mean) of every feature over the rows of each group.

    For group g with rows R_g and feature j: median_{i in R_g} x_ij or (1/|R_g|) sum_{i in R_g} x_ij,
    NaN values left out (a group whose values are all NaN gives NaN). ``compute_object_count`` adds
    ``Metadata_Object_Count`` = number of non-missing ``object_feature`` values per group.
    """
    where = "aggregate"
    if operation not in OPERATIONS:
        raise ValueError(f"{where}: operation must be one of {list(OPERATIONS)}, got {operation!r}")
    strata = list(strata)
    require_columns(population_df, strata, where)
    if compute_object_count:
        require_columns(population_df, [object_feature], where)
    features = resolve_features(population_df, features, where)
    features = [f for f in features if f not in strata]
    if len(population_df) == 0:
        raise ValueError(f"{where}: the table has no rows")
    order, bounds, keys = _group_index(population_df, strata)
    blocks = [features[i:i + block_columns] for i in range(0, len(features), max(1, int(block_columns)))]

    if n_jobs is not None:
        numba.set_num_threads(max(1, min(int(n_jobs), numba.config.NUMBA_NUM_THREADS)))
    bpos, dest = gather_plan(order.astype(np.int64))
    parts = []
    for cols in blocks:  # one block of columns in memory at a time; threads over its columns
        values = population_df[cols].to_numpy(dtype=np.float64)
        parts.append(group_reduce(values, bpos, dest, bounds, operation == "median"))
    values = np.concatenate(parts, axis=1) if parts else np.empty((len(keys), 0))
    out = pd.concat([keys, pd.DataFrame(values, columns=features)], axis=1)
    if compute_object_count:
        counts = population_df[object_feature].notna().to_numpy()[order]
        out.insert(len(strata), "Metadata_Object_Count", np.add.reduceat(counts.astype(np.int64), bounds[:-1]))
    return out.drop(columns=[c for c in ("ImageNumber", "ObjectNumber") if c in out.columns])


def aggregate_partitions(partitions: Mapping[str, pd.DataFrame | Callable[[], pd.DataFrame]] | Iterable[pd.DataFrame],
                         strata: list[str] = ("Metadata_Plate", "Metadata_Well"), **kwargs) -> pd.DataFrame:
    """:func:`aggregate` over partitions (e.g. one Parquet file per plate) loaded one at a time.

    ``partitions`` is a Kedro ``PartitionedDataset`` load (``{id: load_function}``), a dict of
    DataFrames or any iterable of DataFrames. Memory is bounded by the largest partition. Each
    stratum must lie in one partition (the strata include the partition key, e.g. the plate);
    a stratum found in two partitions is an error, since its median cannot be merged.
    """
    items = partitions.items() if isinstance(partitions, Mapping) else enumerate(partitions)
    parts = []
    for pid, part in items:
        df = part() if callable(part) else part
        try:
            parts.append(aggregate(df, strata=strata, **kwargs))
        except ValueError as exc:
            raise ValueError(f"partition {pid!r}: {exc}") from exc
    return _merge_results(parts, list(strata), "aggregate_partitions")


def aggregate_dask(ddf, strata: list[str] = ("Metadata_Plate", "Metadata_Well"), **kwargs) -> pd.DataFrame:
    """:func:`aggregate` on a ``dask.dataframe`` whose partitions hold whole strata (e.g. per plate).

    Each partition is aggregated where it lives (``map_partitions``), exactly, on whatever
    scheduler is active (threads, processes or a ``distributed`` cluster); only the small profile
    table comes back. Rows of one stratum in two partitions are an error, as in
    :func:`aggregate_partitions`.
    """
    strata = list(strata)
    parts = ddf.to_delayed()
    import dask

    results = dask.compute(*[dask.delayed(aggregate)(p, strata=strata, **kwargs) for p in parts])
    return _merge_results(list(results), strata, "aggregate_dask")


def _merge_results(results: list[pd.DataFrame], strata: list[str], where: str) -> pd.DataFrame:
    if not results:
        raise ValueError(f"{where}: no partitions")
    out = pd.concat(results, ignore_index=True)
    dup = out.duplicated(strata, keep=False)
    if dup.any():
        raise ValueError(f"{where}: stratum {out.loc[dup, strata].iloc[0].tolist()} spans several "
                         "partitions; repartition by the partition key (e.g. Metadata_Plate) or add it to strata")
    return out.sort_values(strata, kind="stable", na_position="last").reset_index(drop=True)
