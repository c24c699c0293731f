"""A cache of trained representations, keyed by what determines them: the method, its validated
configuration, the crops (pixels and metadata) and the code that trains it.

A re-run that changes only evaluation parameters (classifiers, profiling recipes, figures) then
loads the trained network, its feature tables and its training history instead of training
again. Key: ``sha256(method, configuration, data fingerprint, code fingerprint)`` with

* data fingerprint: BLAKE2b of the crops' pixels (in batches, with shape and dtype) and of the
  metadata (``pandas.util.hash_pandas_object`` of the rows, and the column names);
* code fingerprint: BLAKE2b of the source files of ``cellbench.representations``,
  ``cellbench.models`` and ``cellbench.training`` (any change to them retrains).

An entry is a folder ``<key>/`` holding ``artefact.pt`` (``torch.save``, loaded weights-only),
``layer_<name>.parquet`` and ``history.json``; it is written to a temporary folder and renamed
into place, so a killed run leaves no half entry. ``CELLBENCH_MODEL_CACHE`` names the folder
(default ``data/06_models/cache``); ``CELLBENCH_MODEL_CACHE=off`` turns the cache off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import torch

log = logging.getLogger(__name__)

DEFAULT_DIR = "data/06_models/cache"
CODE_PACKAGES = ("representations", "models", "training")


def cache_dir() -> Path | None:
    """The cache folder (``CELLBENCH_MODEL_CACHE``, default ``data/06_models/cache``), or ``None`` when off."""
    value = os.environ.get("CELLBENCH_MODEL_CACHE", DEFAULT_DIR)
    return None if value.strip().lower() in ("", "off", "0", "false", "none") else Path(value)


def data_fingerprint(crops) -> str:
    """BLAKE2b of the crops' pixels (shape, dtype, values) and metadata (rows and column names)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(repr((tuple(crops.shape), str(crops.dtype))).encode())
    for _, batch in crops.batches(4096):
        h.update(np.ascontiguousarray(batch).tobytes())
    meta = crops.metadata
    h.update(json.dumps([str(c) for c in meta.columns]).encode())
    h.update(pd.util.hash_pandas_object(meta.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def code_fingerprint(packages: tuple[str, ...] = CODE_PACKAGES) -> str:
    """BLAKE2b of the source of the packages that train a representation."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.blake2b(digest_size=20)
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def cache_key(method: str, config, crops, packages: tuple[str, ...] = CODE_PACKAGES) -> str:
    """The entry's name: sha256 of the method, the configuration (a dataclass or a plain dict), the
    data and the code of ``packages``."""
    payload = {"method": method, "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config,
               "data": data_fingerprint(crops), "code": code_fingerprint(packages)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load(folder: Path, key: str, config):
    """The cached ``Representation`` of ``key`` (network rebuilt from its artefact), or ``None``."""
    from cellbench.representations._common import Representation, rebuild

    entry = folder / key
    if not (entry / "history.json").is_file():
        return None
    try:
        artefact = torch.load(entry / "artefact.pt", map_location="cpu", weights_only=True)
        layers = {p.stem.removeprefix("layer_"): pd.read_parquet(p) for p in sorted(entry.glob("layer_*.parquet"))}
        history = {k: [tuple(x) for x in v] for k, v in json.loads((entry / "history.json").read_text()).items()}
        return Representation(layers, rebuild(artefact), config, history, artefact)
    except Exception as exc:  # an unreadable entry is not fatal: train again and replace it
        log.warning("model cache: entry %s unreadable (%s); training again", entry, exc)
        return None


def store(folder: Path, key: str, rep) -> None:
    """Write ``rep`` as the entry ``key`` (temporary folder, then rename: never half-written)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        tmp.mkdir()
        torch.save(rep.artefact, tmp / "artefact.pt")
        for name, table in rep.layers.items():
            table.to_parquet(tmp / f"layer_{name}.parquet", index=False)
        (tmp / "history.json").write_text(json.dumps({k: [list(map(float, x)) for x in v]
                                                      for k, v in rep.history.items()}))
        if (folder / key).exists():
            shutil.rmtree(folder / key)
        tmp.rename(folder / key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_represent(method: str, config, crops, train):
    """``train()`` unless the cache holds this (method, config, data, code); stores what it trains.

    Only representations with a saved artefact (trained networks) are cached; on a torchrun
    secondary rank nothing is written."""
    folder = cache_dir()
    if folder is None:
        return train()
    key = cache_key(method, config, crops)
    hit = load(folder, key, config)
    if hit is not None:
        log.info("model cache: %s loaded from %s (same configuration, data and code; no training)", method,
                 folder / key)
        return hit
    rep = train()
    from cellbench.hooks import secondary_rank

    if rep.artefact is not None and not secondary_rank():
        store(folder, key, rep)
        log.info("model cache: %s stored as %s", method, folder / key)
    return rep


def cached_artefact(method: str, config, crops, train, packages: tuple[str, ...] = CODE_PACKAGES):
    """``(artefact, history)`` of ``train()``, a network trained outside the representation
    protocol (e.g. the pre-training pool's foundation), unless the cache holds this (method,
    config, data, code of ``packages``). The entry is ``<key>.pt``: ``{"artefact", "history"}``
    saved by ``torch.save`` and loaded weights-only, written to a temporary file then renamed."""
    folder = cache_dir()
    if folder is None:
        return train()
    path = folder / f"{cache_key(method, config, crops, packages)}.pt"
    if path.is_file():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            log.info("model cache: %s loaded from %s (same configuration, data and code; no training)", method, path)
            return entry["artefact"], {k: [tuple(x) for x in v] for k, v in entry["history"].items()}
        except Exception as exc:
            log.warning("model cache: entry %s unreadable (%s); training again", path, exc)
    artefact, history = train()
    from cellbench.hooks import secondary_rank

    if not secondary_rank():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            torch.save({"artefact": artefact, "history": {k: [list(map(float, x)) for x in v]
                                                          for k, v in history.items()}}, tmp)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("model cache: %s stored as %s", method, path)
    return artefact, history
