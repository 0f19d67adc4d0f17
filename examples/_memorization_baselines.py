"""The memorisation study's per-sample scores: the spectral detector and the baselines, on the same samples.

Not an example itself (see ``memorization.py``). Every score is oriented so that higher = more suspect. The
non-spectral perturbations are matched to the spectral ones in strength: for each cut-off ``k`` the Gaussian blur
(an FFT Gaussian, periodic like the bands) and the Gaussian pixel noise change the images by the same mean squared
pixel error as keeping only the ``k`` lowest bands does, so the comparison isolates *which* information is removed.
"""

import copy
import math

import torch
from torch import Tensor, nn

from iaside_lightning.functional import MemorizationOptions, band_masks, memorization_audit

__all__ = ["PixelSpace", "matched_sigmas", "margins", "perturbed_losses", "precise_copy", "snapshot_scores"]


class PixelSpace:
    """Normalised model inputs <-> pixels, for a single-channel ``(mean, std)``."""

    def __init__(self, normalization: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
        (self.mean,), (self.std,) = self.normalization = normalization

    def pixels(self, images: Tensor) -> Tensor:
        return images * self.std + self.mean

    def inputs(self, pixels: Tensor) -> Tensor:
        return (pixels - self.mean) / self.std


def precise_copy(model: nn.Module, images: Tensor, batch_size: int = 500) -> nn.Module:
    """A copy of ``model`` in eval mode whose BatchNorm statistics are recomputed on ``images`` (exact averages).

    The running averages a fit leaves behind lag the weights; evaluating memorisation with them understates how
    many labels are fitted (MNIST-5k, width 32: 18% vs 40% at epoch 20).
    """
    copied = copy.deepcopy(model)
    norms = [m for m in copied.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    copied.train()
    with torch.no_grad():
        for batch in images.split(batch_size):
            copied(batch)
    return copied.eval()


def _logits(model: nn.Module, images: Tensor, batch_size: int = 1000) -> Tensor:
    with torch.inference_mode():
        return torch.cat([model(batch) for batch in images.split(batch_size)]).double()


def margins(logits: Tensor, labels: Tensor) -> Tensor:
    """``z_y - max_{j != y} z_j`` per sample (Pleiss et al.'s margin; negative = another class wins)."""
    own = logits.gather(1, labels[:, None]).squeeze(1)
    return own - logits.scatter(1, labels[:, None], -math.inf).max(1).values


def _lowpass(pixels: Tensor, keep: int, num_bands: int) -> Tensor:
    masks = band_masks(pixels.shape[-2], pixels.shape[-1], num_bands)[:keep].any(0)
    return torch.fft.irfft2(torch.fft.rfft2(pixels.double()) * masks, s=pixels.shape[-2:])


def _blur(pixels: Tensor, sigma: float) -> Tensor:
    height, width = pixels.shape[-2:]
    fy, fx = torch.fft.fftfreq(height, dtype=torch.float64)[:, None], torch.fft.rfftfreq(width, dtype=torch.float64)
    transfer = torch.exp(-2 * math.pi**2 * sigma**2 * (fy**2 + fx**2))
    return torch.fft.irfft2(torch.fft.rfft2(pixels.double()) * transfer, s=(height, width))


def matched_sigmas(pixels: Tensor, cutoffs: tuple[int, ...], num_bands: int) -> list[tuple[float, float]]:
    """For each cut-off: (blur sigma in pixels, noise std) giving the low-pass's mean squared pixel error.

    The blur's error grows with sigma; it is matched by bisection on the images' mean error.
    """
    matched = []
    for k in cutoffs:
        target = float((_lowpass(pixels, k, num_bands) - pixels).pow(2).mean())
        low, high = 0.0, 20.0
        for _ in range(40):
            mid = (low + high) / 2
            low, high = (mid, high) if float((_blur(pixels, mid) - pixels).pow(2).mean()) < target else (low, mid)
        matched.append(((low + high) / 2, math.sqrt(target)))
    return matched


def perturbed_losses(
    model: nn.Module, pixels: Tensor, labels: Tensor, space: PixelSpace, sigmas: list[tuple[float, float]], seed: int
) -> tuple[Tensor, Tensor]:
    """Per-sample losses ``[B, K]`` under the matched blur and the matched Gaussian noise (one seeded draw)."""
    generator = torch.Generator().manual_seed(seed)
    blur, noise = [], []
    for sigma, std in sigmas:
        blurred = space.inputs(_blur(pixels, sigma).float())
        noisy = space.inputs(pixels + std * torch.randn(pixels.shape, generator=generator))
        for images, out in ((blurred, blur), (noisy, noise)):
            out.append(-_logits(model, images).log_softmax(1).gather(1, labels[:, None]).squeeze(1))
    return torch.stack(blur, 1), torch.stack(noise, 1)


def snapshot_scores(
    model: nn.Module, images: Tensor, labels: Tensor, space: PixelSpace, sigmas: list[tuple[float, float]],
    seed: int, ablations: bool,
) -> dict[str, Tensor]:
    """Per-sample arrays of one snapshot (float32 ``[B]`` or ``[B, K]``): the logits-based baselines, the spectral
    low-pass losses at every cut-off (M = 8, zero fill; with ``ablations`` also permute fill and M = 6) and the
    matched blur and noise losses."""
    logits = _logits(model, images)
    out = {
        "loss": -logits.log_softmax(1).gather(1, labels[:, None]).squeeze(1),
        "neg_margin": -margins(logits, labels),
        "correct": (logits.argmax(1) == labels).double(),
    }
    settings = [("zero8", 8, "zero")] + ([("permute8", 8, "permute"), ("zero6", 6, "zero")] if ablations else [])
    for name, num_bands, fill in settings:
        options = MemorizationOptions(num_bands=num_bands, fill=fill, normalization=space.normalization, seed=seed)
        audit = memorization_audit(model, images, labels, options)
        out[f"lowpass_{name}"], out[f"score_{name}"] = -audit.lowpass_values, audit.scores
    out["blur"], out["noise"] = perturbed_losses(model, space.pixels(images), labels, space, sigmas, seed)
    return {key: value.float() for key, value in out.items()}
