"""GAN backbones and the variant registry; importing this package registers every variant."""

from augment.models import acgan, cgan, dcgan, gan_cls, latent_smote, mixing  # noqa: F401  (each registers itself)
from augment.models.registry import (
    VARIANTS,
    DataShape,
    StepContext,
    Variant,
    get_variant,
    register_variant,
    unregister_variant,
)

__all__ = ["VARIANTS", "DataShape", "StepContext", "Variant", "get_variant", "register_variant", "unregister_variant"]
