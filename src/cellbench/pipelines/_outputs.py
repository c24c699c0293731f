"""Outputs shared by the nodes that train models: loss curves as MLflow metric histories."""

from __future__ import annotations


def metric_histories(name: str, history: dict, max_points: int = 250) -> dict:
    """MLflow metric histories ``training/<name>/<metric>`` (thinned to ``max_points`` points)."""
    out = {}
    for metric, points in history.items():
        stride = max(1, len(points) // max_points)
        kept = points[::stride] if points[-1] in points[::stride] else points[::stride] + [points[-1]]
        out[f"training/{name}/{metric}"] = [{"step": int(s), "value": float(v)} for s, v in kept]
    return out


def learned_outputs(name: str, result) -> tuple:
    """``(feature tables, model artefact, metric histories)`` of a trained representation."""
    return result.layers, result.artefact, metric_histories(name, result.history)
