"""Region-aware localization against a pixel-shuffled baseline: ``attribution_region_shares``, ``shuffle_pixels``,
``AttributionLocalization(regions=...)`` and BlockMNIST's ``null_pattern_masks``, on attributions whose answer is
known."""

import pytest
import torch
from torch import Tensor

from iaside_lightning.datasets.block_mnist import make_block_mnist, null_pattern_masks
from iaside_lightning.datasets.block_mnist_digits import load_digits
from iaside_lightning.functional.sanity.localization import attribution_region_shares, shuffle_pixels
from iaside_lightning.metrics import AttributionLocalization


@pytest.fixture(scope="module")
def block_mnist() -> tuple[Tensor, Tensor, Tensor]:
    """Synthetic BlockMNIST images, signal masks and null-pattern ink masks."""
    digits, digit_labels = load_digits("synthetic", num_per_class=6)
    images, _, masks = make_block_mnist(digits, digit_labels, classes=(0, 1))
    return images, masks, null_pattern_masks(masks)


def _regions(masks: Tensor, ink: Tensor) -> dict[str, Tensor]:
    return {"digit": masks, "pattern": ink, "background": ~masks & ~ink}


# ------------------------------------------------------------------------------------------------ null_pattern_masks


def test_null_pattern_masks_are_the_square_ink_on_the_null_block(block_mnist: tuple[Tensor, Tensor, Tensor]) -> None:
    images, masks, ink = block_mnist
    null_block = ~masks
    assert not bool((ink & masks).any())
    assert bool((images[ink] > 0).all()) and bool((images[null_block & ~ink] == 0).all())  # ink exactly where drawn
    assert ink.sum((1, 2, 3)).unique().tolist() == [156]  # the same outline in every image, top or bottom
    tops = masks[:, 0, 0, 0]
    assert bool(tops.any()) and bool((~tops).any())
    assert torch.equal(ink[tops][0, :, 28:], ink[~tops][0, :, :28])  # the pattern moves with the null block


def test_null_pattern_masks_of_a_custom_pattern_and_block_size() -> None:
    digits, digit_labels = load_digits("synthetic", num_per_class=2)
    pattern = torch.zeros(1, 14, 14)
    pattern[0, 3:5, 3:9] = 0.7
    images, _, masks = make_block_mnist(digits, digit_labels, null_pattern=pattern, block_size=14)
    ink = null_pattern_masks(masks, pattern)
    assert ink.shape == masks.shape and ink.sum((1, 2, 3)).unique().tolist() == [12]
    assert torch.equal(images[ink], torch.full((12 * len(images),), 0.7))
    square = null_pattern_masks(make_block_mnist(digits, digit_labels, block_size=14)[2])
    assert 0 < int(square[0].sum()) < 14 * 14  # the resized outline


