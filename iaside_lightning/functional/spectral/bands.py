"""Frequency bands on the ``rfft2`` grid: the players of I-ASIDE.

A band is a 0/1 mask over the half-spectrum returned by :func:`torch.fft.rfft2`. The ``M`` masks are disjoint,
cover every frequency and are symmetric under ``f -> -f``, so each band-filtered image is real and the ``M`` band
images of an image sum back to the image.
"""

from collections.abc import Sequence
from typing import Literal, NamedTuple, Optional, Union

import torch
from torch import Tensor

__all__ = [
    "BAND_EDGE_RULES",
    "BandEdges",
    "BandLayout",
    "BandShape",
    "band_edges",
    "band_images",
    "band_layout",
    "band_masks",
    "band_sizes",
    "normalized_radius",
    "ring_index",
]

BandShape = Literal["square", "circle"]
BandEdges = Union[Literal["rings", "linear", "log"], Sequence[float]]
#: The named band-edge rules; ``"rings"`` (the default everywhere) depends on the image size.
BAND_EDGE_RULES = ("rings", "linear", "log")


def band_edges(
    num_bands: int = 8,
    edges: BandEdges = "rings",
    size: Optional[tuple[int, int]] = None,
    band_shape: BandShape = "square",
) -> Tensor:
    """Band edges ``0 = r_0 < r_1 < ... < r_M = 1`` on the normalised radius.

    Args:
        num_bands: number of bands ``M`` (at least 2).
        edges: ``"rings"`` (the default: the paper's equal-width bands made exact on the image's frequency grid;
            every band holds the same number of frequency rings, see :func:`ring_index`, and when the rings do
            not divide evenly the first ``R mod M`` bands hold one ring more, so a narrower band can only sit at
            the high end, never in the middle), ``"linear"`` (``r_k = k / M``, the paper's formula; on small
            images the rings split unevenly, e.g. at 28x28 and ``M = 8`` band 3 holds one ring and its
            neighbours two), ``"log"`` (geometric above the first band, ``r_1 = 2^-(M-1)``, finer resolution at
            low frequencies) or an explicit increasing sequence of ``M + 1`` numbers from 0 to 1.
        size: image ``(height, width)``; needed by ``"rings"`` only.
        band_shape: ``"square"`` or ``"circle"``; used by ``"rings"`` only.

    Returns:
        Float64 tensor of shape ``[M + 1]``. Multiply by 0.5 for cycles per pixel.

    Raises:
        ValueError: if ``num_bands < 2``, ``edges`` is not one of the accepted forms, ``"rings"`` gets no
            ``size`` or the image has fewer rings than bands.

    Example:
        >>> band_edges(4, "linear")
        tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000], dtype=torch.float64)
        >>> band_edges(3, "log")
        tensor([0.0000, 0.2500, 0.5000, 1.0000], dtype=torch.float64)
        >>> band_edges(4, "rings", size=(8, 8))  # rings 0..4 of an 8x8 image: 2, 1, 1, 1 per band
        tensor([0.0000, 0.3750, 0.6250, 0.8750, 1.0000], dtype=torch.float64)
    """
    if isinstance(num_bands, bool) or not isinstance(num_bands, int) or num_bands < 2:
        raise ValueError(f"`num_bands` must be an integer >= 2, got {num_bands!r}.")
    if isinstance(edges, str):
        if edges == "rings":
            return _ring_edges(num_bands, size, band_shape)
        if edges == "linear":
            return torch.linspace(0.0, 1.0, num_bands + 1, dtype=torch.float64)
        if edges == "log":
            upper = torch.logspace(-(num_bands - 1), 0, num_bands, base=2.0, dtype=torch.float64)
            return torch.cat([torch.zeros(1, dtype=torch.float64), upper])
        raise ValueError(
            f"`band_edges` must be one of {BAND_EDGE_RULES} or a sequence of {num_bands + 1} floats, got {edges!r}."
        )
    values = torch.as_tensor([float(e) for e in edges], dtype=torch.float64)
    if values.numel() != num_bands + 1:
        raise ValueError(
            f"`band_edges` as a sequence needs num_bands + 1 = {num_bands + 1} values, got {values.numel()}."
        )
    if values[0] != 0.0 or values[-1] != 1.0 or not bool((values[1:] > values[:-1]).all()):
        raise ValueError(
            f"`band_edges` must increase strictly from 0.0 to 1.0 (normalised radius), got {values.tolist()}."
        )
    return values


def ring_index(height: int, width: int, band_shape: BandShape = "square") -> Tensor:
    """Frequency ring of every bin of the ``rfft2`` grid: ``floor(rho * max(H, W) / 2 + 1/2)``.

    A ring is an annulus one frequency step (``1 / max(H, W)`` cycles per pixel) wide around DC: for square bands
    on an ``N x N`` image, ring ``j`` holds the bins with ``max(|i_y|, |i_x|) = j``, so there are ``N // 2 + 1``
    rings. They are the finest radial resolution the grid allows.

    Returns:
        Int64 tensor of shape ``[height, width // 2 + 1]``.

    Example:
        >>> ring_index(4, 4)
        tensor([[0, 1, 2],
                [1, 1, 2],
                [2, 2, 2],
                [1, 1, 2]])
    """
    rho = normalized_radius(height, width, band_shape)
    # Half-way between two rings rounds up; the tolerance absorbs float error in rho (e.g. 0.2 * 15 / 2 = 1.5).
    return torch.floor(rho * max(height, width) / 2 + 0.5 + 1e-9).to(torch.int64)


