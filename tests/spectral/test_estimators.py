"""Sampling estimators of Shapley values: exactness where theory says so, accuracy, calibrated error bars, plumbing.

References are independent of the estimators: polynomial games have closed-form Shapley values (a term
``c * prod_{k in T} z_k`` gives ``c / |T|`` to every member of ``T``), and any game is solved by brute force with
:func:`per_sample_shapley` over all ``2^M`` coalitions.
"""

import math

import pytest
import torch

from iaside_lightning.functional import coalition_matrix, coalition_values, per_sample_shapley, spectral_shapley
from iaside_lightning.functional.spectral.estimators import (
    estimate_shapley,
    estimate_statistics,
    kernel_shapley,
    permutation_pairs,
    permutation_shapley,
    resolve_estimator,
)
from iaside_lightning.functional.spectral.result import compute_result
from iaside_lightning.functional.spectral.shapley import ShapleyStatistics, shapley_statistics, sum_statistics

SAMPLERS = {"permutation": permutation_shapley, "kernel": kernel_shapley}
Z95 = 1.959963984540054


class Game:
    """Per-sample games ``v_i(z) = sum_T c_iT prod_{k in T} z_k + tanh(g_i . z / 2)`` with known Shapley values."""

    def __init__(self, num_bands: int, batch: int, orders: dict[int, int], nonlinear: float = 0.0, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.num_bands, self.nonlinear = num_bands, nonlinear
        self.terms = [(torch.arange(num_bands).reshape(-1, 1), torch.randn(batch, num_bands, generator=gen).double())]
        for order, count in orders.items():
            members = torch.stack([torch.randperm(num_bands, generator=gen)[:order] for _ in range(count)])
            self.terms.append((members, 0.5 * torch.randn(batch, count, generator=gen).double()))
        self.slopes = torch.randn(batch, num_bands, generator=gen).double()
        self.calls: list[torch.Tensor] = []

    def __call__(self, coalitions: torch.Tensor) -> torch.Tensor:
        self.calls.append(coalitions)
        z = coalitions.double()
        value = sum(coef @ z[:, members].prod(dim=2).T for members, coef in self.terms)
        return value + self.nonlinear * torch.tanh(self.slopes @ z.T / 2)

    def closed_form(self) -> torch.Tensor:
        """Shapley values of the polynomial part, ``[B, M]``."""
        phi = torch.zeros_like(self.slopes)
        for members, coef in self.terms:
            for t in range(members.shape[0]):
                phi[:, members[t]] += (coef[:, t] / members.shape[1])[:, None]
        return phi

    def brute_force(self) -> torch.Tensor:
        return per_sample_shapley(self(coalition_matrix(self.num_bands)))


@pytest.fixture(scope="module")
def game16() -> tuple[Game, torch.Tensor]:
    """M = 16, additive plus interactions of orders 2-4 plus a dense nonlinearity, with brute-force truth."""
    game = Game(16, batch=8, orders={2: 24, 3: 12, 4: 6}, nonlinear=1.0, seed=0)
    return game, game.brute_force()


def test_reference_closed_form_agrees_with_brute_force():
    game = Game(6, batch=3, orders={2: 5, 3: 4, 4: 2, 6: 1}, seed=1)
    torch.testing.assert_close(game.brute_force(), game.closed_form(), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("num_bands", [5, 12])
def test_samplers_are_exact_without_interactions_of_order_three(name, num_bands):
    """Antithetic permutation pairs and paired KernelSHAP resolve additive and pairwise terms exactly."""
    game = Game(num_bands, batch=4, orders={2: 3 * num_bands}, seed=num_bands)
    est = SAMPLERS[name](game, num_bands, max_evaluations=2 + 16 * (num_bands - 1), seed=7)
    torch.testing.assert_close(est.phi, game.closed_form(), atol=1e-10, rtol=0)
    assert float(est.sum_variance.max()) < 1e-20


def test_kernel_is_exact_when_the_budget_covers_every_coalition():
    game = Game(6, batch=3, orders={3: 4, 4: 3}, nonlinear=1.0, seed=2)
    est = kernel_shapley(game, 6, max_evaluations=64, seed=0)
    torch.testing.assert_close(est.phi, game.brute_force(), atol=1e-10, rtol=0)
    assert est.num_evaluations == 64 and bool((est.sum_variance == 0).all())


@pytest.mark.parametrize("name", [*SAMPLERS, "exact"])
def test_every_estimate_is_efficient(name):
    game = Game(9, batch=5, orders={2: 6, 3: 6, 5: 2}, nonlinear=2.0, seed=3)
    est = estimate_shapley(game, 9, name, max_evaluations=200, seed=1)
    full = game(torch.ones(1, 9)).squeeze(1) - game(torch.zeros(1, 9)).squeeze(1)
    torch.testing.assert_close(est.phi.sum(1), full, atol=1e-10, rtol=0)
    torch.testing.assert_close(est.v_full - est.v_empty, full, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", SAMPLERS)
def test_accuracy_at_16_bands_with_2_percent_of_the_exact_evaluations(name, game16):
    """max |phi_hat - phi| <= 2% of sum |phi| with <= 1310 of the 65536 coalitions, for the batch mean."""
    game, truth = game16
    for seed in range(4):
        est = SAMPLERS[name](game, 16, max_evaluations=1310, seed=seed)
        assert est.num_evaluations <= 1310
        error = (est.phi.mean(0) - truth.mean(0)).abs().max()
        assert error <= 0.02 * truth.mean(0).abs().sum(), (seed, float(error))


@pytest.mark.parametrize("name", SAMPLERS)
def test_nominal_95_percent_intervals_cover_the_truth(name, game16):
    """50 seeds x 16 bands: the intervals phi +- 1.96 estimator_stderr cover the exact mean at least 90% of the time."""
    game, truth = game16
    covered = []
    for seed in range(50):
        est = SAMPLERS[name](game, 16, max_evaluations=1310, seed=100 + seed)
        stderr = est.sum_variance.sqrt() / est.phi.shape[0]
        covered.append((est.phi.mean(0) - truth.mean(0)).abs() <= Z95 * stderr + 1e-12)
    coverage = float(torch.stack(covered).double().mean())
    assert coverage >= 0.90, coverage


@pytest.mark.parametrize("name", SAMPLERS)
def test_standard_error_accounts_for_coalitions_shared_by_the_batch(name):
    """Eight copies of one game: the samples' spread is zero, yet the estimate is noisy; the reported stderr
    (built from the estimator's own replicates) must cover the truth, the across-sample one cannot."""
    game = Game(10, batch=1, orders={3: 10, 4: 6}, nonlinear=1.0, seed=4)
    truth = game.brute_force()[0]
    copies = lambda z: game(z).expand(8, -1)  # noqa: E731
    covered, errors = [], []
    for seed in range(30):
        result = compute_result(estimate_statistics(SAMPLERS[name](copies, 10, 300, seed)), torch.linspace(0, 1, 11))
        errors.append((result.phi - truth).abs().max())
        covered.append((result.phi - truth).abs() <= Z95 * result.stderr + 1e-12)
        torch.testing.assert_close(result.stderr, result.estimator_stderr, atol=1e-12, rtol=0)
    assert float(torch.stack(errors).max()) > 1e-3  # the estimate is genuinely noisy
    assert float(torch.stack(covered).double().mean()) >= 0.85


def test_batch_statistics_reduce_exactly_by_summing():
    """Two batches (different seeds, as two processes would use) summed = one result over all samples."""
    game = Game(8, batch=6, orders={3: 8}, nonlinear=1.0, seed=5)
    first = kernel_shapley(lambda z: game(z)[:2], 8, 60, seed=1)
    second = kernel_shapley(lambda z: game(z)[2:], 8, 60, seed=2)
    stats = sum_statistics(estimate_statistics(first), estimate_statistics(second))
    result = compute_result(stats, torch.linspace(0, 1, 9))
    phi = torch.cat([first.phi, second.phi])
    torch.testing.assert_close(result.phi, phi.mean(0))
    torch.testing.assert_close(result.estimator_stderr, (first.sum_variance + second.sum_variance).sqrt() / 6)
    data_var = phi.var(0) / 6
    torch.testing.assert_close(result.stderr, (data_var + result.estimator_stderr**2).sqrt())
    torch.testing.assert_close(result.v_full, torch.cat([first.v_full, second.v_full]).mean())
    assert result.coalition_values is None and stats.value_sum.shape == (2,) and result.num_samples == 6


def test_exact_statistics_carry_zero_estimator_covariance_and_four_field_statistics_work():
    values = Game(4, batch=5, orders={2: 3}, seed=6)(coalition_matrix(4))
    stats = shapley_statistics(values)
    assert bool((stats.estimator_cov_sum == 0).all())
    legacy = ShapleyStatistics(*stats[:4])  # without the optional estimator covariance (exact enumeration)
    for combined in (sum_statistics(stats, legacy), sum_statistics(legacy, legacy)):
        result = compute_result(combined, torch.linspace(0, 1, 5))
        assert result.coalition_values.shape == (16,) and bool((result.estimator_stderr == 0).all())
        phi = per_sample_shapley(values)
        torch.testing.assert_close(result.stderr, torch.cat([phi, phi]).std(0) / math.sqrt(10))


@pytest.mark.parametrize("name", [*SAMPLERS, "exact"])
def test_an_empty_batch_gives_zero_sums(name):
    game = Game(8, batch=0, orders={3: 4}, seed=0)
    stats = estimate_statistics(estimate_shapley(game, 8, name, max_evaluations=120))
    assert float(stats.count) == 0 and stats.phi_sum.shape == (8,) and stats.estimator_cov_sum.shape == (8, 8)
    assert all(float(t.abs().sum()) == 0 for t in stats)


@pytest.mark.parametrize("name", SAMPLERS)
def test_seeded_and_deterministic(name):
    game = Game(10, batch=2, orders={3: 10}, seed=7)
    first, again, other = (SAMPLERS[name](game, 10, 250, seed) for seed in (3, 3, 4))
    torch.testing.assert_close(first.phi, again.phi, atol=0, rtol=0)
    assert not torch.allclose(first.phi, other.phi)


@pytest.mark.parametrize("name", SAMPLERS)
@pytest.mark.parametrize("budget", [250, 600])
def test_the_oracle_sees_each_coalition_once_within_the_budget(name, budget):
    game = Game(12, batch=2, orders={3: 5}, seed=8)
    est = SAMPLERS[name](game, 12, budget, seed=0)
    (asked,) = game.calls
    codes = (asked.long() << torch.arange(12)).sum(1)
    assert codes.unique().numel() == codes.numel() == est.num_evaluations <= budget
    assert {0, 2**12 - 1} <= set(codes.tolist())


def test_permutation_pairs_follow_the_budget_formula():
    assert permutation_pairs(16, 1310) == (1310 - 2) // 30 == 43


def test_auto_enumerates_when_it_fits_and_samples_otherwise():
    game = Game(8, batch=2, orders={3: 6}, nonlinear=1.0, seed=9)
    assert resolve_estimator("auto", 8, 256) == "exact" and resolve_estimator("auto", 8, 255) == "kernel"
    torch.testing.assert_close(estimate_shapley(game, 8, "auto", 256).phi, game.brute_force(), atol=1e-12, rtol=0)
    torch.testing.assert_close(estimate_shapley(game, 8, "auto", 200, seed=5).phi, kernel_shapley(game, 8, 200, 5).phi)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda g: estimate_shapley(g, 8, "bootstrap"), "estimator"),
        (lambda g: estimate_shapley(g, 1, "kernel"), "num_bands"),
        (lambda g: estimate_shapley(g, 8, "kernel", max_evaluations=0), "budget"),
        (lambda g: permutation_shapley(g, 8, 100), "max_evaluations >= 114"),
        (lambda g: kernel_shapley(g, 8, 20), "max_evaluations >= 34"),
        (lambda g: kernel_shapley(g, 8, 100, seed=1.5), "seed"),
    ],
)
def test_invalid_arguments_are_explained(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(Game(8, batch=1, orders={}, seed=0))


@pytest.fixture(scope="module")
def cnn_batch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(16, 3),
    ).double()
    return model, torch.rand(4, 1, 16, 16, dtype=torch.float64), torch.tensor([0, 1, 2, 1])


