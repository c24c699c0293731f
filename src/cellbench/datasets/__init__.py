"""Custom Kedro datasets of cellbench (and nothing else)."""

from .bbbc021 import Bbbc021ProfilesDataset
from .crop_store import CropStoreDataset

__all__ = ["Bbbc021ProfilesDataset", "CropStoreDataset"]
