"""Figures: QC montages of crops, confusion matrices, error by split (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# channel colours: protein green, nucleus magenta (colour-blind safe pair); a third channel red
_COLOURS = np.array([[0.1, 1.0, 0.1], [1.0, 0.1, 1.0], [1.0, 0.3, 0.1]], np.float32)


def composite_rgb(crop: np.ndarray, low: float = 0.5, high: float = 99.8) -> np.ndarray:
    """``C x H x W`` crop to an ``H x W x 3`` image, each channel percentile-stretched."""
    crop = np.asarray(crop, np.float32)
    rgb = np.zeros((*crop.shape[1:], 3), np.float32)
    for ch in range(min(crop.shape[0], len(_COLOURS))):
        lo, hi = np.percentile(crop[ch], [low, high])
        x = np.clip((crop[ch] - lo) / max(hi - lo, 1e-6), 0, 1)
        rgb += x[..., None] * _COLOURS[ch]
    return np.clip(rgb, 0, 1)


def crop_montage(
    tiles: Sequence[Sequence[np.ndarray]],
    row_labels: Sequence[str],
    col_labels: Sequence[str] | None = None,
    title: str = "",
    channel_names: Sequence[str] = ("protein", "nucleus"),
) -> matplotlib.figure.Figure:
    """Grid of crops: ``tiles[r][c]`` is a ``C x H x W`` crop (or None for an empty cell).

    Each crop is shown as a composite with per-crop, per-channel contrast (0.5-99.8 percentile),
    followed by its first channel alone in grey, so a reader sees both the pattern and context.
    """
    n_rows = len(tiles)
    n_cols = max(len(r) for r in tiles) if tiles else 0
    fig, axes = plt.subplots(n_rows, 2 * n_cols, figsize=(1.1 * 2 * n_cols + 1.6, 1.15 * n_rows + 0.8), squeeze=False)
    for r, row in enumerate(tiles):
        for c in range(n_cols):
            ax_rgb, ax_p = axes[r, 2 * c], axes[r, 2 * c + 1]
            for ax in (ax_rgb, ax_p):
                ax.set_xticks([])
                ax.set_yticks([])
            crop = row[c] if c < len(row) else None
            if crop is None:  # empty cell: no frame, but keep the axes so the row label shows
                ax_rgb.set_frame_on(False)
                ax_p.set_frame_on(False)
                continue
            ax_rgb.imshow(composite_rgb(crop), interpolation="nearest")
            lo, hi = np.percentile(crop[0], [0.5, 99.8])
            ax_p.imshow(crop[0], cmap="gray", vmin=lo, vmax=max(hi, lo + 1e-6), interpolation="nearest")
        axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
    if col_labels is not None:
        for c, lab in enumerate(col_labels):
            axes[0, 2 * c].set_title(lab, fontsize=8, loc="left")
    legend = " / ".join(f"{n}: {col}" for n, col in zip(channel_names, ("green", "magenta", "red")))
    fig.suptitle(f"{title}\ncomposite ({legend}) and {channel_names[0]} alone", fontsize=9)
    fig.tight_layout()
    return fig


def confusion_figure(
    matrices: dict[str, np.ndarray], class_names: Sequence[str], title: str = "", ncols: int = 2
) -> matplotlib.figure.Figure:
    """Row-normalised confusion matrices (rows true class, columns predicted), ``ncols`` per row."""
    k = len(matrices)
    ncols = max(1, min(ncols, k))
    nrows = -(-k // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols + 0.6, 4.2 * nrows + 0.4), squeeze=False)
    for ax in axes.ravel()[k:]:
        ax.axis("off")
    short = [n if len(n) <= 12 else "".join(w[0] for w in n.split()) for n in class_names]
    for ax, (name, cm) in zip(axes.ravel(), matrices.items()):
        cm = np.asarray(cm, np.float64)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        for i in range(norm.shape[0]):
            for j in range(norm.shape[1]):
                if cm[i, j] > 0:
                    ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(short)), short, rotation=60, fontsize=7, ha="right")
        ax.set_yticks(range(len(short)), short, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_size_inches()[1]))
    return fig


def error_by_split_figure(results: pd.DataFrame, title: str = "", highlight: pd.DataFrame | None = None
                          ) -> matplotlib.figure.Figure:
    """Balanced error (mean +- std over seeds) by split, one line per representation/layer/classifier.

    With ``highlight`` (rows of representation, layer, classifier, e.g. the Training-CV choice per
    representation) those lines are drawn in colour with a legend and every other one in light grey.
    """
    splits = [s for s in ("train", "test1", "test2", "test3", "test4") if s in set(results["split"])]
    keys = ["representation", "layer", "classifier"]
    chosen = set() if highlight is None else set(map(tuple, highlight[keys].to_numpy()))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for key, grp in results.groupby(keys, sort=True):
        g = grp.set_index("split").reindex(splits)
        std = g["balanced_error_std"] if "balanced_error_std" in g else 0 * g["balanced_error"]
        if highlight is not None and tuple(key) not in chosen:
            ax.plot(range(len(splits)), g["balanced_error"], color="0.8", lw=0.8, zorder=1)
            continue
        ax.errorbar(range(len(splits)), g["balanced_error"], yerr=std.fillna(0), marker="o", capsize=3,
                    label="/".join(map(str, key)), zorder=3)
    ax.set_xticks(range(len(splits)), splits)
    ax.set_ylabel("class-balanced error")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    n_lines = len(ax.get_legend_handles_labels()[0])
    note = " (grey: every other layer/classifier)" if highlight is not None else ""
    ax.legend(fontsize=7, loc="upper left", ncol=1 if n_lines < 8 else 2, title=f"chosen by Training CV{note}"
              if highlight is not None else None, title_fontsize=7)
    ax.set_title(title or "COOS benchmark: error grows with covariate shift")
    fig.tight_layout()
    return fig
