"""The corruption suite and the adversarial attacks: range, shape, determinism, severity, epsilon, loss, errors."""

import pytest
import torch
from torch import Tensor, nn

from iaside_lightning.corruptions import (
    CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    brightness,
    contrast,
    corrupt,
    elastic,
    fgsm,
    fog,
    gaussian_blur,
    gaussian_noise,
    jpeg,
    pgd,
)
from iaside_lightning.functional import spectral_snr

RANDOM = ("gaussian_noise", "shot_noise", "fog", "elastic")
ALL = CORRUPTIONS + EXTRA_CORRUPTIONS


def _digits(batch: int = 8, size: int = 28, dtype: torch.dtype = torch.float32) -> Tensor:
    """MNIST-like images in [0, 1]: dark background, a few bright strokes, soft edges."""
    generator = torch.Generator().manual_seed(batch * size)
    images = torch.zeros(batch, 1, size, size, dtype=torch.float64)
    length = size // 3
    for b in range(batch):
        for _ in range(3):
            r0, c0 = torch.randint(1, size - length - 1, (2,), generator=generator).tolist()
            if bool(torch.rand(1, generator=generator) < 0.5):
                images[b, 0, r0 : r0 + 2, c0 : c0 + length] = 1.0
            else:
                images[b, 0, r0 : r0 + length, c0 : c0 + 2] = 1.0
    kernel = torch.ones(1, 1, 3, 3, dtype=torch.float64) / 9
    return nn.functional.conv2d(images, kernel, padding=1).clamp(0, 1).to(dtype)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_corruptions_keep_shape_dtype_and_range(name: str, dtype: torch.dtype) -> None:
    images = _digits(dtype=dtype)
    for severity in range(1, 6):
        out = corrupt(images, name, severity)
        assert out.shape == images.shape and out.dtype == dtype and out.device == images.device
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert not torch.equal(out, images)
    assert torch.equal(images, _digits(dtype=dtype))  # inputs untouched


@pytest.mark.parametrize("name", ALL)
def test_corruptions_are_deterministic_and_random_ones_follow_the_seed(name: str) -> None:
    images = _digits()
    assert torch.equal(corrupt(images, name, 3, seed=7), corrupt(images, name, 3, seed=7))
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(corrupt(images, name, 3, seed=7), corrupt(images, name, 3, seed=7))
    assert torch.equal(corrupt(images, name, 3, seed=7), corrupt(images, name, 3, seed=8)) == (name not in RANDOM)


@pytest.mark.parametrize("name", ALL)
def test_a_higher_severity_perturbs_the_images_more(name: str) -> None:
    images = _digits(batch=32)
    sizes = [float(((corrupt(images, name, severity) - images) ** 2).mean()) for severity in range(1, 6)]
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes


def test_corruption_parameters_match_imagenet_c_where_size_independent() -> None:
    grey = torch.full((4, 1, 64, 64), 0.5, dtype=torch.float64)  # far from 0 and 1 at mild severities: no clipping
    for severity, std in ((1, 0.08), (2, 0.12)):
        assert float((gaussian_noise(grey, severity) - grey).std()) == pytest.approx(std, rel=0.03)
    images = _digits(dtype=torch.float64)
    mean = images.mean((1, 2, 3), keepdim=True)
    for severity, factor in ((1, 0.4), (5, 0.05)):
        torch.testing.assert_close(contrast(images, severity), mean + factor * (images - mean))


def test_blur_and_jpeg_hit_high_frequencies_hardest() -> None:
    images = _digits(batch=32, dtype=torch.float64)
    for perturbed in (gaussian_blur(images, 3), jpeg(images, 3)):
        snr = spectral_snr(images, perturbed, num_bands=4)
        assert bool((snr.diff() < 0).all()), snr


def test_brightness_adds_the_imagenet_c_shift_and_clips() -> None:
    images = _digits(dtype=torch.float64)
    for severity, shift in ((1, 0.1), (5, 0.5)):
        torch.testing.assert_close(brightness(images, severity), (images + shift).clamp(0, 1))


