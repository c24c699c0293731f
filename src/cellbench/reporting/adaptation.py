"""Domain-adaptation report: the source x target matrix (Markdown, heatmap), the granularity
comparison, CKA per layer and UMAP of class tokens."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .figures import plt
from .tables import percent_cell

LABELS = {"supervised": "Supervised", "dual_dino": "Dual model (DINO)", "dual_cb": "Dual model (CB)",
          "ttt": "TTT-MAE", "oda": "ODA", "coda": "CODA"}


def matrix_markdown(summary: pd.DataFrame, metric: str = "accuracy") -> str:
    """One block per method: rows = training source, columns = target, ``mean ± std`` in %."""
    lines = []
    sources = sorted(set(summary["source"]) | set(summary["target"]))
    for method in [m for m in LABELS if m in set(summary["method"])]:
        sub = summary[summary["method"] == method].set_index(["source", "target"])
        lines += [f"**{LABELS[method]}** ({metric.replace('_', '-')}, %, mean ± std over seeds)", "",
                  "| source \\ target | " + " | ".join(sources) + " |", "|---" * (len(sources) + 1) + "|"]
        for s in sources:
            cells = [percent_cell(*sub.loc[(s, t), [f"{metric}_mean", f"{metric}_std"]]) if (s, t) in sub.index else "-"
                     for t in sources]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def gap_table(summary: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Per method: mean in-source (diagonal) and out-of-source (off-diagonal) score."""
    d = summary.assign(kind=np.where(summary["source"] == summary["target"], "in_source", "out_of_source"))
    out = d.groupby(["method", "kind"])[f"{metric}_mean"].mean().unstack("kind")
    return out.reindex([m for m in LABELS if m in out.index])


