"""A common-corruption suite: Gaussian noise, shot noise, Gaussian blur, contrast and JPEG, at severities 1-5, and
three more (brightness, fog, elastic distortion) for studies that need corruptions held out from a suite.

Pure tensor functions of images ``[B, C, H, W]`` in ``[0, 1]`` (pixel space, not normalised) that return new images
of the same shape, dtype and device, in ``[0, 1]``. The random ones take a ``seed``: the same seed gives the same
corruption. Severity parameters follow ImageNet-C (Hendrycks & Dietterich, 2019) where they do not depend on the
image size (noise, contrast, JPEG quality, brightness); the blur's standard deviation, the fog and the elastic
distortion are set for 28-32 pixel images.
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
    "EXTRA_CORRUPTIONS",
    "SEVERITIES",
    "brightness",
    "contrast",
    "corrupt",
    "elastic",
    "fog",
    "gaussian_blur",
    "gaussian_noise",
    "jpeg",
    "shot_noise",
]

Corruption = Literal[
    "gaussian_noise", "shot_noise", "gaussian_blur", "contrast", "jpeg", "brightness", "fog", "elastic"
]
#: The suite.
CORRUPTIONS: tuple[str, ...] = ("gaussian_noise", "shot_noise", "gaussian_blur", "contrast", "jpeg")
#: Further corruptions :func:`corrupt` applies, outside the suite (ImageNet-C's weather and digital kinds).
EXTRA_CORRUPTIONS: tuple[str, ...] = ("brightness", "fog", "elastic")
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
#: Intensity added to every pixel (ImageNet-C adds it to the HSV value, the same for grey images).
BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)
#: Weight of the fog layer against the image (the output is ``(x + w fog) / (1 + w)``).
FOG_WEIGHT = (0.5, 0.75, 1.0, 1.5, 2.0)
#: The fog's amplitude spectrum falls as ``1 / f^FOG_DECAY``: smooth clouds, most of their power below 0.1 cycles/px.
FOG_DECAY = 1.5
#: Scale ``alpha`` of the elastic displacement field in pixels (Simard et al., 2003, used 34 with ``sigma`` 4 on MNIST).
ELASTIC_ALPHA = (10.0, 15.0, 20.0, 27.0, 34.0)
#: Standard deviation in pixels of the Gaussian that smooths the elastic displacement field.
ELASTIC_SIGMA = 4.0


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


def brightness(images: Tensor, severity: int = 3) -> Tensor:
    """Brighten: add 0.1 to 0.5 to every pixel and clip to ``[0, 1]`` (ImageNet-C's brightness on grey images).

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``.
        severity: 1 (mild) to 5 (strong).

    Example:
        >>> brightness(torch.tensor([[[[0.0, 0.8]]]]), severity=3)
        tensor([[[[0.3000, 1.0000]]]])
    """
    return (images + BRIGHTNESS_SHIFT[_check(images, severity) - 1]).clamp(0.0, 1.0)


def fog(images: Tensor, severity: int = 3, seed: int = 0) -> Tensor:
    """Lay a seeded fog over the images: ``(x + w fog) / (1 + w)`` with ``w`` = 0.5 to 2.

    The fog (one per image, shared by its channels) is Gaussian noise whose amplitude spectrum falls as
    ``1 / f^1.5``, scaled to ``[0, 1]`` per image: a low-frequency corruption, where the suite's noises are broadband
    and its blur removes high frequencies (ImageNet-C draws its fog from a plasma fractal, with a similar spectrum).

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``, at least 2 x 2 pixels.
        severity: 1 (mild) to 5 (strong).
        seed: seed of the fog.

    Example:
        >>> foggy = fog(torch.zeros(2, 1, 16, 16), severity=5)
        >>> round(float(foggy.min()), 6), round(float(foggy.max()), 6)  # fog scaled to [0, 1], weight 2 / 3
        (0.0, 0.666667)
    """
    weight = FOG_WEIGHT[_check(images, severity) - 1]
    batch, height, width = images.shape[0], *images.shape[-2:]
    if min(height, width) < 2:
        raise ValueError(f"fog needs images of at least 2x2 pixels, got {tuple(images.shape[-2:])}.")
    radius = torch.fft.fftfreq(height, dtype=torch.float64)[:, None].hypot(
        torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    )
    amplitude = torch.where(radius > 0, radius.clamp_min(1e-12) ** -FOG_DECAY, torch.zeros_like(radius))
    spectrum = torch.randn(batch, 1, *radius.shape, 2, generator=_generator(seed), dtype=torch.float64)
    layer = torch.fft.irfft2(torch.view_as_complex(spectrum) * amplitude, s=(height, width))
    low = layer.amin(dim=(-2, -1), keepdim=True)
    layer = (layer - low) / (layer.amax(dim=(-2, -1), keepdim=True) - low)
    return ((images + weight * layer.to(images)) / (1.0 + weight)).clamp(0.0, 1.0)


def elastic(images: Tensor, severity: int = 3, seed: int = 0) -> Tensor:
    """Elastic distortion (Simard et al., 2003): resample each image along a seeded, smooth displacement field.

    Each pixel's displacement (in pixels, per axis) is ``alpha`` times uniform noise in ``[-1, 1]`` smoothed by a
    Gaussian of std 4 pixels, ``alpha`` = 10 to 34; bilinear interpolation, edges extended. One field per image,
    shared by its channels. Root-mean-square displacements on 28 x 28 images are about 0.4 to 1.4 pixels.

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``, at least 2 x 2 pixels.
        severity: 1 (mild) to 5 (strong).
        seed: seed of the displacement field.

    Example:
        >>> x = torch.rand(2, 3, 28, 28)
        >>> moved = elastic(x, severity=5)
        >>> moved.shape, bool(elastic(torch.full_like(x, 0.3)).sub(0.3).abs().max() < 1e-6)  # flat stays flat
        (torch.Size([2, 3, 28, 28]), True)
    """
    alpha = ELASTIC_ALPHA[_check(images, severity) - 1]
    batch, height, width = images.shape[0], *images.shape[-2:]
    if min(height, width) < 2:
        raise ValueError(f"elastic needs images of at least 2x2 pixels, got {tuple(images.shape[-2:])}.")
    half_width = math.ceil(3 * ELASTIC_SIGMA)
    taps = torch.arange(-half_width, half_width + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / ELASTIC_SIGMA) ** 2)
    kernel = kernel / kernel.sum()
    noise = torch.rand(batch * 2, 1, height, width, generator=_generator(seed), dtype=torch.float64) * 2 - 1
    smooth = torch.nn.functional.conv2d(noise, kernel.view(1, 1, -1, 1), padding=(half_width, 0))
    smooth = torch.nn.functional.conv2d(smooth, kernel.view(1, 1, 1, -1), padding=(0, half_width))
    shift = alpha * smooth.view(batch, 2, height, width)  # pixels: (rows, columns)
    rows = torch.arange(height, dtype=torch.float64)[:, None] + shift[:, 0]
    cols = torch.arange(width, dtype=torch.float64)[None, :] + shift[:, 1]
    grid = torch.stack((cols * 2 / (width - 1) - 1, rows * 2 / (height - 1) - 1), dim=-1)  # (x, y) in [-1, 1]
    moved = torch.nn.functional.grid_sample(
        images, grid.to(images), mode="bilinear", padding_mode="border", align_corners=True
    )
    return moved.clamp(0.0, 1.0)


_DETERMINISTIC: dict[str, Callable[[Tensor, int], Tensor]] = {
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "jpeg": jpeg,
    "brightness": brightness,
}
_RANDOM: dict[str, Callable[[Tensor, int, int], Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "fog": fog,
    "elastic": elastic,
}


def corrupt(images: Tensor, name: Corruption, severity: int = 3, seed: int = 0) -> Tensor:
    """Apply the corruption called ``name`` (of :data:`CORRUPTIONS` or :data:`EXTRA_CORRUPTIONS`) at a severity 1-5.

    Args:
        images: float tensor ``[B, C, H, W]`` in ``[0, 1]``.
        name: ``"gaussian_noise"``, ``"shot_noise"``, ``"gaussian_blur"``, ``"contrast"``, ``"jpeg"`` (the suite),
            ``"brightness"``, ``"fog"`` or ``"elastic"``.
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
    raise ValueError(f"Unknown corruption {name!r}; choose one of {CORRUPTIONS + EXTRA_CORRUPTIONS}.")


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
