"""augment: class-balanced dataset augmentation with conditional GANs.

Plain functions and classes; orchestration (Prefect) lives in the separate `flows` package.
"""

from augment.version import __version__

__all__ = ["AugmentedImageFolder", "GANOverSampler", "__version__"]


def __getattr__(name: str):
    # `augment.GANOverSampler` and `augment.AugmentedImageFolder` without importing torch for every `import augment`
    if name == "GANOverSampler":
        from augment.sampler import GANOverSampler

        return GANOverSampler
    if name == "AugmentedImageFolder":
        from augment.torch_dataset import AugmentedImageFolder

        return AugmentedImageFolder
    raise AttributeError(f"module 'augment' has no attribute {name!r}")