@pytest.mark.parametrize(
    ("masks", "pattern", "match"),
    [
        (torch.ones(2, 1, 56, 28), "square", "masks"),  # not bool
        (torch.ones(2, 1, 28, 28, dtype=torch.bool), "square", "masks"),  # not two stacked blocks
        (torch.ones(2, 56, 28, dtype=torch.bool), "square", "masks"),
        (torch.ones(2, 1, 56, 28, dtype=torch.bool), torch.zeros(1, 14, 14), "null_pattern"),
        (torch.ones(2, 1, 56, 28, dtype=torch.bool), "circle", "null_pattern"),
    ],
)
def test_bad_null_pattern_mask_inputs_are_named(masks: Tensor, pattern: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        null_pattern_masks(masks, pattern)


# ---------------------------------------------------------------------------------------- attribution_region_shares


def test_all_mass_on_the_pattern(block_mnist: tuple[Tensor, Tensor, Tensor]) -> None:
    _, masks, ink = block_mnist
    shares = attribution_region_shares(ink.float() * 3.0, _regions(masks, ink))
    area = 156 / (56 * 28)
    assert torch.equal(shares.mass["pattern"], torch.ones(len(masks), dtype=torch.float64))
    assert torch.allclose(shares.baseline["pattern"], torch.full((len(masks),), area, dtype=torch.float64))
    assert torch.allclose(shares.excess["pattern"], torch.full((len(masks),), 1 - area, dtype=torch.float64))
    assert torch.allclose(shares.excess["digit"], torch.full((len(masks),), -0.5, dtype=torch.float64))


def test_uniform_attribution_scores_exactly_its_baseline(block_mnist: tuple[Tensor, Tensor, Tensor]) -> None:
    _, masks, ink = block_mnist
    shares = attribution_region_shares(-torch.ones(masks.shape, dtype=torch.float64), _regions(masks, ink))
    for name in ("digit", "pattern", "background"):
        assert torch.allclose(shares.mass[name], shares.baseline[name], rtol=0, atol=1e-12)
        assert float(shares.excess[name].abs().max()) < 1e-12
    total = sum(shares.baseline.values())
    assert torch.allclose(total, torch.ones_like(total))  # the three regions cover the image


def test_iid_noise_is_at_the_baseline_and_a_preference_is_not(block_mnist: tuple[Tensor, Tensor, Tensor]) -> None:
    _, masks, ink = block_mnist
    noise = torch.randn(masks.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    regions = _regions(masks, ink)
    diffuse = attribution_region_shares(noise, regions)
    for name in regions:
        assert abs(float(diffuse.excess[name].mean())) < 0.02  # no structure: no excess anywhere
    leaking = attribution_region_shares(noise * (1 + ink), regions)  # twice the noise on the pattern's ink
    assert float(leaking.excess["pattern"].min()) > 0.05
    assert float(leaking.excess["background"].max()) < 0  # the rest gives way


def test_the_baseline_is_the_mean_over_shuffles(block_mnist: tuple[Tensor, Tensor, Tensor]) -> None:
    _, masks, ink = block_mnist
    attributions = torch.zeros(masks.shape, dtype=torch.float64)
    attributions[ink] = 5.0  # a maximally structured map: every shuffle scatters it
    regions = _regions(masks, ink)
    shuffled = torch.stack(
        [attribution_region_shares(shuffle_pixels(attributions, seed=s), regions).mass["pattern"] for s in range(400)]
    )
    baseline = attribution_region_shares(attributions, regions).baseline["pattern"]
    assert torch.allclose(shuffled.mean(0), baseline, atol=0.01)  # the analytic baseline is the shuffles' mean
    assert float(shuffled.std(0).min()) > 0.005  # single shuffles do vary


def test_region_shares_ignore_signs_channels_and_scale() -> None:
    generator = torch.Generator().manual_seed(1)
    attributions = torch.randn(4, 3, 6, 6, generator=generator, dtype=torch.float64)
    regions = {"left": torch.zeros(4, 6, 6, dtype=torch.bool)}
    regions["left"][:, :, :2] = True
    reference = attribution_region_shares(attributions.abs().sum(1), regions)
    for transformed in (-attributions, 4.5 * attributions):
        shares = attribution_region_shares(transformed, regions)
        assert torch.allclose(shares.mass["left"], reference.mass["left"], rtol=1e-12)
    assert torch.allclose(reference.baseline["left"], torch.full((4,), 1 / 3, dtype=torch.float64))


def test_all_zero_attributions_are_invalid() -> None:
    regions = {"top": torch.zeros(2, 4, 4, dtype=torch.bool)}
    regions["top"][:, 0] = True
    attributions = torch.zeros(2, 1, 4, 4)
    attributions[1, 0, 0, 0] = 1.0
    shares = attribution_region_shares(attributions, regions)
    assert shares.valid.tolist() == [False, True]
    assert torch.isnan(shares.mass["top"][0]) and torch.isnan(shares.baseline["top"][0]) and float(shares.mass["top"][1]) == 1.0


@pytest.mark.parametrize(
    ("regions", "match"),
    [
        ({}, "regions"),
        ([torch.ones(2, 4, 4, dtype=torch.bool)], "regions"),
        ({"a": torch.ones(2, 4, 4, dtype=torch.bool), "b": torch.ones(2, 4, 4, dtype=torch.bool)}, "overlap"),
        ({"a": torch.ones(2, 4, 5, dtype=torch.bool)}, "masks"),
        ({"a": torch.full((2, 4, 4), 0.5)}, "masks"),
    ],
)
def test_bad_regions_are_named(regions: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        attribution_region_shares(torch.rand(2, 1, 4, 4), regions)


# ------------------------------------------------------------------------------------------------------ shuffle_pixels


def test_shuffle_pixels_permutes_whole_pixels_within_each_image() -> None:
    attributions = torch.arange(2 * 3 * 16, dtype=torch.float64).reshape(2, 3, 4, 4)
    attributions[:, 1] *= 10  # every pixel's channels differ, so a channel moved alone would show
    shuffled = shuffle_pixels(attributions, seed=3)
    for image, original in zip(shuffled, attributions):
        pixels, reference = image.flatten(1).T, original.flatten(1).T  # [pixels, channels]
        assert sorted(map(tuple, pixels.tolist())) == sorted(map(tuple, reference.tolist()))  # the same pixels
    assert not torch.equal(shuffled, attributions)
    assert torch.equal(shuffle_pixels(attributions, seed=3), shuffled)  # seeded
    assert not torch.equal(shuffle_pixels(attributions, seed=4), shuffled)
    assert shuffle_pixels(attributions[:, 0], seed=3).shape == (2, 4, 4)  # [N, H, W] too


def test_shuffle_pixels_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    shuffle_pixels(torch.ones(2, 1, 4, 4), seed=0)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(("attributions", "seed", "error"), [
    (torch.ones(2, 16, dtype=torch.float32), 0, TypeError),
    (torch.ones(2, 1, 4, 4, dtype=torch.long), 0, TypeError),
    (torch.ones(2, 1, 4, 4), 1.5, ValueError),
    (torch.ones(2, 1, 4, 4), True, ValueError),
])  # fmt: skip
def test_bad_shuffle_inputs_are_refused(attributions: Tensor, seed: object, error: type) -> None:
    with pytest.raises(error):
        shuffle_pixels(attributions, seed=seed)


# ------------------------------------------------------------------------------- AttributionLocalization(regions=...)


def test_metric_regions_equal_the_functional_over_any_batch_split(block_mnist: tuple[Tensor, Tensor, Tensor]) -> None:
    _, masks, ink = block_mnist
    attributions = torch.randn(masks.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    attributions *= 1 + 3 * ink  # some leakage onto the pattern
    regions = {"pattern": ink, "background": ~masks & ~ink}
    whole = AttributionLocalization(regions=tuple(regions))
    whole.update(attributions, masks, regions=regions)
    split = AttributionLocalization(regions=tuple(regions))
    for part in (slice(0, 5), slice(5, None)):
        split.update(attributions[part], masks[part], regions={k: v[part] for k, v in regions.items()})
    result, parts = whole.compute(), split.compute()
    for key, value in result.items():
        assert float(parts[key]) == pytest.approx(float(value), rel=1e-10, abs=1e-8), key  # stderr of a constant: round-off
    shares = attribution_region_shares(attributions, {"inside": masks, **regions})
    for name in ("inside", "pattern", "background"):
        assert float(result[f"mass/{name}"]) == pytest.approx(float(shares.mass[name].mean()), rel=1e-12)
        assert float(result[f"excess/{name}"]) == pytest.approx(
            float(result[f"mass/{name}"]) - float(result[f"baseline/{name}"]), abs=1e-12
        )
        paired = shares.excess[name]
        assert float(result[f"excess/{name}_stderr"]) == pytest.approx(float(paired.std() / len(paired) ** 0.5), rel=1e-9)
    assert float(result["excess/pattern"]) > 0.1  # the constructed leakage shows
    assert float(result["mass_inside"]) == pytest.approx(float(result["mass/inside"]), rel=1e-12)


def test_metric_without_regions_keeps_its_keys() -> None:
    metric = AttributionLocalization()
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    masks[:, :, :2] = True
    metric.update(torch.rand(2, 1, 4, 4), masks)
    assert {key.split("_stderr")[0].split("_count")[0] for key in metric.compute()} == {
        "mass_inside", "pointing_game", "top_k_outside"
    }


@pytest.mark.parametrize("regions", ["pattern", ("inside",), ("a", "a"), ("",), (3,)])
def test_bad_declared_regions_are_named(regions: object) -> None:
    with pytest.raises(ValueError, match="regions"):
        AttributionLocalization(regions=regions)


@pytest.mark.parametrize(
    ("declared", "given"),
    [(("pattern",), None), (("pattern",), {"other": None}), (None, {"pattern": None}), (("a", "b"), {"a": None})],
)
def test_regions_must_match_the_declared_names(declared: object, given: object) -> None:
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    masks[:, :, :2] = True
    ink = torch.zeros_like(masks)
    ink[:, :, 3] = True
    given = None if given is None else {name: ink for name in given}
    with pytest.raises(ValueError, match="declared"):
        AttributionLocalization(regions=declared).update(torch.rand(2, 1, 4, 4), masks, regions=given)


def test_a_region_overlapping_the_mask_is_refused() -> None:
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    masks[:, :, :2] = True
    with pytest.raises(ValueError, match="overlap"):
        AttributionLocalization(regions=("top",)).update(torch.rand(2, 1, 4, 4), masks, regions={"top": masks})


def test_no_extra_regions_scores_the_mask_against_its_baseline() -> None:
    masks = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    masks[:, :, 0] = True  # a quarter of the pixels
    attributions = masks.double() + 1.0  # twice the magnitude on the mask: 8 of 20 units
    metric = AttributionLocalization(regions=())
    metric.update(attributions, masks, regions={})
    result = metric.compute()
    assert float(result["mass/inside"]) == pytest.approx(0.4) and float(result["baseline/inside"]) == pytest.approx(0.25)
    assert float(result["excess/inside"]) == pytest.approx(0.15) and float(result["excess/inside_stderr"]) == pytest.approx(0, abs=1e-9)
