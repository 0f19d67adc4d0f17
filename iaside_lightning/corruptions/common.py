"""A common-corruption suite: Gaussian noise, shot noise, Gaussian blur, contrast and JPEG, at severities 1-5.

Pure tensor functions of images ``[B, C, H, W]`` in ``[0, 1]`` (pixel space, not normalised) that return new images
of the same shape, dtype and device, in ``[0, 1]``. The random ones take a ``seed``: the same seed gives the same
corruption. Severity parameters follow ImageNet-C (Hendrycks & Dietterich, 2019) where they do not depend on the
image size (noise, contrast, JPEG quality); the blur's standard deviation in pixels is set for 28-32 pixel images.
"""

import io
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = [
    "CORRUPTIONS",
    "Corruption",
    "SEVERITIES",
    "contrast",
    "corrupt",
    "gaussian_blur",
    "gaussian_noise",
    "jpeg",
    "shot_noise",
]

Corruption = Literal["gaussian_noise", "shot_noise", "gaussian_blur", "contrast", "jpeg"]
CORRUPTIONS: tuple[str, ...] = ("gaussian_noise", "shot_noise", "gaussian_blur", "contrast", "jpeg")
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

#: Standard deviation of the added noise (ImageNet-C).
GAUSSIAN_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
#: Photons per unit intensity of the Poisson noise: fewer photons, more noise (ImageNet-C).
SHOT_NOISE_PHOTONS = (60.0, 25.0, 12.0, 5.0, 3.0)
#: Standard deviation of the blur kernel in pixels (CIFAR-10-C's 0.4-1.0, extended for stronger blur).
BLUR_SIGMA = (0.5, 0.75, 1.0, 1.5, 2.0)
#: Factor applied to each image's deviation from its mean intensity (ImageNet-C).
CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
#: JPEG quality (ImageNet-C).
JPEG_QUALITY = (25, 18, 15, 10, 7)


def gaussian_noise(images: Tensor, severity: int = 3, seed: int = 0) -> Tensor:
    """Add white Gaussian noise (std 0.08 to 0.38 for severities 1 to 5) and clip to ``[0, 1]``.

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``.
        severity: 1 (mild) to 5 (strong).
        seed: seed of the noise.

    Example:
        >>> noisy = gaussian_noise(torch.full((2, 1, 8, 8), 0.5), severity=1)
        >>> 0.05 < float(noisy.std()) < 0.11, float(noisy.min()) >= 0.0
        (True, True)
    """
    std = GAUSSIAN_NOISE_STD[_check(images, severity) - 1]
    noise = torch.randn(images.shape, generator=_generator(seed), dtype=torch.float64)
    return (images + std * noise.to(images)).clamp(0.0, 1.0)


def shot_noise(images: Tensor, severity: int = 3, seed: int = 0) -> Tensor:
    """Poisson (photon) noise: ``Poisson(x * n) / n`` with ``n`` = 60 down to 3 photons, clipped to ``[0, 1]``.

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``.
        severity: 1 (mild) to 5 (strong).
        seed: seed of the noise.

    Example:
        >>> noisy = shot_noise(torch.zeros(1, 1, 8, 8), severity=5)
        >>> bool((noisy == 0).all())  # no light, no photon noise
        True
    """
    photons = SHOT_NOISE_PHOTONS[_check(images, severity) - 1]
    counts = torch.poisson(images.detach().to("cpu", torch.float64) * photons, generator=_generator(seed))
    return (counts / photons).to(images).clamp(0.0, 1.0)


def gaussian_blur(images: Tensor, severity: int = 3) -> Tensor:
    """Blur with a Gaussian kernel of std 0.5 to 2 pixels, ``2 * ceil(3 std) + 1`` pixels wide, reflecting edges.

    Uses :func:`torchvision.transforms.functional.gaussian_blur`.

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``, at least ``ceil(3 std) + 1`` pixels in each direction.
        severity: 1 (mild) to 5 (strong).

    Raises:
        ValueError: if the images are smaller than the kernel's half-width allows.

    Example:
        >>> x = torch.zeros(1, 1, 9, 9)
        >>> x[..., 4, 4] = 1.0
        >>> blurred = gaussian_blur(x, severity=1)
        >>> round(float(blurred.sum()), 4), float(blurred.max()) < 1.0
        (1.0, True)
    """
    from torchvision.transforms.functional import gaussian_blur as blur

    sigma = BLUR_SIGMA[_check(images, severity) - 1]
    half_width = math.ceil(3 * sigma)
    if min(images.shape[-2:]) <= half_width:
        raise ValueError(
            f"gaussian_blur at severity {severity} (std {sigma} px) reflects {half_width} pixels at the edges and "
            f"needs images of at least {half_width + 1}x{half_width + 1} pixels, got {tuple(images.shape[-2:])}."
        )
    return blur(images, kernel_size=[2 * half_width + 1] * 2, sigma=[sigma, sigma]).clamp(0.0, 1.0)


