"""Datasets: readers per format, validation, normalisation and fingerprints -> `LabeledImages`."""

from augment.data.labeled import LabeledImages
from augment.data.readers import digits_lt, load_dataset

__all__ = ["LabeledImages", "load_dataset", "digits_lt"]
