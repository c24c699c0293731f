"""Replaces pycytominer's ``aggregate``, ``normalize`` and ``feature_select`` by cellbench's, for
``benchmarks/pycytominer_suite.py``. ``strict``: cellbench's functions as they are; ``adapter``:
arguments cellbench does not take are translated (I/O, feature inference, blocklist names), never
the numerics."""

from __future__ import annotations

import sys

import pandas as pd


def _load(profiles):
    from pycytominer.cyto_utils.load import load_profiles

    return load_profiles(profiles) if not isinstance(profiles, pd.DataFrame) else profiles


def _infer(df, features, image_features):
    if isinstance(features, str) and features == "infer":
        from pycytominer.cyto_utils.features import infer_cp_features

        return infer_cp_features(df, image_features=image_features)
    return features


def _write(df, output_file, output_type="csv", compression_options=None, float_format=None):
    if output_file is None:
        return df
    from pycytominer.cyto_utils.output import output

    return output(df=df, output_filename=output_file, output_type=output_type,
                  compression_options=compression_options, float_format=float_format)


def adapted_aggregate(population_df, strata=("Metadata_Plate", "Metadata_Well"), features="infer",
                      image_features=False, operation="median", output_file=None, output_type="csv",
                      compute_object_count=False, object_feature="Metadata_ObjectNumber", subset_data_df=None,
                      compression_options=None, float_format=None):
    from cellbench.profiling import aggregate

    df = _load(population_df)
    if isinstance(subset_data_df, pd.DataFrame):
        df = subset_data_df.merge(df, how="inner", on=subset_data_df.columns.tolist()).reindex(df.columns, axis="columns")
    features = _infer(df, features, image_features)
    out = aggregate(df, strata=list(strata), features=features, operation=operation,
                    compute_object_count=compute_object_count, object_feature=object_feature)
    return _write(out, output_file, output_type, compression_options, float_format)


def adapted_normalize(profiles, features="infer", image_features=False, meta_features="infer", samples="all",
                      method="standardize", drop_cosmicqc_rows=False, output_file=None, output_type="csv",
                      compression_options=None, float_format=None, **kwargs):
    from cellbench.profiling import normalize

    df = _load(profiles)
    if drop_cosmicqc_rows:
        raise NotImplementedError("drop_cosmicqc_rows: coSMicQC outlier rows are not a cellbench concept")
    features = _infer(df, features, image_features)
    if isinstance(meta_features, str) and meta_features == "infer":
        from pycytominer.cyto_utils.features import infer_cp_features

        meta_features = infer_cp_features(df, metadata=True)
    out = normalize(df, features=features, meta_features=meta_features, samples=samples, method=method, **kwargs)
    return _write(out, output_file, output_type, compression_options, float_format)


def adapted_feature_select(profiles, features="infer", image_features=False, samples="all",
                           operation="variance_threshold", output_file=None, output_type="csv",
                           corr_method="pearson", blocklist=None, blocklist_name=None, blocklist_file=None,
                           compression_options=None, float_format=None, **kwargs):
    from cellbench.profiling import feature_select

    df = _load(profiles)
    if corr_method != "pearson":
        raise NotImplementedError(f"corr_method={corr_method!r}: cellbench's correlation_threshold is Pearson only")
    features = _infer(df, features, image_features)
    ops = [operation] if isinstance(operation, str) else list(operation)
    if "blocklist" in ops:
        from pycytominer.cyto_utils.blocklist import get_blocklist_features

        kwargs["blocklist"] = get_blocklist_features(population_df=df, blocklist=blocklist,
                                                     blocklist_name=blocklist_name, blocklist_file=blocklist_file)
    out = feature_select(df, features=features, samples=samples, operation=operation, **kwargs)
    return _write(out, output_file, output_type, compression_options, float_format)


def install(mode: str) -> None:
    import pycytominer

    if mode == "strict":
        from cellbench.profiling import aggregate, feature_select, normalize
    else:
        aggregate, normalize, feature_select = adapted_aggregate, adapted_normalize, adapted_feature_select
    for name, func in (("aggregate", aggregate), ("normalize", normalize), ("feature_select", feature_select)):
        setattr(pycytominer, name, func)
        setattr(sys.modules[f"pycytominer.{name}"], name, func)
