"""Hand-crafted single-cell features (pure numpy: arrays in, arrays / DataFrames out)."""

from .texture import HARALICK_NAMES, coos_texture_features, haralick, multichannel_texture_features

__all__ = ["HARALICK_NAMES", "coos_texture_features", "haralick", "multichannel_texture_features"]
