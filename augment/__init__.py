"""augment: class-balanced dataset augmentation with conditional GANs.

Plain functions and classes; orchestration (Prefect) lives in the separate `flows` package.
"""

__version__ = "0.1.0"
