"""VAE figures (seed 003): reconstructions beside the originals, and latent interpolation from a
control cell to the cell nearest each treatment's mean (Lafarge et al. 2019, Fig. 3)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from cellbench.config import Config, positive

from .figures import composite_rgb, plt


def _decode(model: torch.nn.Module, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.decoder(torch.from_numpy(np.asarray(z, np.float32))).numpy()


def _encode(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.encoder(torch.from_numpy(np.asarray(x, np.float32)))[0].numpy()


def _show(ax, img: np.ndarray) -> None:
    ax.imshow(composite_rgb(img, 0.0, 100.0))
    ax.set_xticks([])
    ax.set_yticks([])


def reconstruction_figure(originals: np.ndarray, labels: list[str], models: dict[str, torch.nn.Module]):
    """Rows: cells (labelled); columns: the original, then each model's reconstruction from mu.

    ``originals`` are the models' inputs (max-normalised, padded), ``N x C x S x S``."""
    cols = ["original"] + list(models)
    recon = {name: _decode(m.eval(), _encode(m, originals)) for name, m in models.items()}
    fig, axes = plt.subplots(len(originals), len(cols), figsize=(1.4 * len(cols) + 1.6, 1.4 * len(originals)),
                             squeeze=False)
    for i in range(len(originals)):
        for j, name in enumerate(cols):
            _show(axes[i][j], originals[i] if name == "original" else recon[name][i])
            if i == 0:
                axes[i][j].set_title(name, fontsize=8)
        axes[i][0].set_ylabel(labels[i], fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("Reconstructions from mu (DNA magenta, tubulin green, actin red)", fontsize=9)
    fig.tight_layout()
    return fig


def interpolation_targets(mu: np.ndarray, meta: pd.DataFrame, group: str, control_mask: np.ndarray) -> tuple[int, dict]:
    """``(control cell, {group value: target cell})``: the control cell nearest the control mean,
    and per group (treatment) the cell nearest that group's mean in latent space (Euclidean)."""
    def nearest(rows: np.ndarray) -> int:
        centre = mu[rows].mean(0)
        return int(rows[np.argmin(((mu[rows] - centre) ** 2).sum(1))])
    ctrl = np.flatnonzero(control_mask)
    if len(ctrl) == 0:
        raise ValueError("latent interpolation: no control cells")
    targets = {}
    values = meta[group].astype(str).to_numpy()
    for g in sorted(set(values[~control_mask])):
        targets[g] = nearest(np.flatnonzero((values == g) & ~control_mask))
    return nearest(ctrl), targets


def interpolation_figure(model: torch.nn.Module, images: np.ndarray, control: int, targets: dict[str, int],
                         steps: int = 7, title: str = ""):
    """Rows: treatments; columns: decodings of ``(1 - t) mu_control + t mu_target`` for t in [0, 1]."""
    mu = _encode(model.eval(), images[[control] + list(targets.values())])
    ts = np.linspace(0, 1, steps)
    fig, axes = plt.subplots(len(targets), steps, figsize=(1.3 * steps + 1.8, 1.3 * len(targets)), squeeze=False)
    for i, name in enumerate(targets):
        z = (1 - ts)[:, None] * mu[0] + ts[:, None] * mu[i + 1]
        for j, img in enumerate(_decode(model, z)):
            _show(axes[i][j], img)
            if i == 0:
                axes[i][j].set_title("control" if j == 0 else ("target" if j == steps - 1 else f"t={ts[j]:.2f}"), fontsize=7)
        axes[i][0].set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(title or "Latent interpolation: control cell -> cell nearest each treatment's mean", fontsize=9)
    fig.tight_layout()
    return fig


@dataclasses.dataclass(frozen=True)
class VAEFiguresConfig(Config):
    """``treatments.vae_figures``: cells shown (``query``), one per ``group`` value, and the number
    of interpolation ``steps``."""

    input_size: int
    group: str
    query: str | None
    control_column: str
    steps: int
    seed: int

    def check(self, path: str) -> None:
        positive(path, input_size=self.input_size, steps=self.steps)


def vae_figures(crops, models: dict[str, torch.nn.Module], mu_table: pd.DataFrame, config: VAEFiguresConfig):
    """``(reconstructions, interpolation)``: one cell per ``group`` value (and a control) beside
    each model's reconstruction; VAE+ latent interpolation from a control cell to the cell nearest
    each group's mean in ``mu_table`` (the VAE+ features). ``models`` maps AE / VAE / VAE+ to networks."""
    from cellbench.metadata import feature_columns
    from cellbench.training.preprocess import max_normalise

    size, group = config.input_size, config.group
    meta = crops.metadata
    rng = np.random.default_rng(config.seed)
    pool = meta.query(config.query) if config.query else meta
    rows = [int(rng.choice(idx)) for _, idx in pool.groupby(group, sort=True).indices.items()]
    rows = pool.index.to_numpy()[rows]
    recon = reconstruction_figure(max_normalise(np.asarray(crops.take(rows).images), size),
                                  meta.loc[rows, group].astype(str).tolist(), models)
    mu = mu_table[feature_columns(mu_table)].to_numpy()
    subset = np.flatnonzero(meta.index.isin(pool.index))
    control = meta[config.control_column].to_numpy(bool)
    ctrl, targets = interpolation_targets(mu[subset], meta.iloc[subset], group, control[subset])
    chosen = np.array([ctrl] + list(targets.values()))
    imgs = max_normalise(np.asarray(crops.take(subset[chosen]).images), size)
    with torch.no_grad():
        interp = interpolation_figure(models["VAE+"], imgs, 0, {k: i + 1 for i, k in enumerate(targets)}, config.steps)
    return recon, interp
