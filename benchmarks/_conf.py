"""``conf/base`` parameters for the benchmark scripts (read from the repository, whatever the cwd)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def base_params(name: str) -> dict:
    """The ``name`` section of ``conf/base/parameters_<name>.yml`` (e.g. ``evaluation``)."""
    path = ROOT / "conf" / "base" / f"parameters_{name}.yml"
    return yaml.safe_load(path.read_text())[name]