def test_fog_is_a_low_frequency_corruption_that_differs_per_image() -> None:
    layers = fog(torch.zeros(32, 1, 28, 28, dtype=torch.float64), 3) * 2  # weight 1: (0 + fog) / 2, fog in [0, 1]
    torch.testing.assert_close(layers.amin((1, 2, 3)), torch.zeros(32, dtype=torch.float64))
    torch.testing.assert_close(layers.amax((1, 2, 3)), torch.ones(32, dtype=torch.float64))
    assert not torch.equal(layers[0], layers[1])
    power = torch.fft.rfft2(layers - layers.mean((-2, -1), keepdim=True)).abs() ** 2
    radius = torch.fft.fftfreq(28)[:, None].hypot(torch.fft.rfftfreq(28)[None, :])
    assert float(power[..., radius < 0.1].sum() / power.sum()) > 0.6  # white noise: about 0.03


def test_elastic_moves_pixels_by_the_documented_distance_and_keeps_flat_images() -> None:
    flat = torch.full((3, 2, 28, 28), 0.4, dtype=torch.float64)
    torch.testing.assert_close(elastic(flat, 5), flat)
    ramp = (torch.arange(28, dtype=torch.float64) / 27).expand(64, 1, 28, 28)  # intensity = column / 27
    for severity, low, high in ((1, 0.25, 0.5), (5, 0.9, 1.6)):
        column_shift = (elastic(ramp, severity, seed=severity) - ramp)[..., 6:-6, 6:-6] * 27  # bilinear is exact
        rms = float(column_shift.pow(2).mean().sqrt())
        assert low < rms < high, (severity, rms)  # docstring: about 0.4 to 1.4 pixels per axis


def test_jpeg_handles_grey_and_rgb_and_refuses_other_channel_counts() -> None:
    rgb = torch.rand(2, 3, 16, 16)
    assert jpeg(rgb, 1).shape == rgb.shape
    with pytest.raises(ValueError, match="1 nor 3|neither|channels"):
        jpeg(torch.rand(2, 2, 16, 16))


@pytest.mark.parametrize(
    ("images", "kwargs", "error", "match"),
    [
        (torch.rand(2, 1, 8, 8), {"name": "snow"}, ValueError, "Unknown corruption 'snow'.*elastic"),
        (torch.rand(2, 1, 8, 8), {"severity": 0}, ValueError, "severity"),
        (torch.rand(2, 1, 8, 8), {"severity": 6}, ValueError, "severity"),
        (torch.rand(2, 1, 8, 8), {"severity": 3.0}, ValueError, "severity"),
        (torch.rand(2, 1, 8, 8), {"severity": True}, ValueError, "severity"),
        (torch.rand(2, 1, 8, 8) * 2 - 0.5, {}, ValueError, r"\[0, 1\].*normalisation"),
        (torch.rand(1, 8, 8), {}, TypeError, "4-D"),
        (torch.ones(2, 1, 8, 8, dtype=torch.uint8), {}, TypeError, "floating-point"),
        (torch.rand(2, 1, 5, 5), {"name": "gaussian_blur", "severity": 5}, ValueError, "at least 7x7"),
        (torch.rand(2, 1, 1, 8), {"name": "fog"}, ValueError, "fog needs images of at least 2x2"),
        (torch.rand(2, 1, 8, 1), {"name": "elastic"}, ValueError, "elastic needs images of at least 2x2"),
        (torch.rand(2, 1, 8, 8) + 1, {"name": "brightness"}, ValueError, r"\[0, 1\]"),
    ],
)
def test_corruption_errors_name_the_problem(images: Tensor, kwargs: dict, error: type, match: str) -> None:
    options = {"name": "gaussian_noise", "severity": 3, **kwargs}
    with pytest.raises(error, match=match):
        corrupt(images, options.pop("name"), **options)


# ----- adversarial attacks ---------------------------------------------------------------------------------------


def _loss(model: nn.Module, images: Tensor, labels: Tensor, norm: tuple[list[float], list[float]]) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model((images - norm[0][0]) / norm[1][0]), labels))


