"""Result tables and figures (pure: data in, DataFrame / Markdown / matplotlib Figure out)."""

from .figures import (
    composite_rgb,
    confusion_figure,
    crop_montage,
    error_by_split_figure,
)
from .tables import benchmark_markdown

__all__ = [
    "benchmark_markdown",
    "composite_rgb",
    "confusion_figure",
    "crop_montage",
    "error_by_split_figure",
]
