"""Parameter dicts (from ``parameters_*.yml``) to design dataclasses, rejecting unknown keys."""

from __future__ import annotations

from dataclasses import fields


def reject_unknown(keys, cls, what: str) -> None:
    """Raise ``ValueError`` listing the keys that are not fields of dataclass ``cls``."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(keys) - known)
    if unknown:
        raise ValueError(f"unknown {what} parameter(s) {unknown}; known: {sorted(known)}")
