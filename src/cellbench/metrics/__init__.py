"""Metrics: classification (balanced error, confusion, sensitivity)."""

from .classification import balanced_error, confusion_matrix, per_class_sensitivity

__all__ = ["balanced_error", "confusion_matrix", "per_class_sensitivity"]
