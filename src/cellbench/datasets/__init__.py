"""Custom Kedro datasets of cellbench (and nothing else)."""

from .atomic import CSVDataset, MatplotlibDataset, ParquetDataset, TextDataset
from .bbbc021 import Bbbc021ProfilesDataset
from .crop_store import CropStoreDataset
from .feature_tables import FeatureTablesDataset
from .torch_model import TorchModelDataset

__all__ = ["Bbbc021ProfilesDataset", "CSVDataset", "CropStoreDataset", "FeatureTablesDataset", "MatplotlibDataset",
           "ParquetDataset", "TextDataset", "TorchModelDataset"]
