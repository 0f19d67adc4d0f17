"""Coalition images through FFT linearity: band images once per batch, coalitions as a matrix product.

A coalition ``S`` keeps the bands in ``S`` and replaces the others by a fill:
``x_S = sum_k [k in S] b_k + [k not in S] f_k = sum_k f_k + sum_k [k in S] (b_k - f_k)``.
"""

from collections.abc import Iterator
from typing import Literal, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.bands import band_images

__all__ = ["CoalitionFill", "coalition_chunks", "coalition_matrix", "derangement", "fill_images"]

CoalitionFill = Literal["zero", "permute", "noise"]
FILLS = ("zero", "permute", "noise")


def coalition_matrix(num_bands: int, dtype: torch.dtype = torch.float32, device: Optional[torch.device] = None) -> Tensor:
    """All ``2^M`` coalitions as rows of 0/1 indicators; row ``s`` holds band ``k`` iff bit ``k`` of ``s`` is set.

    Row 0 is the empty coalition, row ``2^M - 1`` the full one.

    Example:
        >>> coalition_matrix(2)
        tensor([[0., 0.],
                [1., 0.],
                [0., 1.],
                [1., 1.]])
    """
    index = torch.arange(2**num_bands, device=device)
    bits = (index[:, None] >> torch.arange(num_bands, device=device)[None, :]) & 1
    return bits.to(dtype)


def derangement(batch_size: int, seed: int, num_targets: Optional[int] = None) -> Tensor:
    """A seeded permutation of ``range(batch_size)`` with no fixed point (a single random cycle).

    Args:
        batch_size: number of images in the pool (the batch, then any donor images).
        seed: seed of the permutation.
        num_targets: how many of the pool's first images need a partner (default: all of them); only these count
            towards the two images the permutation needs.

    Example:
        >>> p = derangement(5, seed=0)
        >>> bool((p != torch.arange(5)).all()), sorted(p.tolist())
        (True, [0, 1, 2, 3, 4])
    """
    if batch_size < 2:
        targets = batch_size if num_targets is None else num_targets
        raise ValueError(
            f"fill='permute' takes absent bands from another image and needs at least 2 images, got {targets}. "
            "Use a larger batch, pass other images of the data set as `donors`, or use fill='zero'/'noise'."
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(batch_size, generator=generator)
    perm = torch.empty_like(order)
    perm[order] = order.roll(-1)
    return perm


def fill_images(
    bands: Tensor, masks: Tensor, fill: CoalitionFill, seed: int = 0, donor_bands: Optional[Tensor] = None
) -> Optional[Tensor]:
    """Band images of the fill that replaces absent bands, or ``None`` for ``fill="zero"``.

    Args:
        bands: band images ``[M, B, C, H, W]`` of the batch.
        masks: the band masks ``[M, H, W // 2 + 1]`` that produced ``bands``.
        fill: ``"zero"``; ``"permute"`` (band images of another image of the batch, a seeded derangement);
            ``"noise"`` (seeded Gaussian noise filtered to each band and scaled so that its power equals the batch's
            mean power in that band and channel).
        seed: seed of the derangement or the noise; the same seed gives the same fill.
        donor_bands: band images ``[M, D, C, H, W]`` of other images that ``"permute"`` may also take absent bands
            from (the derangement then runs over the batch and the donors); ``None``: the batch alone.

    Returns:
        Tensor like ``bands`` or ``None``.
    """
    if fill == "zero":
        return None
    if fill == "permute":
        batch = bands.shape[1]
        pool = bands if donor_bands is None else torch.cat([bands, donor_bands.to(bands)], dim=1)
        return pool[:, derangement(pool.shape[1], seed, batch)[:batch].to(bands.device)]
    if fill == "noise":
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(bands.shape[1:], generator=generator, dtype=bands.dtype).to(bands.device)
        noise_bands = band_images(noise, masks)
        target = bands.pow(2).sum(dim=(-2, -1), keepdim=True).mean(dim=1, keepdim=True)  # [M, 1, C, 1, 1]
        power = noise_bands.pow(2).sum(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(bands.dtype).tiny)
        return noise_bands * torch.sqrt(target / power)
    raise ValueError(f"`fill` must be one of {FILLS}, got {fill!r}.")


def coalition_chunks(
    bands: Tensor,
    fills: Optional[Tensor],
    coalitions: Tensor,
    chunk_size: int,
    normalization: Optional[tuple[Tensor, Tensor]] = None,
    dtype: Optional[torch.dtype] = None,
) -> Iterator[tuple[slice, Tensor]]:
    """Yield ``(rows, images)``: the coalition images of ``coalitions[rows]`` for the whole batch, chunk by chunk.

    Each chunk is one matrix product ``A [c, M] @ (b - f) [M, B*C*H*W]``; memory stays at ``chunk_size`` coalitions
    whatever the total number of coalitions.

    Args:
        bands: band images ``[M, B, C, H, W]`` (pixel space).
        fills: fill band images like ``bands``, or ``None`` for zeros.
        coalitions: 0/1 indicators ``[N, M]``.
        chunk_size: coalitions per chunk.
        normalization: ``(mean, std)`` per channel, applied after building the images (pixel space -> model space).
        dtype: dtype of the yielded images (default: that of ``bands``).

    Yields:
        ``(rows, images)`` with images of shape ``[c * B, C, H, W]``, coalition-major (coalition ``i`` of the
        chunk occupies rows ``i * B`` to ``(i + 1) * B - 1``).
    """
    num_bands, batch = bands.shape[:2]
    image_shape = bands.shape[2:]
    diff = bands if fills is None else bands - fills
    diff = diff.reshape(num_bands, -1)
    base = None if fills is None else fills.sum(0).reshape(-1)
    weights = coalitions.to(device=bands.device, dtype=bands.dtype)
    for start in range(0, weights.shape[0], chunk_size):
        rows = slice(start, min(start + chunk_size, weights.shape[0]))
        flat = weights[rows] @ diff if base is None else torch.addmm(base[None], weights[rows], diff)
        images = flat.reshape(-1, *image_shape)
        if normalization is not None:
            mean, std = normalization
            images = (images - mean[:, None, None]) / std[:, None, None]
        yield rows, images if dtype is None else images.to(dtype)
