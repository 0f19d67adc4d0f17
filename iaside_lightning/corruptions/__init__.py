"""Perturbations of images in ``[0, 1]``: a seeded common-corruption suite and L-inf adversarial attacks."""

from iaside_lightning.corruptions.adversarial import fgsm, pgd
from iaside_lightning.corruptions.common import (
    CORRUPTIONS,
    SEVERITIES,
    contrast,
    corrupt,
    gaussian_blur,
    gaussian_noise,
    jpeg,
    shot_noise,
)

__all__ = [
    "CORRUPTIONS",
    "SEVERITIES",
    "contrast",
    "corrupt",
    "fgsm",
    "gaussian_blur",
    "gaussian_noise",
    "jpeg",
    "pgd",
    "shot_noise",
]