def test_spectral_shapley_samples_through_coalition_values(cnn_batch):
    """The engine's sampled result is the estimator run on coalition_values, and close to the exact one."""
    model, images, labels = cnn_batch
    options = dict(num_bands=6, fill="permute", seed=3)
    exact = spectral_shapley(model, images, labels, **options)  # auto with 2^6 <= 4096: exact, as before
    assert exact.coalition_values.shape == (64,) and bool((exact.estimator_stderr == 0).all())
    sampled = spectral_shapley(model, images, labels, estimator="kernel", max_coalitions=40, **options)
    oracle = lambda z: coalition_values(model, images, labels, coalitions=z, **options)  # noqa: E731
    direct = estimate_shapley(oracle, 6, "kernel", max_evaluations=40, seed=3)
    torch.testing.assert_close(sampled.phi, direct.phi.mean(0), atol=1e-12, rtol=0)
    assert sampled.coalition_values is None
    torch.testing.assert_close(sampled.v_empty, exact.v_empty, atol=1e-12, rtol=0)
    assert bool(((sampled.phi - exact.phi).abs() <= 5 * sampled.estimator_stderr + 1e-9).all())
    assert bool((sampled.stderr >= sampled.estimator_stderr).all())


def test_exact_estimator_keeps_its_guard_and_names_the_samplers(cnn_batch):
    model, images, labels = cnn_batch
    with pytest.raises(ValueError, match="estimator='kernel'"):
        spectral_shapley(model, images, labels, num_bands=6, estimator="exact", max_coalitions=32)
