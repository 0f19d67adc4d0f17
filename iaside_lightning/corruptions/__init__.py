"""Perturbations of images in ``[0, 1]``: a seeded common-corruption suite and L-inf adversarial attacks."""

from iaside_lightning.corruptions.adversarial import fgsm, pgd
from iaside_lightning.corruptions.common import (
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    SEVERITIES,
    brightness,
    contrast,
    corrupt,
    elastic,
    fog,
    gaussian_blur,
    gaussian_noise,
    jpeg,
    shot_noise,
)

__all__ = [
    "CORRUPTIONS",
    "EXTRA_CORRUPTIONS",
    "SEVERITIES",
    "brightness",
    "contrast",
    "corrupt",
    "elastic",
    "fgsm",
    "fog",
    "gaussian_blur",
    "gaussian_noise",
    "jpeg",
    "pgd",
    "shot_noise",
]
