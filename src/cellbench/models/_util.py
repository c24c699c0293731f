from __future__ import annotations


def scaled(channels: int, width: float) -> int:
    """``channels`` scaled by a width multiplier (at least 1); width 1 is the published network."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return max(1, int(round(channels * width)))
