"""A generic pre-training pool: the simulated study's counterpart of the seed's ImageNet start.

CODA (seed 001, Haslum et al. 2024) starts its foundation from ImageNet weights, then runs its
steps on the cell data: (1) DINO pre-training on the source, (2) the dual model's task part
trained on the source labels, (3) ODA / CODA: DINO continued on the unlabelled target, (4) the
adapted foundation swapped under the unchanged task part. ImageNet weights cannot be had here, and
a network pre-trained on natural images is not what a simulated screen needs either. The pool is
the counterpart: unlabelled cells of a *different* simulated screen (other microscopes and stains,
other compounds and MoAs, other plates), on which the ViT is pre-trained once by DINO; the seed's
steps 1-4 then start from that checkpoint exactly as they would from an ImageNet file given as
``domain_adaptation.dino.pretrained``.

What keeps the pool apart from the benchmark (checked by :meth:`PoolConfig.check_apart`):

* another simulation ``seed``: every microscope but the reference one, every batch / plate effect,
  every compound's potency and EC50 is a different draw;
* ``exclude_sources``: the reference microscope (``source_1`` of every simulated screen, the
  undisturbed ``scope_1``) is left out of the pool, so no pool source shares a microscope with a
  benchmark source;
* other MoAs by default (the 6 BBBC021 MoAs the benchmark does not use), so no pool compound is a
  benchmark compound and the pool's phenotypes are not the benchmark's labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cellbench.config import Config, ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolConfig(Config):
    """``domain_adaptation.pool``: the pool's simulated screen and its DINO pre-training.

    ``simulation``: treatment-screen simulation settings (``cellbench.simulate.treatments``,
    e.g. ``design: jump`` with more sources); ``exclude_sources``: sources left out of the pool;
    ``seed``: the pre-training's seed (one foundation for every experiment seed, as one ImageNet
    checkpoint serves every run); ``dino``: overrides of ``domain_adaptation.dino`` for the
    pre-training (e.g. ``steps``), the ViT itself cannot change (the checkpoint must fit it)."""

    simulation: dict
    exclude_sources: tuple[str, ...]
    seed: int
    dino: dict

    def check(self, path: str) -> None:
        from cellbench.ingest.sources import simulation

        simulation(self.simulation, f"{path}.simulation")
        if "vit" in (self.dino or {}):
            raise ConfigError(f"{path}.dino.vit: the pool's ViT is the experiment's (domain_adaptation.dino.vit); "
                              "a checkpoint of another architecture could not start the foundation")

    def check_apart(self, path: str, benchmark_simulation: dict | None) -> None:
        """A ``ConfigError`` when the pool would be drawn with the benchmark's own simulation seed
        (the same microscopes, plates and compounds)."""
        if benchmark_simulation is None:
            return
        mine, theirs = int(self.simulation.get("seed", 0)), int(benchmark_simulation.get("seed", 0))
        if mine == theirs:
            raise ConfigError(f"{path}.simulation.seed: {mine} is the benchmark's own simulation seed "
                              "(domain_adaptation.ingestion.simulation.seed); the pool must be another screen")


def pool_crops(config: PoolConfig):
    """The pool's crops: its simulated screen without ``exclude_sources``; a ``ValueError`` when an
    excluded source is not in the screen (a misspelt name would silently keep it) or nothing is left."""
    from cellbench.ingest.sources import IngestionConfig, ingest

    crops = ingest(IngestionConfig.from_params({"source": "simulation", "simulation": dict(config.simulation)},
                                               "domain_adaptation.pool")).materialize()
    sources = crops.metadata["Metadata_Source"].astype(str).to_numpy()
    missing = sorted(set(config.exclude_sources) - set(sources))
    if missing:
        raise ValueError(f"domain_adaptation.pool.exclude_sources: {missing} not in the pool's screen "
                         f"(its sources: {sorted(set(sources))})")
    keep = np.flatnonzero(~np.isin(sources, list(config.exclude_sources)))
    if len(keep) == 0:
        raise ValueError("domain_adaptation.pool.exclude_sources: every source excluded, no pool left")
    return crops.take(keep)


def pretrain_on_pool(crops, config: PoolConfig, dino, device) -> tuple[dict, dict]:
    """DINO on every pool cell, once. Returns ``(artefact, history)``: the artefact is a
    ``TorchModelDataset`` dict whose ``state_dict`` is the teacher backbone (the ViT that
    ``dino.pretrained`` loads: a file of it can be given there), with the pool's description."""
    from cellbench.representations.coda import dino_overridden, train_dino, vit_config

    settings = dino_overridden(dino, config.dino, "domain_adaptation.pool.dino", "those of domain_adaptation.dino: ")
    images = np.asarray(crops.images)
    meta = crops.metadata
    log.info("pool: DINO pre-training on %d cells of %d sources (%s), %d steps", len(images),
             meta["Metadata_Source"].nunique(), ", ".join(sorted(meta["Metadata_Source"].astype(str).unique())),
             settings.steps)
    state, history = train_dino(images, settings, config.seed, device)
    artefact = {"model": "vit", "config": vit_config(settings.vit, images.shape[1]),
                "state_dict": {k: v.detach().cpu() for k, v in state.teacher.backbone.state_dict().items()},
                "pool": {"cells": int(len(images)), "sources": sorted(meta["Metadata_Source"].astype(str).unique()),
                         "moas": sorted(meta["Metadata_MoA"].astype(str).unique()), "steps": int(settings.steps),
                         "seed": int(config.seed)}}
    return artefact, history


NO_POOL = {"model": "none", "config": {}, "state_dict": {}, "pool": {}}  # the artefact when the pool is off


def pool_foundation(config, device) -> tuple[dict, dict]:
    """``(artefact, history)`` of the pool's foundation for the CODA configuration ``config``
    (``domain_adaptation``): :data:`NO_POOL` and no history when ``config.pool`` is null; else
    :func:`pretrain_on_pool` on :func:`pool_crops`, cached by the pool's settings, the pool's
    pixels and the training code (a second experiment on the same pool does not pre-train again)."""
    from cellbench.training.cache import CODE_PACKAGES, cached_artefact

    if config.pool is None:
        log.info("pool: none (domain_adaptation.pool is null); the foundation starts from %s",
                 config.dino.pretrained or "scratch")
        return NO_POOL, {}
    crops = pool_crops(config.pool)
    return cached_artefact("pool_dino", pool_cache_key(config), crops,
                           lambda: pretrain_on_pool(crops, config.pool, config.dino, device),
                           CODE_PACKAGES + ("adaptation",))


def pool_cache_key(config) -> dict:
    """The model-cache key of the pool's foundation: the pool's settings and the DINO settings its
    pre-training reads (``domain_adaptation.dino`` under ``pool.dino``), without the experiment's
    ``dino.mae`` / ``dino.ttt`` (the TTT foundation's, never read by DINO). Session 16 found a
    workstation run pre-training the pool again because only ``dino.mae.steps`` had changed."""
    from cellbench.representations.coda import dino_overridden

    settings = dino_overridden(config.dino, config.pool.dino, "domain_adaptation.pool.dino").to_dict()
    return {"pool": config.pool.to_dict(), "dino": {k: v for k, v in settings.items() if k not in ("mae", "ttt")}}
