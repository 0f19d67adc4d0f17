"""A slow, obviously correct I-ASIDE reference, written from docs/method.md without using the package.

Everything here is explicit on purpose: per-bin Python loops over the *full* ``fft2`` grid with exact rational
arithmetic for band membership, one ``ifft2`` per coalition, and Shapley values by the subset-sum formula with
factorials. It is only meant for tiny images and few bands.
"""

import itertools
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Optional, Union

import torch
from torch import Tensor

__all__ = [
    "reference_band_index",
    "reference_ring",
    "reference_coalition_images",
    "reference_edges",
    "reference_full_masks",
    "reference_shapley",
    "reference_values",
]


def reference_edges(num_bands: int, edges: Union[str, Sequence[float]] = "linear") -> list[Fraction]:
    """Band edges as exact fractions: ``k / M`` ("linear"), ``0, 2^-(M-1), ..., 1/2, 1`` ("log") or as given."""
    if edges == "linear":
        return [Fraction(k, num_bands) for k in range(num_bands + 1)]
    if edges == "log":
        return [Fraction(0)] + [Fraction(1, 2 ** (num_bands - k)) for k in range(1, num_bands + 1)]
    return [Fraction(float(e)) for e in edges]


def _signed_frequency(index: int, size: int) -> Fraction:
    """Frequency of DFT bin ``index`` of ``size`` in cycles per pixel, in ``[-1/2, 1/2)``."""
    return Fraction(index if 2 * index < size else index - size, size)


def reference_ring(fy: Fraction, fx: Fraction, height: int, width: int, band_shape: str) -> int:
    """Frequency ring ``j`` of a bin: ``j = floor(x + 1/2)`` (half-way rounds up) with ``x = rho * max(H, W) / 2``,
    decided exactly (through squares for circles, whose ``rho = min(1, 2 |f|)`` is irrational)."""
    half = Fraction(max(height, width), 2)
    if band_shape == "square":
        return math.floor(2 * max(abs(fy), abs(fx)) * half + Fraction(1, 2))
    x_sq = min(Fraction(1), 4 * (fy * fy + fx * fx)) * half * half
    j = 0
    while (j + Fraction(1, 2)) ** 2 <= x_sq:
        j += 1
    return j


def _reference_ring_bands(height: int, width: int, num_bands: int, band_shape: str) -> dict[int, int]:
    """Band of every ring for ``edges="rings"``: the ``R`` rings in order, ``R // M`` per band and one more for the
    first ``R mod M`` bands."""
    rings = sorted(
        {
            reference_ring(_signed_frequency(u, height), _signed_frequency(v, width), height, width, band_shape)
            for u in range(height)
            for v in range(width)
        }
    )
    quotient, remainder = divmod(len(rings), num_bands)
    counts = [quotient + 1] * remainder + [quotient] * (num_bands - remainder)
    bands = [k for k, count in enumerate(counts) for _ in range(count)]
    return dict(zip(rings, bands))


def reference_band_index(fy: Fraction, fx: Fraction, edges: list[Fraction], band_shape: str) -> int:
    """Band ``k`` with ``r_k <= rho < r_{k+1}`` (the last band also holds ``rho = 1``), decided exactly.

    For circles ``rho = min(1, 2 sqrt(fy^2 + fx^2))`` is compared through its square to stay rational.
    """
    if band_shape == "square":
        rho_sq = (2 * max(abs(fy), abs(fx))) ** 2
    else:
        rho_sq = min(Fraction(1), 4 * (fy * fy + fx * fx))
    num_bands = len(edges) - 1
    for k in range(num_bands):
        if edges[k] ** 2 <= rho_sq < edges[k + 1] ** 2:
            return k
    return num_bands - 1  # rho == 1


