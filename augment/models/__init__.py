"""GAN backbones and the variant registry; importing this package registers every variant."""

from augment.models import acgan  # noqa: F401  (registers 'acgan')
from augment.models.registry import VARIANTS, DataShape, Variant, get_variant

__all__ = ["VARIANTS", "DataShape", "Variant", "get_variant"]
