"""The naive per-coalition I-ASIDE algorithm, as the authors' research code does it: the benchmarks' baseline.

For every coalition ``S`` of frequency bands it takes the full 2-D FFT of the batch, multiplies it by the
coalition's 0/1 mask on the full (not half) frequency grid, inverts the FFT, keeps the real part and runs the model.
Nothing is shared between coalitions except the forward batch: ``chunk_size`` coalitions of the batch go through the
model together (``chunk_size=1``: the batch as the user gives it, the textbook way). The masks are symmetric, so the real part
is the whole image (no ``.abs()``, no rescaling).

Only the paper's default options are implemented (square bands, linear edges, zero fill, log-probability value).
Band membership and Shapley weights are computed here from their definitions (integer arithmetic on frequency
indices, an explicit sum over coalitions), independently of :mod:`iaside_lightning`, so the two implementations
check each other.
"""

import math
from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["full_grid_masks", "naive_coalition_values", "naive_shapley"]


def full_grid_masks(height: int, width: int, num_bands: int = 8) -> Tensor:
    """Band masks ``[M, H, W]`` on the full ``fft2`` grid.

    Frequency ``(k_y / H, k_x / W)`` (signed integer indices) has normalised radius
    ``rho = 2 max(|k_y| / H, |k_x| / W)`` and lies in band ``floor(M rho)`` (``rho = 1`` in the last band), i.e.
    ``k / M <= rho < (k + 1) / M``, computed exactly in integers.

    Example:
        >>> masks = full_grid_masks(8, 8, num_bands=2)
        >>> masks.shape, int(masks.sum())  # every frequency in exactly one band
        (torch.Size([2, 8, 8]), 64)
        >>> masks[0, :, 0].int().tolist()  # |k_y| = 0, 1 are below rho = 1/2
        [1, 1, 0, 0, 0, 0, 0, 1]
    """
    k_y = torch.tensor([min(k, height - k) for k in range(height)])[:, None]
    k_x = torch.tensor([min(k, width - k) for k in range(width)])[None, :]
    band = torch.maximum(2 * num_bands * k_y // height, 2 * num_bands * k_x // width).clamp(max=num_bands - 1)
    return band[None] == torch.arange(num_bands)[:, None, None]


def naive_coalition_values(
    model: nn.Module, images: Tensor, labels: Tensor, num_bands: int = 8, chunk_size: Optional[int] = None
) -> Tensor:
    """Per-sample log-probability of the label on every coalition image, one FFT round trip per coalition.

    The model must already be in eval mode; it runs under :func:`torch.inference_mode`.

    Args:
        model: classifier ``[N, C, H, W] -> [N, K]`` logits.
        images: ``[B, C, H, W]`` float images.
        labels: ``[B]`` class indices.
        num_bands: number of bands ``M``; coalition ``s`` holds band ``k`` iff bit ``k`` of ``s`` is set.
        chunk_size: coalitions per forward pass (``chunk_size * B`` images); default ``256 // B`` (at least 1, at
            most ``2^M``), the engine's former default.

    Returns:
        Float64 tensor ``[B, 2^M]``.

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
        >>> naive_coalition_values(model, torch.rand(2, 3, 8, 8), torch.tensor([0, 3]), num_bands=2).shape
        torch.Size([2, 4])
    """
    batch = images.shape[0]
    num_coalitions = 2**num_bands
    size = chunk_size if chunk_size is not None else max(1, min(num_coalitions, 256 // batch))
    masks = full_grid_masks(images.shape[-2], images.shape[-1], num_bands).to(images.device)
    out = torch.empty(batch, num_coalitions, dtype=torch.float64, device=images.device)
    with torch.inference_mode():
        for start in range(0, num_coalitions, size):
            stop = min(start + size, num_coalitions)
            chunk = torch.cat([_coalition_image(images, masks, s) for s in range(start, stop)])
            log_prob = torch.log_softmax(model(chunk).to(torch.float64), dim=1)
            values = log_prob.gather(1, labels.repeat(stop - start)[:, None]).squeeze(1)
            out[:, start:stop] = values.reshape(stop - start, batch).T
    return out


def naive_shapley(values: Tensor) -> Tensor:
    """Shapley values ``[M]`` of the mean coalition values, from the textbook formula.

    ``phi_k = sum_{S not containing k} |S|! (M - |S| - 1)! / M! (v(S + k) - v(S))``.

    Example:
        >>> naive_shapley(torch.tensor([[0.0, 1.0, 2.0, 3.0]]))  # additive game: band 0 adds 1, band 1 adds 2
        tensor([1., 2.], dtype=torch.float64)
    """
    v = values.to(torch.float64).mean(dim=0)
    num_bands = v.numel().bit_length() - 1
    phi = torch.zeros(num_bands, dtype=torch.float64)
    for k in range(num_bands):
        for s in range(2**num_bands):
            if not s >> k & 1:
                size = bin(s).count("1")
                weight = math.factorial(size) * math.factorial(num_bands - size - 1) / math.factorial(num_bands)
                phi[k] += weight * float(v[s | 1 << k] - v[s])
    return phi


def _coalition_image(images: Tensor, masks: Tensor, coalition: int) -> Tensor:
    """``Re(ifft2(mask_S * fft2(x)))`` for the whole batch: the per-coalition FFT round trip."""
    keep = torch.zeros(masks.shape[1:], dtype=images.dtype, device=images.device)
    for k in range(masks.shape[0]):
        if coalition >> k & 1:
            keep = keep + masks[k].to(images.dtype)
    return torch.fft.ifft2(torch.fft.fft2(images) * keep).real.to(images.dtype)