def contrast(images: Tensor, severity: int = 3) -> Tensor:
    """Reduce contrast: ``mean + c (x - mean)`` with ``c`` = 0.4 down to 0.05, ``mean`` each image's mean intensity.

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``.
        severity: 1 (mild) to 5 (strong).

    Example:
        >>> x = torch.tensor([[[[0.0, 1.0]]]])
        >>> contrast(x, severity=1)
        tensor([[[[0.3000, 0.7000]]]])
    """
    factor = CONTRAST_FACTOR[_check(images, severity) - 1]
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + factor * (images - mean)).clamp(0.0, 1.0)


def jpeg(images: Tensor, severity: int = 3) -> Tensor:
    """JPEG compression at quality 25 down to 7 with Pillow (as ImageNet-C; torchvision's own codecs are deprecated).

    Pixels are rounded to 8 bits before encoding, as a saved image would be.

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]`` with 1 (grey) or 3 (RGB) channels.
        severity: 1 (mild) to 5 (strong).

    Raises:
        ValueError: if the images have neither 1 nor 3 channels.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> compressed = jpeg(x, severity=5)
        >>> compressed.shape, float((compressed - x).abs().mean()) > 0.01
        (torch.Size([2, 3, 16, 16]), True)
    """
    quality = JPEG_QUALITY[_check(images, severity) - 1]
    if images.shape[1] not in (1, 3):
        raise ValueError(f"jpeg needs grey (1) or RGB (3) channels, got {images.shape[1]} channels.")
    pixels = (images.detach().to("cpu", torch.float64) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    decoded = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "JPEG", quality=quality)
        decoded.append(np.asarray(Image.open(buffer)).reshape(image.shape))
    return (torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).to(torch.float64) / 255).to(images)


_DETERMINISTIC: dict[str, Callable[[Tensor, int], Tensor]] = {
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "jpeg": jpeg,
}
_RANDOM: dict[str, Callable[[Tensor, int, int], Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
}


def corrupt(images: Tensor, name: Corruption, severity: int = 3, seed: int = 0) -> Tensor:
    """Apply the corruption called ``name`` (one of :data:`CORRUPTIONS`) at a severity from 1 to 5.

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``.
        name: ``"gaussian_noise"``, ``"shot_noise"``, ``"gaussian_blur"``, ``"contrast"`` or ``"jpeg"``.
        severity: 1 (mild) to 5 (strong).
        seed: seed of the random corruptions (ignored by the deterministic ones).

    Returns:
        The corrupted images: same shape, dtype and device, in ``[0, 1]``.

    Raises:
        TypeError: if ``images`` is not a 4-D floating-point tensor.
        ValueError: if ``name`` or ``severity`` is unknown or the images leave ``[0, 1]``.

    Example:
        >>> x = torch.rand(4, 1, 28, 28)
        >>> [tuple(corrupt(x, name, severity=2).shape) for name in CORRUPTIONS] == [(4, 1, 28, 28)] * 5
        True
    """
    if name in _RANDOM:
        return _RANDOM[name](images, severity, seed)
    if name in _DETERMINISTIC:
        return _DETERMINISTIC[name](images, severity)
    raise ValueError(f"Unknown corruption {name!r}; choose one of {CORRUPTIONS}.")


def _check(images: Tensor, severity: int) -> int:
    """Validate the images and the severity; return the severity."""
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise TypeError(f"`images` must be a 4-D floating-point tensor [B, C, H, W] in [0, 1], got {got}.")
    if images.numel() and not bool(((images >= 0) & (images <= 1)).all()):
        raise ValueError(
            "`images` must lie in [0, 1] (pixel space); undo the normalisation first, e.g. `x * std + mean`, "
            f"got values from {float(images.min()):.3g} to {float(images.max()):.3g}."
        )
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise ValueError(f"`severity` must be an integer from 1 to 5, got {severity!r}.")
    return severity


def _generator(seed: int) -> torch.Generator:
    """A CPU generator: the noise is drawn on the CPU so that a seed gives the same noise on every device."""
    return torch.Generator().manual_seed(seed)