def reference_full_masks(
    height: int, width: int, num_bands: int, band_shape: str = "square", edges: Union[str, Sequence[float]] = "rings"
) -> Tensor:
    """0/1 band masks on the full (two-sided) ``fft2`` grid, ``[M, H, W]`` float64, one bin at a time.

    ``edges="rings"`` (the package's default) assigns whole rings to bands; any other rule compares ``rho`` with
    exact edges."""
    ring_band = _reference_ring_bands(height, width, num_bands, band_shape) if edges == "rings" else None
    r = None if ring_band is not None else reference_edges(num_bands, edges)
    masks = torch.zeros(num_bands, height, width, dtype=torch.float64)
    for u in range(height):
        for v in range(width):
            fy, fx = _signed_frequency(u, height), _signed_frequency(v, width)
            if ring_band is not None:
                k = ring_band[reference_ring(fy, fx, height, width, band_shape)]
            else:
                k = reference_band_index(fy, fx, r, band_shape)
            masks[k, u, v] = 1.0
    return masks


def reference_coalition_images(
    images: Tensor, fill_spectrum: Optional[Tensor], masks: Tensor, coalition: Sequence[int]
) -> Tensor:
    """``x_S = ifft2(sum_{k in S} m_k X + sum_{k not in S} m_k F)``; checks that the result is real.

    Args:
        images: ``[B, C, H, W]`` in pixel space (float64 recommended).
        fill_spectrum: ``F`` as a full ``fft2`` spectrum ``[B, C, H, W]`` (complex), or ``None`` for zeros.
        masks: full-grid masks ``[M, H, W]`` from :func:`reference_full_masks`.
        coalition: indices of the bands present in ``S``.
    """
    spectrum = torch.fft.fft2(images.to(torch.float64))
    fill = torch.zeros_like(spectrum) if fill_spectrum is None else fill_spectrum.to(spectrum.dtype)
    total = torch.zeros_like(spectrum)
    for k in range(masks.shape[0]):
        total = total + masks[k] * (spectrum if k in coalition else fill)
    out = torch.fft.ifft2(total)
    assert out.imag.abs().max() <= 1e-9 * (1.0 + out.real.abs().max()), "coalition image is not real"
    return out.real


def reference_values(
    model: Callable[[Tensor], Tensor],
    images: Tensor,
    labels: Tensor,
    masks: Tensor,
    *,
    fill_spectrum: Optional[Tensor] = None,
    value: str = "log_prob",
    normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
    model_dtype: torch.dtype = torch.float64,
) -> dict[frozenset, Tensor]:
    """Per-sample worth ``v_i(S)`` of every coalition, ``{frozenset(S): [B] float64}``.

    ``images`` are in model space; with ``normalization=(mean, std)`` they are mapped to pixel space first and
    every coalition image is normalised again before the model sees it.
    """
    num_bands = masks.shape[0]
    pixels = images.to(torch.float64)
    if normalization is not None:
        mean = torch.tensor(normalization[0], dtype=torch.float64).reshape(-1, 1, 1)
        std = torch.tensor(normalization[1], dtype=torch.float64).reshape(-1, 1, 1)
        pixels = pixels * std + mean
    out = {}
    for size in range(num_bands + 1):
        for coalition in itertools.combinations(range(num_bands), size):
            x_s = reference_coalition_images(pixels, fill_spectrum, masks, coalition)
            if normalization is not None:
                x_s = (x_s - mean) / std
            with torch.no_grad():
                logits = model(x_s.to(model_dtype)).to(torch.float64)
            log_p = torch.log_softmax(logits, dim=1)[torch.arange(len(labels)), labels]
            if value == "log_prob":
                worth = log_p
            elif value == "prob":
                worth = log_p.exp()
            else:
                worth = (logits.argmax(dim=1) == labels).to(torch.float64)
            out[frozenset(coalition)] = worth
    return out


def reference_shapley(values: dict[frozenset, Tensor], num_bands: int) -> Tensor:
    """``phi_k = sum_{S not containing k} |S|! (M - |S| - 1)! / M! (v(S + k) - v(S))``, per sample, ``[B, M]``."""
    phis = []
    for k in range(num_bands):
        others = [j for j in range(num_bands) if j != k]
        phi = 0.0
        for size in range(num_bands):
            weight = math.factorial(size) * math.factorial(num_bands - size - 1) / math.factorial(num_bands)
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                phi = phi + weight * (values[s | {k}] - values[s])
        phis.append(phi)
    return torch.stack(phis, dim=-1)