@pytest.mark.parametrize("epsilon", [0.01, 0.1, 0.3])
def test_attacks_stay_within_epsilon_and_range_and_increase_the_loss(make_cnn, epsilon: float) -> None:
    model = make_cnn(classes=3, dtype=torch.float32)
    images, labels = _digits(batch=16, size=12), torch.randint(0, 3, (16,))
    norm = ([0.2], [0.3])
    clean_loss = _loss(model, images, labels, norm)
    for adv in (fgsm(model, images, labels, epsilon, normalization=norm),
                pgd(model, images, labels, epsilon, steps=5, normalization=norm)):
        assert adv.shape == images.shape and adv.dtype == images.dtype and not adv.requires_grad
        assert float((adv - images).abs().max()) <= epsilon + 1e-6
        assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
        assert _loss(model, adv, labels, norm) > clean_loss


def test_fgsm_is_the_exact_worst_case_of_a_two_class_linear_model_and_pgd_cannot_beat_it() -> None:
    """For logits ``W (x - m) / s + b`` the loss grows with ``(w_other - w_true) . x``: the L-inf optimum moves every
    pixel by ``epsilon`` along ``sign(w_other - w_true)`` (no clipping when the pixels stay inside [0, 1])."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 2)).double()
    images = 0.3 + 0.4 * torch.rand(5, 1, 6, 6, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0, 1])
    weight = model[1].weight.detach()
    direction = torch.sign(weight[1 - labels] - weight[labels]).reshape(images.shape)
    optimum = images + 0.05 * direction
    torch.testing.assert_close(fgsm(model, images, labels, 0.05, normalization=([0.5], [0.2])), optimum)
    strongest = pgd(model, images, labels, 0.05, steps=20, normalization=([0.5], [0.2]))
    torch.testing.assert_close(strongest, optimum)


def test_attacking_through_normalization_equals_attacking_the_normalising_model(make_cnn) -> None:
    model = make_cnn(channels=3, classes=4, dtype=torch.float64)
    images, labels = _digits(batch=6, size=10, dtype=torch.float64).expand(-1, 3, -1, -1), torch.arange(6) % 4
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.4, 0.3]
    composed = lambda x: model((x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None])  # noqa: E731
    torch.testing.assert_close(
        pgd(model, images, labels, 0.1, steps=3, normalization=(mean, std), seed=4),
        pgd(composed, images, labels, 0.1, steps=3, seed=4),
    )


def test_attacks_are_seeded_restore_modes_and_leave_parameter_gradients_alone(make_cnn) -> None:
    model = nn.Sequential(make_cnn(dtype=torch.float32), nn.BatchNorm1d(3)).train()
    model[0].eval()  # mixed modes, each to be restored
    images, labels = _digits(batch=8, size=12), torch.randint(0, 3, (8,))
    running = model[1].running_mean.clone()
    first = pgd(model, images, labels, 0.1, steps=2, seed=3)
    with torch.inference_mode():  # e.g. inside trainer.validate
        again = pgd(model, images, labels, 0.1, steps=2, seed=3)
    assert torch.equal(first, again) and not torch.equal(first, pgd(model, images, labels, 0.1, steps=2, seed=4))
    assert model.training and model[1].training and not model[0].training
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(model[1].running_mean, running)  # eval mode during the attack: no batch-norm update


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epsilon": -0.1}, ValueError, "epsilon"),
        ({"steps": 0}, ValueError, "steps"),
        ({"step_size": 0.0}, ValueError, "step_size"),
        ({"labels": torch.zeros(4)}, TypeError, "labels"),
        ({"labels": torch.zeros(3, dtype=torch.int64)}, ValueError, r"`labels` must have shape \[N\] = \[4\]"),
        ({"images": torch.rand(4, 1, 8, 8) + 1}, ValueError, "pixel-space"),
        ({"normalization": ([0.5, 0.5], [0.2])}, ValueError, "normalization"),
    ],
)
def test_attack_errors_name_the_problem(make_cnn, kwargs: dict, error: type, match: str) -> None:
    options = {"images": torch.rand(4, 1, 8, 8), "labels": torch.zeros(4, dtype=torch.int64), "epsilon": 0.1, **kwargs}
    with pytest.raises(error, match=match):
        pgd(make_cnn(dtype=torch.float32), options.pop("images"), options.pop("labels"), options.pop("epsilon"),
            **options)
