"""Band edges, masks and band images against the definitions of method.md §1 (independent per-bin reference)."""

import re

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference import reference_edges, reference_full_masks

from iaside_lightning.functional import band_edges, band_images, band_layout, band_masks, ring_index

SHAPES = ("square", "circle")


def _hermitian_full_mask(half: torch.Tensor, width: int) -> torch.Tensor:
    """Extend ``[M, H, W//2+1]`` masks to the full ``[M, H, W]`` grid with ``m(-f) = m(f)``."""
    num_bands, height = half.shape[:2]
    full = torch.zeros(num_bands, height, width, dtype=torch.float64)
    for u in range(height):
        for v in range(width):
            if v <= width // 2:
                full[:, u, v] = half[:, u, v].double()
            else:
                full[:, u, v] = half[:, (-u) % height, (-v) % width].double()
    return full


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    height=st.integers(2, 21),
    width=st.integers(2, 21),
    num_bands=st.integers(2, 5),
    band_shape=st.sampled_from(SHAPES),
    edges=st.sampled_from(["rings", "linear", "log"]),
)
def test_masks_disjoint_complete_and_conjugate_symmetric(height, width, num_bands, band_shape, edges):
    try:
        masks = band_masks(height, width, num_bands, band_shape, edges)
    except ValueError as err:
        assert f"{height}x{width}" in str(err)
        assume(False)
    assert masks.shape == (num_bands, height, width // 2 + 1) and masks.dtype == torch.bool
    assert bool((masks.sum(0) == 1).all()), "every rfft2 bin must belong to exactly one band"
    assert bool(masks.flatten(1).any(1).all()), "no band may be empty"
    assert bool(masks[0, 0, 0]), "DC belongs to band 0"
    # Columns 0 (and W/2 for even W) hold both f and -f on the rfft2 grid: the mask must agree on each pair.
    columns = [0] + ([width // 2] if width % 2 == 0 else [])
    flipped = masks[:, (-torch.arange(height)) % height]
    for v in columns:
        assert torch.equal(masks[:, :, v], flipped[:, :, v])
    # Band images are real: irfft2 equals the real part of a full ifft2 with the Hermitian extension, whose
    # imaginary part vanishes; and the band images add up to the image.
    images = torch.randn(2, 3, height, width, dtype=torch.float64)
    full = _hermitian_full_mask(masks, width)
    complex_bands = torch.fft.ifft2(full[:, None, None] * torch.fft.fft2(images)[None])
    assert complex_bands.imag.abs().max() < 1e-12
    bands = band_images(images, masks)
    torch.testing.assert_close(bands, complex_bands.real, atol=1e-12, rtol=0)
    torch.testing.assert_close(bands.sum(0), images, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("height", "width", "num_bands", "band_shape", "edges"),
    [
        (8, 8, 4, "square", "linear"),
        (16, 10, 4, "circle", "linear"),
        (9, 13, 3, "square", "log"),
        (16, 16, 4, "circle", "log"),
        (11, 7, 3, "square", (0.0, 0.3, 0.6, 1.0)),
        (12, 17, 4, "circle", (0.0, 0.1, 0.2, 0.7, 1.0)),
        (32, 24, 8, "square", "linear"),
        (28, 28, 8, "circle", "linear"),
        # Bins that lie exactly on an edge (rho = r_k) belong to band k by the definition r_k <= rho < r_{k+1}.
        (6, 6, 3, "square", "linear"),
        (12, 12, 6, "square", "linear"),
        (10, 10, 5, "circle", "linear"),
        # The default: whole frequency rings per band, the remainder at the low end (odd, even, non-square sizes,
        # sizes whose rings sit half-way between grid radii).
        (28, 28, 8, "square", "rings"),
        (28, 28, 8, "circle", "rings"),
        (32, 32, 6, "square", "rings"),
        (13, 10, 3, "square", "rings"),
        (15, 10, 4, "circle", "rings"),
        (12, 8, 4, "square", "rings"),
        (17, 17, 5, "circle", "rings"),
    ],
)
def test_masks_match_per_bin_reference(height, width, num_bands, band_shape, edges):
    expected = reference_full_masks(height, width, num_bands, band_shape, edges)[:, :, : width // 2 + 1].bool()
    masks = band_masks(height, width, num_bands, band_shape, edges)
    wrong = (masks != expected).any(0).nonzero().tolist()
    assert not wrong, (
        f"bins {wrong[:6]} are in the wrong band (per-band counts {masks.sum((1, 2)).tolist()}, expected "
        f"{expected.sum((1, 2)).tolist()})"
    )


@pytest.mark.parametrize("num_bands", [2, 3, 5, 8])
@pytest.mark.parametrize("edges", ["linear", "log"])
def test_band_edges_match_definition(num_bands, edges):
    expected = torch.tensor([float(e) for e in reference_edges(num_bands, edges)], dtype=torch.float64)
    torch.testing.assert_close(band_edges(num_bands, edges), expected, atol=1e-15, rtol=0)


def test_explicit_edges_are_returned_and_validated():
    torch.testing.assert_close(band_edges(3, [0, 0.2, 0.5, 1]), torch.tensor([0, 0.2, 0.5, 1], dtype=torch.float64))
    with pytest.raises(ValueError, match="band_edges"):
        band_edges(3, [0.0, 0.5, 1.0])  # M + 1 = 4 values needed
    with pytest.raises(ValueError, match="band_edges"):
        band_edges(3, [0.0, 0.6, 0.5, 1.0])  # not increasing
    with pytest.raises(ValueError, match="band_edges"):
        band_edges(2, [0.1, 0.5, 1.0])  # does not start at 0
    with pytest.raises(ValueError, match="band_edges"):
        band_edges(2, [0.0, 0.5, 0.9])  # does not end at 1
    with pytest.raises(ValueError, match="band_edges"):
        band_edges(2, "cubic")
    for bad in (1, 0, 2.0, True):
        with pytest.raises(ValueError, match="num_bands"):
            band_edges(bad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_band_images_sum_back_to_image(dtype):
    images = torch.rand(3, 2, 15, 22, dtype=dtype)
    bands = band_images(images, band_masks(15, 22, 5, "circle"))
    assert bands.dtype == dtype and bands.shape == (5, 3, 2, 15, 22)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(bands.sum(0), images, atol=tol, rtol=0)


@pytest.mark.parametrize(("height", "width", "num_bands", "band_shape"), [(4, 4, 8, "square"), (3, 5, 8, "circle")])
def test_too_small_image_raises_with_size_and_a_working_size(height, width, num_bands, band_shape):
    with pytest.raises(ValueError, match=f"{height}x{width}") as info:
        band_masks(height, width, num_bands, band_shape)
    smallest = int(re.search(r"at least (\d+)x\1", str(info.value)).group(1))
    masks = band_masks(smallest, smallest, num_bands, band_shape)
    assert bool(masks.flatten(1).any(1).all())
    with pytest.raises(ValueError, match="too small"):
        band_masks(smallest - 1, smallest - 1, num_bands, band_shape)


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_bad_image_size_raises(bad):
    with pytest.raises(ValueError, match="height"):
        band_masks(bad, 8, 2)


def test_bad_band_shape_raises():
    with pytest.raises(ValueError, match="band_shape"):
        band_masks(8, 8, 2, "hexagon")


@settings(max_examples=40, deadline=None)
@given(height=st.integers(4, 40), width=st.integers(4, 40), num_bands=st.integers(2, 8), band_shape=st.sampled_from(SHAPES))
def test_ring_bands_hold_equal_ring_counts_with_the_remainder_at_the_low_end(height, width, num_bands, band_shape):
    """No rule may leave a short band in the middle: with "rings", counts never increase with the band index and
    differ by at most one."""
    try:
        layout = band_layout(height, width, num_bands, band_shape, "rings")
    except ValueError as err:
        assert "too small" in str(err)
        assume(False)
    rings = layout.rings.tolist()
    assert sum(rings) == int(torch.unique(ring_index(height, width, band_shape)).numel())  # each ring in one band
    assert max(rings) - min(rings) <= 1 and rings == sorted(rings, reverse=True)
    assert int(layout.bins.sum()) == height * (width // 2 + 1)


def test_linear_edges_leave_a_one_ring_band_in_the_middle_at_28x28():
    """The dip of the MNIST figures: band 3 of the paper's linear rule holds one ring, the "rings" rule does not."""
    linear, rings = band_layout(28, 28, 8, edges="linear"), band_layout(28, 28, 8)
    assert linear.rings.tolist() == [2, 2, 2, 1, 2, 2, 2, 2] and rings.rings.tolist() == [2] * 7 + [1]
    assert linear.bins.tolist() == [6, 22, 38, 25, 62, 78, 94, 95]
    # Where N / 2 is a multiple of M both rules are balanced, and differ by one ring (band 0 vs the top band).
    assert band_layout(32, 32, 8, edges="linear").rings.tolist() == [2] * 7 + [3]
    assert band_layout(32, 32, 8).rings.tolist() == [3] + [2] * 7
