"""The package version: part of every run key and training-cache key, so a new version never reuses old results."""

__version__ = "0.2.0"
