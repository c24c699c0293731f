"""Result tables: the COOS Table-3 layout in Markdown."""

from __future__ import annotations

import pandas as pd

SPLIT_ORDER = ("train", "test1", "test2", "test3", "test4")


def percent_cell(mean: float, sd: float = float("nan")) -> str:
    """A fraction as ``mean ± sd`` in percent with one decimal: ``-`` when the mean is missing, no
    ``± sd`` part when the SD is missing (one seed)."""
    if pd.isna(mean):
        return "-"
    return f"{100 * mean:.1f}" + ("" if pd.isna(sd) else f" ± {100 * sd:.1f}")


def percent_of(values) -> str:
    """``percent_cell`` of the mean and, with two or more values, the sample SD of ``values``
    (fractions; missing values ignored)."""
    v = pd.Series(values, dtype=float).dropna()
    return percent_cell(v.mean() if len(v) else float("nan"), v.std(ddof=1) if len(v) > 1 else float("nan"))


def benchmark_markdown(results: pd.DataFrame, reference: pd.DataFrame | None = None) -> str:
    """Table-3 layout: rows representation/layer/classifier, columns splits, cells ``mean +- std``.

    ``results`` has columns ``representation, layer, classifier, split, balanced_error`` and
    optionally ``balanced_error_std, n_seeds``. ``reference`` (same keys, column
    ``published_balanced_error``) adds the seed's published number beside each cell.
    """
    need = {"representation", "layer", "classifier", "split", "balanced_error"}
    missing = sorted(need - set(results.columns))
    if missing:
        raise ValueError(f"results table is missing column(s) {missing}")
    splits = [s for s in SPLIT_ORDER if s in set(results["split"])]
    keys = ["representation", "layer", "classifier"]
    ref = None
    if reference is not None and len(reference):
        ref = reference.set_index(keys + ["split"])["published_balanced_error"]
    lines = ["| representation | layer | classifier | " + " | ".join(splits) + " |",
             "|---|---|---|" + "---|" * len(splits)]
    for key, grp in results.groupby(keys, sort=True):
        g = grp.set_index("split")
        cells = []
        for s in splits:
            if s not in g.index:
                cells.append("")
                continue
            m = g.loc[s, "balanced_error"]
            sd = g.loc[s, "balanced_error_std"] if "balanced_error_std" in g else float("nan")
            cell = percent_cell(m, sd if pd.notna(sd) and sd > 0 else float("nan"))
            if ref is not None and (*key, s) in ref.index:
                cell += f" (paper {100 * ref.loc[(*key, s)]:.1f})"
            cells.append(cell)
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nClass-balanced error in %, mean ± std over seeds.\n"


def coos7_published_reference() -> pd.DataFrame:
    """The seed's Table 3 (long form: keys, split, ``published_balanced_error`` as a fraction)."""
    from importlib.resources import files

    wide = pd.read_csv(files("cellbench.reporting") / "coos7_published_table3.csv", comment="#")
    long = wide.melt(id_vars=["representation", "layer", "classifier"], var_name="split",
                     value_name="published_balanced_error")
    long["published_balanced_error"] = long["published_balanced_error"] / 100.0
    return long


def per_class_sensitivity_table(confusion: pd.DataFrame) -> pd.DataFrame:
    """Per-class sensitivity (recall) per representation/layer/classifier/split from long confusion counts."""
    keys = ["representation", "layer", "classifier", "split", "true"]
    total = confusion.groupby(keys)["count"].sum()
    correct = confusion[confusion["true"] == confusion["predicted"]].groupby(keys)["count"].sum()
    correct = correct.reindex(total.index, fill_value=0)  # a class never predicted correctly has recall 0
    out = (correct / total.where(total > 0)).rename("sensitivity").reset_index()
    out["n_cells"] = total.to_numpy()
    return out.rename(columns={"true": "label"})


def frame_markdown(frame: pd.DataFrame, index: bool = True, digits: int = 1) -> str:
    """A DataFrame as a GitHub Markdown table (floats rounded to ``digits``), without tabulate."""
    df = frame.reset_index() if index else frame
    def fmt(v):
        if isinstance(v, float):
            return "-" if pd.isna(v) else f"{v:.{digits}f}"
        return str(v)
    lines = ["| " + " | ".join(str(c) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def profiling_tables_markdown(matching: pd.DataFrame, columns: dict[str, list[str]], title: str = "") -> str:
    """MoA-matching results as the seeds print them.

    ``matching`` has one row per (features, summary, variant) with ``nsc``, ``nscb``,
    ``replicate_accuracy``, ``group_accuracy`` (and optionally ``seed``: then cells are mean ± SD
    over seeds). ``columns`` maps a column title to ``[summary, variant]``, e.g.
    ``{"Mean": ["mean", "plate_dmso_zscore_median"], "Mean +Whitened": ["mean", "plate_dmso_zscore_tvn"]}``.
    """
    feats = list(dict.fromkeys(matching["features"]))
    lines = [f"# {title}" if title else "# MoA matching", ""]
    for metric, name in (("nsc", "NSC"), ("nscb", "NSCB"), ("replicate_accuracy", "Replicate accuracy"),
                         ("group_accuracy", "Group accuracy")):
        lines += [f"## {name} (%)", "", "| features | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for f in feats:
            cells = []
            for summary, variant in columns.values():
                sub = matching[(matching["features"] == f) & (matching["summary"] == summary) & (matching["variant"] == variant)]
                cells.append(percent_of(sub[metric]))
            lines.append(f"| {f} | " + " | ".join(cells) + " |")
        lines.append("")
    first = next(iter(columns.values()))
    lines += [f"## NSC, NSCB and drop (seed 004 Table 2 layout; {first[0]} summary, {first[1]})", "",
              "| features | dim. | NSC | NSCB | drop |", "|---|---|---|---|---|"]
    for f in feats:
        sub = matching[(matching["features"] == f) & (matching["summary"] == first[0]) & (matching["variant"] == first[1])]
        if sub.empty:
            continue
        lines.append(f"| {f} | {int(sub['n_features'].iloc[0])} | {100 * sub['nsc'].mean():.1f} | "
                     f"{100 * sub['nscb'].mean():.1f} | {100 * (sub['nscb'] - sub['nsc']).mean():+.1f} |")
    return "\n".join(lines) + "\n"


def combine_moa_matching(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict]:
    """One table of every feature set's profiling variants (columns ``features`` and ``summary``:
    ``mean`` or ``mean_sd``, from keys ``<features>`` and ``<features>_mean_sd``) and its MLflow
    metrics ``treatments/<features>/<summary>/<variant>/<metric>``."""
    parts = [t.assign(features=name.removesuffix("_mean_sd"), summary="mean_sd" if name.endswith("_mean_sd") else "mean")
             for name, t in tables.items()]
    table = pd.concat(parts, ignore_index=True)
    table = table[["features", "summary"] + [c for c in table.columns if c not in ("features", "summary")]]
    metrics = {f"treatments/{r.features}/{r.summary}/{r.variant}/{m}": {"value": float(getattr(r, m)), "step": 0}
               for r in table.itertuples()
               for m in ("nsc", "nscb", "map_moa", "replicate_accuracy", "group_accuracy") if pd.notna(getattr(r, m))}
    return table, metrics
