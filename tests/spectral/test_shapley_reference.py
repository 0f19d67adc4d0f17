"""The engine against the brute-force reference (tests/reference.py): coalition values, phi, fills, invariances."""

from typing import NamedTuple, Optional

import numpy as np
import pytest
import torch
from reference import reference_full_masks, reference_shapley, reference_values

import iaside_lightning.functional.spectral.engine as engine_module
from iaside_lightning.functional import (
    band_images,
    band_masks,
    coalition_values,
    derangement,
    fill_images,
    spectral_shapley,
)

pytestmark = pytest.mark.usefixtures("single_thread")

NORM3 = ((0.5, 0.4, 0.45), (0.25, 0.2, 0.3))
NORM1 = ((0.5,), (0.25,))


def _pixels(images, normalization):
    if normalization is None:
        return images.double()
    mean, std = (torch.tensor(v, dtype=torch.float64).reshape(-1, 1, 1) for v in normalization)
    return images.double() * std + mean


def _reference_fill_spectrum(images, fill, normalization, seed, engine_fills):
    """``F`` of method.md §2 as a full fft2 spectrum; for noise, built from the engine's own noise band images."""
    if fill == "zero":
        return None
    if fill == "permute":
        return torch.fft.fft2(_pixels(images, normalization)[derangement(len(images), seed)])
    return torch.fft.fft2(engine_fills[-1].double().sum(0))


