"""Coalition images through FFT linearity: band images once per batch, coalitions as a matrix product.

A coalition ``S`` keeps the bands in ``S`` and replaces the others by a fill:
``x_S = sum_k [k in S] b_k + [k not in S] f_k = sum_k f_k + sum_k [k in S] (b_k - f_k)``.
"""

from typing import Literal, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.bands import band_images

__all__ = ["CoalitionFill", "CoalitionImages", "coalition_matrix", "derangement", "fill_images"]

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


class CoalitionImages:
    """The coalition images of a batch as one image-major stream, written on demand into a reused buffer.

    Pair ``p`` of the stream is coalition ``p % N`` of image ``p // N``; :meth:`take` writes any run of pairs, in
    ``channels_last`` or contiguous layout, with one matrix product per image it touches:
    ``x_S = (sum_k f_k - mean) / std + A_S @ ((b - f) / std)``, the normalisation folded into the terms of each image
    (computed once per image and layout, so that consecutive runs of the same image share them). Image-major order
    keeps one image's ``M`` band terms in cache while its coalitions are written.

    Args:
        bands: band images ``[M, B, C, H, W]`` (pixel space).
        fills: fill band images like ``bands``, or ``None`` for zeros.
        coalitions: 0/1 indicators ``[N, M]``.
        normalization: ``(mean, std)`` per channel, applied to the images (pixel space -> model space).
        dtype: dtype of the images handed out (default: that of ``bands``).

    Example:
        >>> from iaside_lightning.functional.spectral.bands import band_masks
        >>> x = torch.rand(2, 3, 8, 8)
        >>> masks = band_masks(8, 8, num_bands=2)
        >>> stream = CoalitionImages(band_images(x, masks), None, coalition_matrix(2))
        >>> stream.total, stream.pair(5)  # 2 images x 4 coalitions; pair 5 is coalition 1 of image 1
        (8, (1, 1))
        >>> full = stream.take(3, 2, channels_last=True)  # the full coalition of image 0, the empty one of image 1
        >>> bool(torch.allclose(full[0], x[0], atol=1e-5)), bool(full[1].abs().max() == 0)
        (True, True)
        >>> full.is_contiguous(memory_format=torch.channels_last)
        True
    """

    def __init__(
        self,
        bands: Tensor,
        fills: Optional[Tensor],
        coalitions: Tensor,
        normalization: Optional[tuple[Tensor, Tensor]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        self.bands, self.fills = bands, fills
        self.weights = coalitions.to(device=bands.device, dtype=bands.dtype)
        self.num_coalitions = self.weights.shape[0]
        self.total = self.num_coalitions * bands.shape[1]
        self.dtype = bands.dtype if dtype is None else dtype
        if normalization is not None:  # per channel, broadcast over [C, H, W]
            normalization = (normalization[0].to(bands)[:, None, None], normalization[1].to(bands)[:, None, None])
        self.normalization = normalization
        # One image's band terms, rewritten in place when another image is needed (see _image_terms).
        self._terms_key: Optional[tuple[int, bool]] = None
        self._diff = bands.new_empty(bands.shape[0], bands[0, 0].numel())
        affine = fills is not None or normalization is not None
        self._base = bands.new_empty(bands[0, 0].numel()) if affine else None
        self._buffers: dict[bool, Tensor] = {}

    def pair(self, index: int) -> tuple[int, int]:
        """``(image, coalition)`` of pair ``index`` of the stream."""
        image, coalition = divmod(index, self.num_coalitions)
        return image, coalition

    def take(self, start: int, count: int, channels_last: bool = False) -> Tensor:
        """The ``count`` coalition images of pairs ``start, start + 1, ...`` as ``[count, C, H, W]``.

        The result is a view of a buffer that the next call overwrites: use it before taking more.
        """
        channels, height, width = self.bands.shape[2:]
        buffer = self._buffer(count, channels_last)
        row = 0
        while row < count:
            image, first = self.pair(start + row)
            stop = min(self.num_coalitions, first + count - row)
            diff, base = self._image_terms(image, channels_last)
            out = buffer[row : row + stop - first]
            if base is None:
                torch.mm(self.weights[first:stop], diff, out=out)
            else:
                torch.addmm(base, self.weights[first:stop], diff, out=out)
            row += stop - first
        if channels_last:
            images = buffer[:count].view(count, height, width, channels).permute(0, 3, 1, 2)
        else:
            images = buffer[:count].view(count, channels, height, width)
        return images if images.dtype == self.dtype else images.to(self.dtype)

    def _buffer(self, count: int, channels_last: bool) -> Tensor:
        """A ``[>= count, C * H * W]`` buffer of this layout, allocated once and grown only when too small."""
        buffer = self._buffers.get(channels_last)
        if buffer is None or buffer.shape[0] < count:
            buffer = self.bands.new_empty(count, self.bands[0, 0].numel())
            self._buffers[channels_last] = buffer
        return buffer

    def _image_terms(self, image: int, channels_last: bool) -> tuple[Tensor, Optional[Tensor]]:
        """``((b - f) / std, (sum f - mean) / std)`` of one image, flattened in the layout's order.

        Written in place into two buffers allocated once (a fresh allocation per image between forward passes makes
        the allocator return and re-fault the model's activation memory), and kept until another image is needed.
        """
        if self._terms_key == (image, channels_last):
            return self._diff, self._base
        num_bands, _, channels, height, width = self.bands.shape
        self._terms_key = (image, channels_last)
        diff = _layout_view(self._diff, (num_bands, channels, height, width), channels_last)
        diff.copy_(self.bands[:, image])
        if self.fills is not None:
            diff.sub_(self.fills[:, image])
        if self._base is not None:
            base = _layout_view(self._base, (channels, height, width), channels_last).zero_()
            for band in range(num_bands if self.fills is not None else 0):
                base.add_(self.fills[band, image])
        if self.normalization is not None:
            mean, std = self.normalization
            diff.div_(std)
            base.sub_(mean).div_(std)
        return self._diff, self._base


def _layout_view(buffer: Tensor, shape: tuple[int, ...], channels_last: bool) -> Tensor:
    """``buffer`` seen as ``[..., C, H, W]`` with its memory in ``[..., H, W, C]`` order if ``channels_last``."""
    if not channels_last:
        return buffer.view(shape)
    *lead, channels, height, width = shape
    return buffer.view(*lead, height, width, channels).movedim(-1, -3)
