"""Data sets shared by the tasks: loaders, splits and the classification data module."""

from .datamodule import ImageDataModule
from .errors import DataCorruptError, DataError, DataMissingError
from .registry import DATASETS, DatasetInfo, UnknownDatasetError, get_dataset_info, resolve_data_root

__all__ = [
    "DATASETS",
    "DataCorruptError",
    "DataError",
    "DataMissingError",
    "DatasetInfo",
    "ImageDataModule",
    "UnknownDatasetError",
    "get_dataset_info",
    "resolve_data_root",
]