def matrix_heatmap(summary: pd.DataFrame, metric: str = "accuracy", title: str = ""):
    methods = [m for m in LABELS if m in set(summary["method"])]
    sources = sorted(set(summary["source"]) | set(summary["target"]))
    fig, axes = plt.subplots(1, len(methods), figsize=(2.6 * len(methods) + 1, 3.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        sub = summary[summary["method"] == method].set_index(["source", "target"])
        m = np.full((len(sources), len(sources)), np.nan)
        for i, s in enumerate(sources):
            for j, t in enumerate(sources):
                if (s, t) in sub.index:
                    m[i, j] = 100 * sub.loc[(s, t), f"{metric}_mean"]
        ax.imshow(m, vmin=0, vmax=100, cmap="viridis")
        for i in range(len(sources)):
            for j in range(len(sources)):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", color="w" if m[i, j] < 60 else "k", fontsize=9)
        ax.set_xticks(range(len(sources)), [s.replace("source_", "s") for s in sources])
        ax.set_yticks(range(len(sources)), [s.replace("source_", "s") for s in sources])
        ax.set_title(LABELS[method], fontsize=9)
        ax.set_xlabel("target")
    axes[0][0].set_ylabel("training source")
    fig.suptitle(title or f"{metric.replace('_', '-')} (%), mean over seeds", fontsize=10)
    fig.tight_layout()
    return fig


def granularity_figure(summary: pd.DataFrame, reference: pd.DataFrame | None = None, metric: str = "accuracy"):
    """Bars per granularity for ODA and CODA; dashed lines: the unadapted dual models."""
    levels = [g for g in ("source", "batch", "plate", "one_plate") if g in set(summary["granularity"])]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    width = 0.38
    for k, method in enumerate(("oda", "coda")):
        sub = summary[summary["method"] == method].set_index("granularity").reindex(levels)
        ax.bar(np.arange(len(levels)) + (k - 0.5) * width, 100 * sub[f"{metric}_mean"], width,
               yerr=100 * sub[f"{metric}_std"].fillna(0), label=LABELS[method], capsize=3)
    if reference is not None:
        for method, style in (("dual_dino", "--"), ("dual_cb", ":")):
            r = reference[reference["method"] == method]
            if len(r):
                ax.axhline(100 * r[f"{metric}_mean"].iloc[0], ls=style, color="k", lw=1, label=f"{LABELS[method]}, unadapted")
    ax.set_xticks(range(len(levels)), [{"source": "whole source", "batch": "per batch", "plate": "per plate", "one_plate": "one plate → all"}[g]
                   for g in levels])
    pair = summary[["source", "target"]].iloc[0]
    n_seeds = int(summary["n_seeds"].max()) if "n_seeds" in summary else 1
    ax.set_ylabel(f"{metric.replace('_', '-')} (%)")
    ax.set_title(f"Adaptation granularity, {pair['source']} → {pair['target']}\n({n_seeds} seed"
                 f"{'s' if n_seeds > 1 else ''}; lines: the same seed{'s' if n_seeds > 1 else ''}, unadapted)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def cka_figure(cka: pd.DataFrame):
    """Mean CKA (before vs after adaptation) per block for ODA and CODA."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for method in ("oda", "coda"):
        sub = cka[cka["method"] == method].groupby("layer")["cka"].agg(["mean", "std"])
        ax.errorbar(sub.index + 1, sub["mean"], yerr=sub["std"].fillna(0), marker="o", capsize=3, label=LABELS[method])
    ax.set_xticks(sorted(cka["layer"].unique() + 1))
    ax.set_xlabel("ViT block")
    ax.set_ylabel("linear CKA, before vs after")
    ax.set_ylim(0, 1.05)
    ax.set_title("How much adaptation changes each layer", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def umap_figure(embeddings: pd.DataFrame, label: str, source: str, seed: int = 0, n_neighbors: int = 15):
    """UMAP of class tokens before and after adaptation (one joint embedding), coloured by label and by source."""
    import umap

    feats = [c for c in embeddings.columns if c.startswith("cls_")]
    xy = umap.UMAP(n_neighbors=n_neighbors, random_state=seed, n_jobs=1).fit_transform(embeddings[feats].to_numpy())
    stages = list(dict.fromkeys(embeddings["stage"]))
    fig, axes = plt.subplots(2, len(stages), figsize=(4 * len(stages), 7.5), squeeze=False)
    for col, stage in enumerate(stages):
        mask = (embeddings["stage"] == stage).to_numpy()
        for row, by in enumerate((label, source)):
            ax = axes[row][col]
            for k, value in enumerate(sorted(embeddings[by].astype(str).unique())):
                m = mask & (embeddings[by].astype(str) == value).to_numpy()
                ax.scatter(xy[m, 0], xy[m, 1], s=3, alpha=0.6, label=value, color=plt.cm.tab10(k % 10))
            ax.set_title(f"{stage}: coloured by {by.replace('Metadata_', '')}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == len(stages) - 1:
                ax.legend(fontsize=6, markerscale=3, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    return fig


def seeds_line(results: pd.DataFrame) -> str:
    """The report's first line: the seeds as plain integers (not ``np.int64(0)``, as a Parquet
    table's seeds once printed) and what the scores are."""
    return (f"Seeds: {sorted(int(s) for s in results['seed'].unique())}; per-image scores on every image of the "
            "target (the diagonal: the in-source held-out plate).")


def domain_adaptation_report(results: pd.DataFrame, granularity: pd.DataFrame, cka: pd.DataFrame):
    """``(summary, Markdown, matrix heat map, granularity figure, CKA figure, MLflow metrics)``:
    means and SDs over seeds, the in-source / out-of-source gaps, the matrices and the studies.
    MLflow metrics are ``da/{method}/{source}-to-{target}/{metric}`` (MLflow forbids ``>``)."""
    from cellbench.adaptation.experiment import summarise

    from .tables import frame_markdown

    if results.empty:
        raise ValueError("domain_adaptation: no results (check train_sources, targets and seeds)")
    summary = summarise(results)
    gaps = pd.concat({m: gap_table(summary, m) for m in ("accuracy", "macro_f1")}, axis=1)
    gaps.columns = [f"{m}_{k}" for m, k in gaps.columns]
    md = ["# Domain adaptation: source x target", "", seeds_line(results), "",
          "## In-source vs out-of-source (mean of the matrix cells, %)", "",
          frame_markdown(100 * gaps), "", "## Accuracy", "", matrix_markdown(summary, "accuracy"),
          "## Macro-F1", "", matrix_markdown(summary, "macro_f1")]
    if "probe_accuracy_mean" in summary and summary["probe_accuracy_mean"].notna().any():
        probe = summary.dropna(subset=["probe_accuracy_mean"])
        probe = probe.assign(head=100 * probe["accuracy_mean"], probe=100 * probe["probe_accuracy_mean"])
        md += ["## What the features know of the target (linear probe, %)", "",
               "A logistic regression fitted on the target's own labels (cross-validated over its plates) on "
               "each method's features, beside the accuracy of the source-trained head. A probe well above "
               "the head: the features still separate the target's classes, the head does not fit them.", "",
               frame_markdown(probe.pivot_table(index="method", values=["head", "probe"], aggfunc="mean")
                              .round(1)), ""]
    gsum = pd.DataFrame()
    if not granularity.empty:
        gsum = summarise(granularity)
        md += ["## Granularity (ODA / CODA)", "", frame_markdown(gsum.assign(**{c: 100 * gsum[c] for c in gsum.columns
                                                                if c.startswith(("accuracy", "macro"))}), index=False), ""]
    metrics = {f"da/{r.method}/{r.source}-to-{r.target}/{m}": {"value": float(getattr(r, f"{m}_mean")), "step": 0}
               for r in summary.itertuples() for m in ("accuracy", "macro_f1")}
    for r in gsum.itertuples():
        metrics[f"da_granularity/{r.method}/{r.granularity}/accuracy"] = {"value": float(r.accuracy_mean), "step": 0}
    heat = matrix_heatmap(summary, "accuracy", "Per-image accuracy (%), source x target, mean over seeds")
    if gsum.empty or cka.empty:
        raise ValueError("domain_adaptation: the granularity study and CKA need at least one source -> target "
                         "pair (targets other than the training source, granularity.levels not empty)")
    pair = gsum[["source", "target"]].iloc[0]
    same_seeds = summarise(results[results["seed"].isin(granularity["seed"].unique())])
    ref = same_seeds[(same_seeds["source"] == pair["source"]) & (same_seeds["target"] == pair["target"])]
    return summary, "\n".join(md), heat, granularity_figure(gsum, ref), cka_figure(cka), metrics