def _ring_edges(num_bands: int, size: Optional[tuple[int, int]], band_shape: BandShape) -> Tensor:
    """Edges giving every band ``R // M`` of the ``R`` non-empty rings, the first ``R % M`` bands one more."""
    if size is None:
        raise ValueError(
            "`band_edges='rings'` depends on the image size: pass `size=(height, width)` (the engine, metric and "
            "monitor do this for you), or use 'linear', 'log' or explicit edges."
        )
    height, width = size
    rings = torch.unique(ring_index(height, width, band_shape))
    if rings.numel() < num_bands:
        smallest = next(
            n for n in range(2, 4 * num_bands) if torch.unique(ring_index(n, n, band_shape)).numel() >= num_bands
        )
        raise ValueError(
            f"An image of {height}x{width} pixels is too small for {num_bands} {band_shape} bands: it has "
            f"{rings.numel()} frequency rings, one per band is needed. Use at least {smallest}x{smallest} pixels or "
            "fewer bands."
        )
    quotient, remainder = divmod(rings.numel(), num_bands)
    counts = torch.tensor([quotient + 1] * remainder + [quotient] * (num_bands - remainder))
    last = counts.cumsum(0)[:-1] - 1  # position of the last ring of bands 0 .. M-2
    middle = (rings[last] + rings[last + 1]).to(torch.float64) / 2 / (max(height, width) / 2)
    return torch.cat([torch.zeros(1, dtype=torch.float64), middle, torch.ones(1, dtype=torch.float64)])


