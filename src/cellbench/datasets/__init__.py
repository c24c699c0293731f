"""Custom Kedro datasets of cellbench (and nothing else)."""

from .crop_store import CropStoreDataset

__all__ = ["CropStoreDataset"]
