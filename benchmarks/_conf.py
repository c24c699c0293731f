"""``conf/base`` parameters for the benchmark scripts (read from the repository, whatever the cwd)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def base_params(name: str) -> dict:
    """The ``name`` section of ``conf/base/parameters_<name>.yml`` (e.g. ``evaluation``)."""
    path = ROOT / "conf" / "base" / f"parameters_{name}.yml"
    return yaml.safe_load(path.read_text())[name]


def merge(base: dict, over: dict) -> dict:
    """``over`` deep-merged into ``base`` (Kedro's soft merge of an environment over conf/base)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def env_params(name: str, env: str | None = None) -> dict:
    """The ``name`` section of conf/base with conf/<env>'s ``parameters_<name>.yml`` merged over it."""
    params = base_params(name)
    path = ROOT / "conf" / str(env) / f"parameters_{name}.yml"
    if env and path.is_file():
        params = merge(params, (yaml.safe_load(path.read_text()) or {}).get(name, {}))
    return params