def normalized_radius(height: int, width: int, band_shape: BandShape = "square") -> Tensor:
    """Normalised radius ``rho`` in ``[0, 1]`` of every bin of the ``rfft2`` grid of an ``height x width`` image.

    ``"square"``: ``rho = max(|f_y|, |f_x|) / 0.5``; ``"circle"``: ``rho = min(1, sqrt(f_y^2 + f_x^2) / 0.5)``,
    with frequencies in cycles per pixel.

    Returns:
        Float64 tensor of shape ``[height, width // 2 + 1]``.

    Example:
        >>> normalized_radius(4, 4)
        tensor([[0.0000, 0.5000, 1.0000],
                [0.5000, 0.5000, 1.0000],
                [1.0000, 1.0000, 1.0000],
                [0.5000, 0.5000, 1.0000]], dtype=torch.float64)
    """
    fy = torch.fft.fftfreq(height, dtype=torch.float64).abs()[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    if band_shape == "square":
        return torch.maximum(fy, fx) / 0.5
    if band_shape == "circle":
        return (torch.sqrt(fy**2 + fx**2) / 0.5).clamp(max=1.0)
    raise ValueError(f"`band_shape` must be 'square' or 'circle', got {band_shape!r}.")


def band_masks(
    height: int,
    width: int,
    num_bands: int = 8,
    band_shape: BandShape = "square",
    edges: BandEdges = "rings",
) -> Tensor:
    """Disjoint 0/1 band masks covering the ``rfft2`` grid; band ``k`` holds ``r_k <= rho < r_{k+1}``.

    Args:
        height: image height ``H`` in pixels.
        width: image width ``W`` in pixels.
        num_bands: number of bands ``M``.
        band_shape: ``"square"`` (the paper's) or ``"circle"``.
        edges: band edges, see :func:`band_edges`.

    Returns:
        Boolean tensor of shape ``[M, H, W // 2 + 1]``; every bin belongs to exactly one band.

    Raises:
        ValueError: if the image is too small for ``M`` non-empty bands (the message gives the smallest size that
            works) or an option is invalid.

    Example:
        >>> masks = band_masks(8, 8, num_bands=2)
        >>> masks.shape, int(masks.sum())
        (torch.Size([2, 8, 5]), 40)
    """
    for name, size in (("height", height), ("width", width)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"Image `{name}` must be a positive integer, got {size!r}.")
    r = band_edges(num_bands, edges, (height, width), band_shape)
    rho = normalized_radius(height, width, band_shape)
    masks = _band_index(rho, r)[None] == torch.arange(num_bands)[:, None, None]
    empty = [k for k in range(num_bands) if not bool(masks[k].any())]
    if empty:
        smallest = _smallest_size(num_bands, band_shape, edges)
        raise ValueError(
            f"An image of {height}x{width} pixels is too small for {num_bands} non-empty {band_shape!r} bands with "
            f"edges {edges!r}: band(s) {empty} contain no frequency. Use at least {smallest}x{smallest} pixels, "
            "fewer bands, or other `band_edges`."
        )
    return masks


def _smallest_size(num_bands: int, band_shape: BandShape, edges: BandEdges) -> int:
    """Smallest square image size for which every band is non-empty (for error messages)."""
    for size in range(2, 4097):
        try:
            r = band_edges(num_bands, edges, (size, size), band_shape)
        except ValueError:  # "rings": fewer rings than bands
            continue
        if torch.unique(_band_index(normalized_radius(size, size, band_shape), r)).numel() == num_bands:
            return size
    return 4097


def _band_index(rho: Tensor, edges: Tensor) -> Tensor:
    """Band of every bin: ``k`` with ``r_k <= rho < r_{k+1}`` (``rho = 1`` in the last band).

    A radius within 1e-9 below an edge counts as on it, so that rounding (e.g. ``3/6`` vs ``0.5``) cannot move a
    bin that lies exactly on an edge into the band below.
    """
    return torch.bucketize(rho + 1e-9, edges[1:-1], right=True)


def band_sizes(masks: Tensor, width: int, band_shape: BandShape = "square") -> tuple[Tensor, Tensor]:
    """How much of the spectrum each band holds: ``(rfft2 bins, frequency rings)`` per band, each ``[M]`` int64.

    ``masks`` are those of :func:`band_masks` for images ``width`` pixels wide (and ``masks.shape[1]`` high). A ring
    (see :func:`ring_index`) is counted in a band when any of its bins is; with ``"linear"`` or explicit edges a ring
    can be split between two bands and is then counted in both.

    Example:
        >>> bins, rings = band_sizes(band_masks(28, 28, 8, edges="linear"), width=28)
        >>> bins.tolist(), rings.tolist()  # the linear rule leaves band 3 with one ring at 28x28
        ([6, 22, 38, 25, 62, 78, 94, 95], [2, 2, 2, 1, 2, 2, 2, 2])
        >>> band_sizes(band_masks(28, 28, 8), width=28)[1].tolist()  # the default "rings": the short band on top
        [2, 2, 2, 2, 2, 2, 2, 1]
    """
    rings = ring_index(masks.shape[-2], width, band_shape)
    if rings.shape != masks.shape[-2:]:
        raise ValueError(f"`masks` of shape {tuple(masks.shape)} do not belong to images {width} pixels wide.")
    masks = masks.to("cpu")
    bins = masks.sum(dim=(-2, -1))
    per_band = [int(torch.unique(rings[m]).numel()) for m in masks]
    return bins.to(torch.int64), torch.tensor(per_band, dtype=torch.int64)


class BandLayout(NamedTuple):
    """The bands of one image size, as cut: see :func:`band_layout`."""

    masks: Tensor  #: ``[M, H, W // 2 + 1]`` boolean masks on the ``rfft2`` grid
    edges: Tensor  #: ``[M + 1]`` float64 edges on the normalised radius (times 0.5: cycles per pixel)
    bins: Tensor  #: ``[M]`` int64 ``rfft2`` bins per band
    rings: Tensor  #: ``[M]`` int64 frequency rings per band (see :func:`band_sizes`)


def band_layout(
    height: int, width: int, num_bands: int = 8, band_shape: BandShape = "square", edges: BandEdges = "rings"
) -> BandLayout:
    """Masks, edges and sizes of the bands of ``height x width`` images, the one place they are computed.

    Example:
        >>> layout = band_layout(32, 32, num_bands=8)
        >>> layout.rings.tolist(), (layout.edges * 0.5).tolist()[:3]
        ([3, 2, 2, 2, 2, 2, 2, 2], [0.0, 0.078125, 0.140625])
    """
    masks = band_masks(height, width, num_bands, band_shape, edges)
    bins, rings = band_sizes(masks, width, band_shape)
    return BandLayout(masks, band_edges(num_bands, edges, (height, width), band_shape), bins, rings)


def band_images(images: Tensor, masks: Tensor) -> Tensor:
    """Split images into their band images: ``b_k = irfft2(m_k * rfft2(x))``, real and summing back to ``x``.

    The transform runs in float32 (or float64 for float64 input) on the images' device.

    Args:
        images: float tensor ``[B, C, H, W]``.
        masks: boolean masks ``[M, H, W // 2 + 1]`` from :func:`band_masks`.

    Returns:
        Tensor ``[M, B, C, H, W]`` in float32 (float64 for float64 input).

    Example:
        >>> x = torch.randn(2, 3, 16, 12)
        >>> b = band_images(x, band_masks(16, 12, num_bands=4))
        >>> b.shape, torch.allclose(b.sum(0), x, atol=1e-5)
        (torch.Size([4, 2, 3, 16, 12]), True)
    """
    height, width = images.shape[-2:]
    work = images.to(torch.float64 if images.dtype == torch.float64 else torch.float32)
    spectrum = torch.fft.rfft2(work)
    m = masks.to(device=images.device, dtype=work.dtype)[:, None, None]
    return torch.fft.irfft2(spectrum[None] * m, s=(height, width))