@pytest.fixture
def engine_fills(monkeypatch):
    """Records every fill the engine draws (the noise itself is random, so the reference reuses it)."""
    seen = []

    def spy(*args, **kwargs):
        seen.append(fill_images(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(engine_module, "fill_images", spy)
    return seen


def _as_table(values: dict, num_bands: int) -> torch.Tensor:
    """Reference dict ``{frozenset: [B]}`` -> ``[B, 2^M]`` with bit k of the column index = band k present."""
    columns = [values[frozenset(k for k in range(num_bands) if s >> k & 1)] for s in range(2**num_bands)]
    return torch.stack(columns, dim=1)


class Case(NamedTuple):
    fill: str
    value: str
    channels: int
    height: int
    width: int
    num_bands: int
    band_shape: str
    edges: object
    norm: Optional[tuple]


CASES = [
    Case("zero", "log_prob", 1, 9, 12, 4, "square", "linear", None),
    Case("zero", "prob", 3, 11, 7, 3, "circle", "linear", NORM3),
    Case("zero", "correct", 3, 8, 10, 4, "square", "linear", None),
    Case("permute", "log_prob", 3, 10, 13, 4, "circle", "linear", NORM3),
    Case("permute", "prob", 1, 12, 9, 3, "square", "log", None),
    Case("permute", "correct", 1, 16, 12, 4, "circle", "log", NORM1),
    Case("noise", "log_prob", 1, 9, 9, 4, "square", "linear", None),
    Case("noise", "prob", 3, 13, 10, 3, "circle", "linear", NORM3),
    Case("noise", "log_prob", 3, 10, 10, 3, "square", (0.0, 0.3, 0.65, 1.0), None),
    Case("zero", "log_prob", 1, 12, 12, 2, "square", "linear", NORM1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c[:7])) + ("-norm" if c.norm else ""))
def test_engine_matches_brute_force(make_cnn, engine_fills, case):
    batch, seed, num_bands, norm = 5, 3, case.num_bands, case.norm
    model = make_cnn(case.channels, classes=3)
    pixels = torch.rand(batch, case.channels, case.height, case.width, dtype=torch.float64)
    images = pixels
    if norm is not None:
        images = (pixels - torch.tensor(norm[0]).reshape(-1, 1, 1)) / torch.tensor(norm[1]).reshape(-1, 1, 1)
    labels = torch.tensor([0, 1, 2, 1, 0])
    options = dict(
        num_bands=num_bands, band_shape=case.band_shape, band_edges=case.edges, fill=case.fill, value=case.value
    )
    engine = coalition_values(model, images, labels, normalization=norm, seed=seed, **options)

    full_masks = reference_full_masks(case.height, case.width, num_bands, case.band_shape, case.edges)
    fill_spectrum = _reference_fill_spectrum(images, case.fill, norm, seed, engine_fills)
    expected = reference_values(
        model, images, labels, full_masks, fill_spectrum=fill_spectrum, value=case.value, normalization=norm
    )
    assert engine.shape == (batch, 2**num_bands) and engine.dtype == torch.float64
    tol = 1e-9 if norm is None else 1e-6  # see test_float64_precision_is_kept_with_normalization
    torch.testing.assert_close(engine, _as_table(expected, num_bands), atol=tol, rtol=tol)

    result = spectral_shapley(model, images, labels, normalization=norm, seed=seed, **options)
    per_sample = reference_shapley(expected, num_bands)
    torch.testing.assert_close(result.phi, per_sample.mean(0), atol=tol, rtol=tol)
    stderr = per_sample.numpy().std(axis=0, ddof=1) / np.sqrt(batch)
    np.testing.assert_allclose(result.stderr.numpy(), stderr, atol=tol, rtol=1e-6)
    torch.testing.assert_close(result.v_empty, expected[frozenset()].mean(), atol=tol, rtol=tol)
    torch.testing.assert_close(result.v_full, expected[frozenset(range(num_bands))].mean(), atol=tol, rtol=tol)
    assert result.num_samples == batch


def test_float64_precision_is_kept_with_normalization(make_cnn, engine_fills):
    """float64 images give float64-accurate values (and float64 fills) also when `normalization` is given."""
    model = make_cnn(3)
    images, labels = torch.randn(4, 3, 13, 10, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    engine = coalition_values(model, images, labels, num_bands=3, fill="permute", normalization=NORM3, seed=2)
    fill_spectrum = torch.fft.fft2(_pixels(images, NORM3)[derangement(4, 2)])
    expected = reference_values(
        model, images, labels, reference_full_masks(13, 10, 3), fill_spectrum=fill_spectrum, normalization=NORM3
    )
    torch.testing.assert_close(engine, _as_table(expected, 3), atol=1e-10, rtol=1e-10)
    assert engine_fills[-1].dtype == torch.float64


def test_logits_reuse_gives_the_same_values_without_recomputing_the_full_coalition(make_cnn):
    model = make_cnn(3, classes=3)
    images, labels = torch.rand(4, 3, 10, 11, dtype=torch.float64), torch.tensor([2, 0, 1, 2])
    options = dict(num_bands=3, fill="permute", seed=1)
    with torch.no_grad():
        logits = model(images)
    plain = coalition_values(model, images, labels, **options)
    reused = coalition_values(model, images, labels, logits=logits, **options)
    torch.testing.assert_close(reused, plain, atol=1e-12, rtol=0)
    # The full coalition's value comes from the given logits, not from the model.
    shifted = coalition_values(model, images, labels, logits=logits + torch.tensor([5.0, 0.0, 0.0]), **options)
    torch.testing.assert_close(shifted[:, :-1], plain[:, :-1], atol=1e-12, rtol=0)
    expected_full = torch.log_softmax(logits + torch.tensor([5.0, 0.0, 0.0]), 1)[torch.arange(4), labels]
    torch.testing.assert_close(shifted[:, -1], expected_full, atol=1e-12, rtol=0)


@pytest.mark.parametrize("fill", ["zero", "permute", "noise"])
def test_forward_batch_size_does_not_change_values(make_cnn, fill):
    model = make_cnn(1)
    images, labels = torch.rand(6, 1, 12, 10, dtype=torch.float64), torch.randint(0, 3, (6,))
    values = [
        coalition_values(model, images, labels, num_bands=4, fill=fill, forward_batch_size=size)
        for size in (1, 3, 7, 16, 96, 200, None)
    ]
    for other in values[1:]:
        torch.testing.assert_close(other, values[0], atol=1e-12, rtol=0)


def test_per_sample_values_do_not_depend_on_the_rest_of_the_batch_for_zero_fill(make_cnn):
    model = make_cnn(3)
    images, labels = torch.rand(6, 3, 9, 12, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    whole = coalition_values(model, images, labels, num_bands=3, fill="zero")
    reordered = torch.tensor([4, 0, 5, 2, 1, 3])
    shuffled = coalition_values(model, images[reordered], labels[reordered], num_bands=3, fill="zero")
    torch.testing.assert_close(shuffled, whole[reordered], atol=1e-12, rtol=0)
    for part in (slice(0, 1), slice(1, 4), slice(4, 6)):
        alone = coalition_values(model, images[part], labels[part], num_bands=3, fill="zero")
        torch.testing.assert_close(alone, whole[part], atol=1e-12, rtol=0)


def test_noise_fill_is_band_limited_with_the_batch_mean_power_of_each_band():
    height, width, num_bands = 12, 11, 4
    images = torch.rand(5, 2, height, width, dtype=torch.float64) * torch.tensor([1.0, 3.0]).reshape(2, 1, 1)
    masks = band_masks(height, width, num_bands, "circle")
    full = reference_full_masks(height, width, num_bands, "circle")
    fills = fill_images(band_images(images, masks), masks, "noise", seed=7)
    assert fills.shape == (num_bands, 5, 2, height, width)
    spectra = torch.fft.fft2(fills)  # [M, B, C, H, W]
    for k in range(num_bands):
        assert spectra[k].mul(1 - full[k]).abs().max() < 1e-9, f"noise of band {k} leaks out of the band"
        band_k = torch.fft.ifft2(full[k] * torch.fft.fft2(images)).real
        target = band_k.pow(2).sum(dim=(-2, -1)).mean(dim=0)  # [C]: batch mean power of band k per channel
        power = fills[k].pow(2).sum(dim=(-2, -1))  # [B, C]
        torch.testing.assert_close(power, target.expand_as(power), atol=1e-9, rtol=1e-9)
    assert not torch.allclose(fills[:, 0], fills[:, 1]), "each image gets its own noise"
    torch.testing.assert_close(fill_images(band_images(images, masks), masks, "noise", seed=7), fills)
    assert not torch.allclose(fill_images(band_images(images, masks), masks, "noise", seed=8), fills)


def test_permute_fill_uses_the_documented_derangement():
    images = torch.rand(7, 1, 8, 8, dtype=torch.float64)
    masks = band_masks(8, 8, 2)
    bands = band_images(images, masks)
    perm = derangement(7, seed=4)
    assert sorted(perm.tolist()) == list(range(7)) and bool((perm != torch.arange(7)).all())
    torch.testing.assert_close(fill_images(bands, masks, "permute", seed=4), bands[:, perm])
    assert fill_images(bands, masks, "zero") is None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_images_and_model_give_phi_close_to_float32(make_cnn, dtype):
    model = make_cnn(3, classes=4, dtype=torch.float32)
    images, labels = torch.rand(8, 3, 16, 16), torch.randint(0, 4, (8,))
    options = dict(num_bands=4, fill="permute", normalization=NORM3)
    reference = spectral_shapley(model, images, labels, **options)
    low = spectral_shapley(model.to(dtype), images.to(dtype), labels, **options)
    scale = float(reference.phi.abs().max())
    assert scale > 0.02, "phi too close to zero for a meaningful comparison"
    assert bool(torch.isfinite(low.phi).all()) and low.phi.dtype == torch.float64
    # Measured: float16 within 0.3 % of max |phi|, bfloat16 within 1.2 %.
    torch.testing.assert_close(low.phi, reference.phi, atol=0.05 * scale, rtol=0)
    torch.testing.assert_close(low.v_full, reference.v_full, atol=0.05, rtol=0.01)
