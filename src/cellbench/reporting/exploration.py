"""Figures and tables of the protein-library exploration (seed 002, Figs 4-6 and Table 2)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.cluster import hierarchy  # noqa: E402

from cellbench.metadata import feature_columns  # noqa: E402
from cellbench.metrics.retrieval import standardise  # noqa: E402

from .figures import composite_rgb  # noqa: E402

SCORE_COLUMNS = {  # score -> (column title, better)
    "protein_ari": ("protein ARI", "higher"),
    "protein_purity": ("purity", "higher"),
    "rare_hits": ("rare found", "higher"),
    "rare_median_rank": ("rare rank", "lower"),
    "multiloc_spearman": ("mixing rho", "higher"),
    "subpopulation_ari": ("sub-pop. ARI", "higher"),
    "pairwise_overall": ("pairwise", "lower"),
    "same_cell_line": ("same line", "lower"),
    "different_cell_line": ("diff. line", "lower"),
    "cell_line_difference": ("difference", "lower"),
}


def _class_colours(names) -> dict:
    cmap = plt.get_cmap("tab20")
    return {n: cmap(i % 20) for i, n in enumerate(sorted(set(names)))}


def protein_heatmap(profiles: pd.DataFrame, tree: np.ndarray, title: str, rare_class: str | None,
                    max_features: int = 150) -> matplotlib.figure.Figure:
    """Fig 4: the dendrogram of the proteins, the heat map of their standardised profiles (rows in
    leaf order, features clustered, at most ``max_features`` of the highest variance across
    proteins), and a strip with each protein's annotated compartment(s); members of the rare class
    are marked."""
    cols = feature_columns(profiles)
    z = pd.DataFrame(standardise(profiles[cols].to_numpy()), columns=cols)
    if len(cols) > max_features:
        z = z[z.var().sort_values(ascending=False).index[:max_features]]
    feat_order = hierarchy.leaves_list(hierarchy.linkage(z.to_numpy().T, "average")) if z.shape[1] > 2 else range(z.shape[1])
    z = z.iloc[:, list(feat_order)]
    n = len(profiles)
    fig = plt.figure(figsize=(11, max(6, 0.13 * n + 2)))
    ax_d = fig.add_axes([0.02, 0.08, 0.12, 0.82])
    ax_h = fig.add_axes([0.15, 0.08, 0.55, 0.82])
    ax_c = fig.add_axes([0.71, 0.08, 0.025, 0.82])
    ax_l = fig.add_axes([0.76, 0.08, 0.23, 0.82])
    # profiles arrive in leaf order; the tree's leaves are in the order of the sorted names
    hierarchy.dendrogram(tree, orientation="left", ax=ax_d, no_labels=True, color_threshold=0,
                         above_threshold_color="0.3")
    ax_d.invert_yaxis()
    ax_d.axis("off")
    lim = np.nanpercentile(np.abs(z.to_numpy()), 98) or 1.0
    ax_h.imshow(z.to_numpy(), aspect="auto", cmap="cividis", vmin=-lim, vmax=lim, interpolation="nearest")
    ax_h.set_yticks([])
    ax_h.set_xlabel(f"features ({z.shape[1]} of {len(cols)}, clustered)")
    ax_h.set_xticks([])
    comps = profiles["Metadata_Compartments"].astype(str).to_numpy()
    colours = _class_colours([c for c in comps if "|" not in c])
    strip = np.array([[colours.get(c, (1, 1, 1, 1))] for c in comps])
    ax_c.imshow(strip, aspect="auto", interpolation="nearest")
    ax_c.set_xticks([])
    ax_c.set_yticks([])
    for i, (c, kind) in enumerate(zip(comps, profiles["Metadata_Kind"])):
        if "|" in c:
            ax_c.text(0, i, "M" if kind == "multi" else "V", ha="center", va="center", fontsize=6)
        if rare_class is not None and c == rare_class:
            ax_c.annotate("", xy=(0.6, i), xytext=(2.2, i), arrowprops={"arrowstyle": "->", "color": "red"},
                          annotation_clip=False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=col) for col in colours.values()]
    ax_l.legend(handles + [plt.Line2D([], [], color="red", marker=r"$\leftarrow$", ls="")],
                list(colours) + [f"{rare_class} (rare)" if rare_class else ""], loc="upper left", fontsize=7,
                frameon=False, title="compartment (M multi, V variable)", title_fontsize=7)
    ax_l.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig


def multilocalisation_figure(multiloc: pd.DataFrame, per_pair: pd.DataFrame, title: str) -> matplotlib.figure.Figure:
    """Fig 5: per compartment pair (A, B), violins of the score of A-only, mixed and B-only cells,
    and the score of the mixed cells against their true share of B."""
    pairs = list(per_pair["pair"])
    fig, axes = plt.subplots(len(pairs) or 1, 2, figsize=(10, 3.2 * max(len(pairs), 1)), squeeze=False)
    for r, pair in enumerate(pairs):
        a, b = pair.split("|")
        sub = multiloc[multiloc["Metadata_Pair"] == pair]
        groups = [a, "mixed", b]
        data = [sub.loc[sub["Metadata_Group"] == g, "score"].to_numpy() for g in groups]
        ax = axes[r, 0]
        ax.violinplot([d if len(d) else [np.nan] for d in data], showmedians=True)
        ax.set_xticks([1, 2, 3], [f"{a} only", f"{a} + {b}", f"{b} only"], fontsize=8)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_ylabel(f"log(d({a[:10]}) / d({b[:10]}))", fontsize=8)
        mixed = sub[sub["Metadata_Group"] == "mixed"]
        ax = axes[r, 1]
        ax.scatter(mixed["Metadata_Proportion"], mixed["score"], s=8, alpha=0.6)
        ax.set_xlabel(f"true share of the protein in {b}")
        ax.set_ylabel("score")
        rho = per_pair.set_index("pair").loc[pair, "spearman"]
        ax.set_title(f"{a} + {b}: Spearman rho = {rho:.2f} ({len(mixed)} cells)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def clade_figure(clades: pd.DataFrame, trees: dict, images: np.ndarray, title: str,
                 per_clade: int = 4) -> matplotlib.figure.Figure:
    """Fig 6: per spatially variable protein, the dendrogram of its cells (leaves coloured by the
    true sub-population) and ``per_clade`` example crops of each clade. ``images`` holds the crops
    of ``clades``' rows, in the same order."""
    proteins = list(trees)
    n_clades = int(clades.groupby("Metadata_Protein")["clade"].max().max()) if len(clades) else 1
    fig = plt.figure(figsize=(4 + 1.1 * per_clade, 2.6 * n_clades * max(len(proteins), 1) / 1.6))
    outer = fig.add_gridspec(max(len(proteins), 1), 2, width_ratios=[1.3, 1.0], hspace=0.35)
    palette = plt.get_cmap("Set1")
    rng = np.random.default_rng(0)
    for r, protein in enumerate(proteins):
        rows = np.flatnonzero(clades["Metadata_Protein"].to_numpy() == protein)
        sub = clades.iloc[rows]
        names = sub["Metadata_Compartments"].iloc[0].split("|")
        ax = fig.add_subplot(outer[r, 0])
        leaves = hierarchy.dendrogram(trees[protein], ax=ax, no_labels=True, color_threshold=0,
                                      above_threshold_color="0.35")["leaves"]
        truth = sub["Metadata_Subpopulation"].to_numpy()
        for x, leaf in enumerate(leaves):
            ax.scatter(5 + 10 * x, 0, color=palette(int(truth[leaf]) % 9), s=14, marker="s", clip_on=False)
        ax.set_yticks([])
        ax.set_title(f"{protein}: {' / '.join(names)}, ARI {sub['ari'].iloc[0]:.2f}", fontsize=9)
        handles = [plt.Line2D([], [], color=palette(i), marker="s", ls="") for i in range(len(names))]
        ax.legend(handles, names, fontsize=7, loc="upper right", frameon=False, title="true", title_fontsize=7)
        inner = outer[r, 1].subgridspec(n_clades, per_clade, wspace=0.05, hspace=0.1)
        for k in range(1, n_clades + 1):
            members = rows[sub["clade"].to_numpy() == k]
            pick = rng.choice(members, min(per_clade, len(members)), replace=False) if len(members) else []
            for j in range(per_clade):
                ax_i = fig.add_subplot(inner[k - 1, j])
                ax_i.set_xticks([])
                ax_i.set_yticks([])
                if j < len(pick):
                    ax_i.imshow(composite_rgb(images[pick[j]]), interpolation="nearest")
                if j == 0:
                    ax_i.set_ylabel(f"clade {k}\n({len(members)})", fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


def explore_layers(tables: dict, crops, config, layer: str, name: str) -> tuple:
    """Explore every layer of one representation; figures for ``layer`` (chosen beforehand, as
    the seed chose Conv3): ``(scores per layer, heat map, multi-localisation, clades)``."""
    from cellbench.exploration import explore

    if layer not in tables:
        raise ValueError(f"exploration.layers.{name}: {layer!r} is not a layer of {name}; its layers are {sorted(tables)}")
    rows, chosen = [], None
    for key in sorted(tables):  # a FeatureTablesDataset loads each layer lazily
        result = explore(tables[key]() if callable(tables[key]) else tables[key], config)
        rows.append({"representation": name, "layer": key, "chosen": key == layer, **result.scores})
        chosen = result if key == layer else chosen
    label = f"{name} ({layer})"
    images = np.asarray(crops.take(chosen.clades["Metadata_Row"].to_numpy()).images) if len(chosen.clades) else None
    return (pd.DataFrame(rows),
            protein_heatmap(chosen.profiles, chosen.tree, f"{label}: protein profiles, average of single cells, "
                            f"clustered (protein ARI {chosen.scores['protein_ari']:.2f})", config.rare_class),
            multilocalisation_figure(chosen.multiloc, chosen.per_pair, f"{label}: multi-localisation score per cell"),
            clade_figure(chosen.clades, chosen.cell_trees, images, f"{label}: single cells of spatially variable proteins"))


def scores_table(scores: pd.DataFrame) -> str:
    """Markdown table: one row per representation, the headline scores (``SCORE_COLUMNS``)."""
    cols = [c for c in SCORE_COLUMNS if c in scores.columns]
    head = ["representation", "layer"] + [SCORE_COLUMNS[c][0] for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in scores.iterrows():
        cells = [str(row["representation"]), str(row["layer"])]
        for c in cols:
            v = row[c]
            cells.append(f"{int(v)}/{int(row['rare_others'])}" if c == "rare_hits" else f"{v:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    notes = ", ".join(f"{SCORE_COLUMNS[c][0]}: {SCORE_COLUMNS[c][1]} is better" for c in cols)
    return "\n".join(lines) + f"\n\n{notes}.\n"
