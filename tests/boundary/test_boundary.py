"""Boundary search, IG/BIG and boundary geometry against analytic ground truth and brute-force references.

The ground-truth model is a binary linear classifier with logits ``(-g / 2, g / 2)``, ``g(x) = w . x + b``: its
decision boundary is the hyperplane ``g = 0``, the distance of ``x`` to it is ``|g(x)| / ||w||``, and the gradient of
either logit is ``+-w / 2``, the boundary normal.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from iaside_lightning.functional import (
    boundary_geometry,
    boundary_integrated_gradients,
    boundary_saliency,
    boundary_search,
    input_gradient,
    integrated_gradients,
    pgd_attack,
)

pytestmark = pytest.mark.usefixtures("single_thread")


class HalfSpace(nn.Module):
    """Binary linear classifier with logits ``(-g / 2, g / 2)``."""

    def __init__(self, shape: tuple[int, ...] = (1, 4, 4), seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(shape, generator=g, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(0.1, dtype=torch.float64))

    def g(self, x: Tensor) -> Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b

    def forward(self, x: Tensor) -> Tensor:
        g = self.g(x)
        return torch.stack([-g / 2, g / 2], dim=1)

    def distance(self, x: Tensor) -> Tensor:
        return self.g(x).abs() / self.w.norm()


def _images(n: int = 12, shape: tuple[int, ...] = (1, 4, 4), seed: int = 1) -> Tensor:
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.Softplus(beta=4), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 3)
    ).double()


def _labels(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


# ----------------------------------------------------------------------------------------------------- attacks


@pytest.mark.parametrize("norm", ["l2", "linf"])
@settings(max_examples=15, deadline=None)
@given(epsilon=st.floats(0.01, 2.0), steps=st.integers(1, 6), seed=st.integers(0, 100), start=st.booleans())
def test_pgd_respects_epsilon_and_bounds(norm: str, epsilon: float, steps: int, seed: int, start: bool) -> None:
    model, x = _cnn(), _images()
    y = torch.randint(0, 3, (len(x),), generator=torch.Generator().manual_seed(seed))
    adv, _ = pgd_attack(model, x, y, epsilon, norm=norm, steps=steps, random_start=start, bounds=(0.0, 1.0), seed=seed)
    delta = (adv - x).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(1)
    assert bool((size <= epsilon * (1 + 1e-9) + 1e-12).all())
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0


def test_pgd_per_channel_bounds() -> None:
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Flatten(), nn.Linear(2 * 16, 2)).double()
    x = torch.rand(4, 2, 4, 4, dtype=torch.float64) - 0.5
    x[:, 1] *= 0.2  # the clean images lie inside the per-channel box (outside it they are refused)
    adv, _ = pgd_attack(model, x, torch.zeros(4, dtype=torch.long), 5.0, norm="linf", steps=3, bounds=((-0.5, -0.1), (0.5, 0.1)))
    assert float(adv[:, 1].abs().max()) <= 0.1 + 1e-12 and float(adv[:, 0].abs().max()) <= 0.5 + 1e-12


def test_pgd_moves_along_the_normal_of_a_linear_boundary() -> None:
    model, x = HalfSpace(), _images()
    y = _labels(model, x)
    adv, flipped = pgd_attack(model, x, y, epsilon=10.0, norm="l2", steps=50, random_start=False)
    assert bool(flipped.all())
    delta = (adv - x).flatten(1)
    normal = model.w.detach().flatten()
    cos = (delta @ normal).abs() / (delta.norm(dim=1) * normal.norm())
    torch.testing.assert_close(cos, torch.ones_like(cos))


def test_stop_at_flip_keeps_the_first_flipping_iterate() -> None:
    """The first flipping L2 iterate along the normal is within one step of the boundary; the last is far past it."""
    model, x = HalfSpace(), _images()
    y = _labels(model, x)
    epsilon, steps = 10.0, 50
    first, flipped = pgd_attack(model, x, y, epsilon, steps=steps, random_start=False, stop_at_flip=True)
    last, _ = pgd_attack(model, x, y, epsilon, steps=steps, random_start=False)
    assert bool(flipped.all())
    step = 2 * epsilon / steps
    past = (first - x).flatten(1).norm(dim=1) - model.distance(x).detach()
    assert bool((past >= 0).all()) and bool((past <= step + 1e-9).all())
    assert bool(((last - x).flatten(1).norm(dim=1) > model.distance(x).detach() + 2 * step).all())


# ------------------------------------------------------------------------------------------------ boundary search


def test_ladder_keeps_the_smallest_flipping_epsilon_per_sample() -> None:
    model, x = HalfSpace(), _images(40)
    y = _labels(model, x)
    ladder = [0.2, 0.4, 0.8, 1.6, 3.2]
    result = boundary_search(model, x, y, epsilons=ladder, steps=40, random_start=False)
    truth = model.distance(x).detach()
    expected = torch.tensor([next((e for e in ladder if e >= d), math.nan) for d in truth.tolist()], dtype=torch.float64)
    clear = torch.tensor([min(abs(d - e) for e in ladder) > 1e-3 for d in truth.tolist()])  # not on a rung
    torch.testing.assert_close(result.epsilon[clear], expected[clear], equal_nan=True)
    assert bool((result.found == ~torch.isnan(expected)).all())
    assert result.success_rate == float((~torch.isnan(expected)).double().mean())


@pytest.mark.parametrize("random_start", [False, True])
def test_bisection_lands_within_tolerance_of_the_boundary(random_start: bool) -> None:
    model, x = HalfSpace(), _images(30)
    y = _labels(model, x)
    bisection, eps_max = 12, 4.0
    result = boundary_search(
        model, x, y, epsilons=[1.0, 2.0, eps_max], steps=20, random_start=random_start, bisection_steps=bisection
    )
    assert bool(result.found.all())
    with torch.no_grad():
        assert bool((model(result.points).argmax(1) != y).all())  # on the far side ...
        gap = model.distance(result.points)  # ... by at most the final bracket
    assert float(gap.max()) <= eps_max * 2.0**-bisection + 1e-12
    if not random_start:  # straight along the normal: the distance is the analytic one
        torch.testing.assert_close(result.distance, model.distance(x).detach(), rtol=0, atol=eps_max * 2.0**-bisection)
    else:  # never closer than the true boundary
        assert bool((result.distance >= model.distance(x).detach() - 1e-9).all())


def test_bisection_on_a_cnn_brackets_the_boundary() -> None:
    model, x = _cnn(), _images(16)
    y = _labels(model, x)
    result = boundary_search(model, x, y, epsilons=[1.0, 4.0, 16.0], steps=10, bisection_steps=10)
    assert result.success_rate > 0.5
    hit = result.found
    with torch.no_grad():
        assert bool((model(result.points[hit]).argmax(1) != y[hit]).all())
        # One bracket (<= 2^-10 of the segment) back towards x is still on the clean side.
        back = x[hit] + (1 - 2.0**-9) * (result.points[hit] - x[hit])
        flips = (model(back).argmax(1) != y[hit]).double().mean()
    assert float(flips) < 1.0  # not every sample is deep in the other region


def test_unreachable_and_misclassified_samples_are_reported_not_mixed_in() -> None:
    model, x = HalfSpace(), _images(20)
    y = _labels(model, x)
    y[:5] = 1 - y[:5]  # misclassified
    result = boundary_search(model, x, y, epsilons=[1e-4], steps=5, random_start=False)
    assert not bool(result.correct[:5].any()) and bool(result.correct[5:].all())
    assert not bool(result.found[:5].any())
    assert bool(torch.isnan(result.distance[~result.found]).all()) and bool(torch.isnan(result.epsilon[~result.found]).all())
    torch.testing.assert_close(result.points[~result.found], x[~result.found])
    assert result.success_rate == float(result.found[5:].double().mean())


def test_search_has_no_side_effects() -> None:
    model = _cnn()
    model.train()
    model[1].eval()  # a submodule frozen in eval stays in eval
    x = _images(8)
    y = torch.zeros(8, dtype=torch.long)
    rng = torch.get_rng_state()
    with torch.inference_mode():  # as in a Lightning validation hook
        result = boundary_geometry(model, x, y, steps=3, epsilons=[0.5, 2.0])
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training and not model[1].training and model[0].training
    assert all(p.grad is None for p in model.parameters())
    assert result.big.shape == x.shape


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epsilons": []}, "epsilons"),
        ({"epsilons": [0.5, 0.2]}, "epsilons"),
        ({"norm": "l1"}, "norm"),
        ({"steps": 0}, "steps"),
        ({"bisection_steps": -1}, "bisection_steps"),
        ({"bounds": (1.0, 0.0)}, "bounds"),
        ({"step_size_factor": 0}, "step_size_factor"),
    ],
)
def test_bad_search_options_name_the_argument(kwargs: dict, match: str) -> None:
    model, x = HalfSpace(), _images(2)
    with pytest.raises(ValueError, match=match):
        boundary_search(model, x, torch.zeros(2, dtype=torch.long), **kwargs)


def test_bad_inputs_name_the_argument() -> None:
    model, x = HalfSpace(), _images(2)
    with pytest.raises(TypeError, match="images"):
        boundary_search(model, x[0], torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`labels` must have shape \[N\] = \[2\]"):  # a shape: ValueError everywhere
        boundary_search(model, x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="`labels` must be an integer tensor"):
        boundary_search(model, x, torch.zeros(2))
    with pytest.raises(ValueError, match="labels"):
        input_gradient(model, x, torch.tensor([0, 5]))
    with pytest.raises(TypeError, match="output_transform"):
        input_gradient(lambda t: {"logits": model(t)}, x, torch.zeros(2, dtype=torch.long))


# ----------------------------------------------------------------------------------------------- attributions


def _reference_ig(model: nn.Module, x: Tensor, y: Tensor, baseline: Tensor, steps: int) -> Tensor:
    """Trapezoid rule on ``steps`` equally spaced points of the straight path, one autograd call per point."""
    total = torch.zeros_like(x)
    for i in range(steps):
        alpha = i / (steps - 1)
        point = (baseline + alpha * (x - baseline)).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(point).gather(1, y[:, None]).sum(), point)
        total += grad * (0.5 if i in (0, steps - 1) else 1.0) / (steps - 1)
    return (x - baseline) * total


@pytest.mark.parametrize("steps", [2, 10, 33])
def test_integrated_gradients_equal_a_brute_force_trapezoid(steps: int) -> None:
    model, x = _cnn(), _images(6)
    y = _labels(model, x)
    baseline = _images(6, seed=9)
    got = integrated_gradients(model, x, y, baseline, steps=steps)
    # Captum applies its step weights in float32: agreement to float32 precision.
    torch.testing.assert_close(got, _reference_ig(model.eval(), x, y, baseline, steps), rtol=1e-6, atol=1e-9)


def test_big_completeness_converges_with_steps() -> None:
    model, x = _cnn(), _images(10)
    y = _labels(model, x)
    points = boundary_search(model, x, y, epsilons=[1.0, 4.0, 16.0], steps=10, bisection_steps=8).points
    with torch.no_grad():
        gap = (model(x) - model(points)).gather(1, y[:, None])[:, 0]
    errors = []
    for steps in (4, 16, 64):
        big, delta = boundary_integrated_gradients(model, x, y, points, steps=steps, return_delta=True)
        torch.testing.assert_close(big.flatten(1).sum(1) - gap, delta)  # delta is the completeness error
        errors.append(float(delta.abs().max()))
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] <= 1e-3 * float(gap.abs().max())


def test_linear_model_attributions_are_exact() -> None:
    model, x = HalfSpace(), _images(5)
    y = _labels(model, x)
    sign = (2 * y - 1).double()[:, None, None, None]
    w = model.w.detach()
    torch.testing.assert_close(input_gradient(model, x, y), sign * w / 2 * torch.ones_like(x))
    points = boundary_search(model, x, y, epsilons=[8.0], steps=30, bisection_steps=20, random_start=False).points
    big, delta = boundary_integrated_gradients(model, x, y, points, return_delta=True)
    torch.testing.assert_close(big, sign * w / 2 * (x - points), rtol=1e-6, atol=1e-9)
    assert float(delta.abs().max()) < 1e-6 * float(model.g(x).detach().abs().max())  # exact up to Captum's float32 weights
    torch.testing.assert_close(boundary_saliency(model, points, y), sign * w / 2 * torch.ones_like(x))
    torch.testing.assert_close(boundary_saliency(model, points, y, times_input=True, images=x), sign * w / 2 * x)


# -------------------------------------------------------------------------------------------------- geometry


def test_geometry_of_a_linear_model() -> None:
    """Gradient and boundary normal coincide; IG (from 0) and BIG both equal w * (x - baseline): cosines follow."""
    model, x = HalfSpace(), _images(10)
    y = _labels(model, x)
    geometry = boundary_geometry(model, x, y, epsilons=[8.0], steps=30, bisection_steps=20, random_start=False)
    assert bool(geometry.search.found.all())
    torch.testing.assert_close(geometry.cos_gradient_boundary, torch.ones(10, dtype=torch.float64))
    torch.testing.assert_close(geometry.search.distance, model.distance(x).detach(), rtol=0, atol=1e-5)
    assert float(geometry.big_completeness_error.abs().max()) < 1e-6 * float(model.g(x).detach().abs().max())


def test_presets_and_overrides() -> None:
    model, x = _cnn(), _images(4)
    y = _labels(model, x)
    fast = boundary_geometry(model, x, y)  # fast preset: epsilons up to 4
    assert fast.search.epsilon[fast.search.found].max() <= 4.0
    one = boundary_geometry(model, x, y, epsilons=[64.0], steps=2, bisection_steps=0)
    assert bool((one.search.epsilon[one.search.found] == 64.0).all())
    with pytest.raises(ValueError, match="preset"):
        boundary_geometry(model, x, y, preset="slow")


def test_inputs_made_under_inference_mode_work() -> None:
    """As in ``Trainer.validate``: images and labels are inference tensors, yet gradients and BIG work."""
    model = _cnn()
    with torch.inference_mode():
        x = _images(4) * 1.0
        y = torch.zeros(4, dtype=torch.long) + 0
        assert x.is_inference() and y.is_inference()
        geometry = boundary_geometry(model, x, y, epsilons=[1.0, 16.0], steps=3)
    assert geometry.gradient.abs().sum() > 0 and geometry.integrated_gradients.abs().sum() > 0


def test_non_finite_logits_in_attributions_get_a_message_about_attributions_not_spectral_importance():
    class Exploding(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return torch.stack([x.flatten(1).sum(1) * float("inf"), x.flatten(1).sum(1)], dim=1)

    with pytest.raises(ValueError, match="NaN or infinite logits") as info:
        input_gradient(Exploding(), torch.rand(2, 1, 4, 4), torch.tensor([0, 1]))
    assert "spectral" not in str(info.value)


@pytest.mark.parametrize("search", [True, False])
def test_images_outside_the_bounds_are_refused_with_their_range(search: bool) -> None:
    """Normalised images with pixel bounds (0, 1) used to be clipped first: wrong distances or no boundary at all."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    normalised = (torch.rand(4, 1, 4, 4) - 0.13) / 0.31  # about -0.4 to 2.8
    labels = torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="outside `bounds`") as info:
        if search:
            boundary_search(model, normalised, labels, epsilons=[0.5], norm="l2", steps=3, bounds=(0.0, 1.0))
        else:
            pgd_attack(model, normalised, labels, epsilon=0.5, norm="l2", steps=3, bounds=(0.0, 1.0))
    assert "per-channel ranges" in str(info.value) and "normalised" in str(info.value)
