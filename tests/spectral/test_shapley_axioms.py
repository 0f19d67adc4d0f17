"""Shapley axioms on arbitrary value tables, the weight matrix, and the exactly reducible statistics."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reference import reference_shapley

from iaside_lightning.functional import (
    ShapleyStatistics,
    band_edges,
    compute_result,
    per_sample_shapley,
    shapley_statistics,
    shapley_weights,
    spectral_importance_distribution,
    spectral_shapley,
    sum_statistics,
)

pytestmark = pytest.mark.usefixtures("single_thread")

SETTINGS = settings(max_examples=30, deadline=None)


@st.composite
def value_tables(draw, max_bands: int = 5):
    """``[B, 2^M]`` float64 coalition values and ``M``."""
    num_bands = draw(st.integers(1, max_bands))
    batch = draw(st.integers(1, 4))
    elements = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
    table = draw(arrays(np.float64, (batch, 2**num_bands), elements=elements))
    return torch.from_numpy(table), num_bands


def _members(s: int, num_bands: int) -> frozenset:
    return frozenset(k for k in range(num_bands) if s >> k & 1)


def _index(members) -> int:
    return sum(1 << k for k in members)


def _as_dict(table: torch.Tensor, num_bands: int) -> dict:
    return {_members(s, num_bands): table[:, s] for s in range(2**num_bands)}


def _transform(table: torch.Tensor, num_bands: int, f) -> torch.Tensor:
    """``v'(S) = v(f(S))`` for a map ``f`` on coalitions."""
    columns = [table[:, _index(f(_members(s, num_bands)))] for s in range(2**num_bands)]
    return torch.stack(columns, dim=1)


@SETTINGS
@given(value_tables())
def test_matches_subset_sum_formula_and_is_efficient(drawn):
    table, num_bands = drawn
    phi = per_sample_shapley(table)
    assert phi.shape == (table.shape[0], num_bands) and phi.dtype == torch.float64
    torch.testing.assert_close(phi, reference_shapley(_as_dict(table, num_bands), num_bands), atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(phi.sum(1), table[:, -1] - table[:, 0], atol=1e-9, rtol=1e-9)


@SETTINGS
@given(value_tables(), st.data())
def test_symmetric_players_get_equal_values(drawn, data):
    table, num_bands = drawn
    if num_bands < 2:
        return
    i, j = data.draw(st.lists(st.integers(0, num_bands - 1), min_size=2, max_size=2, unique=True))

    def swap(members):
        return frozenset({i: j, j: i}.get(k, k) for k in members)

    symmetric = (table + _transform(table, num_bands, swap)) / 2  # v(S + i) = v(S + j) for S without i, j
    phi = per_sample_shapley(symmetric)
    torch.testing.assert_close(phi[:, i], phi[:, j], atol=1e-9, rtol=1e-9)


@SETTINGS
@given(value_tables(), st.data())
def test_null_player_gets_zero(drawn, data):
    table, num_bands = drawn
    null = data.draw(st.integers(0, num_bands - 1))
    game = _transform(table, num_bands, lambda members: members - {null})  # adding `null` never changes v
    phi = per_sample_shapley(game)
    torch.testing.assert_close(phi[:, null], torch.zeros(table.shape[0], dtype=torch.float64), atol=1e-9, rtol=0)


@SETTINGS
@given(value_tables(max_bands=4), st.floats(-3, 3), st.floats(-3, 3), st.integers(0, 2**31 - 1))
def test_linearity(drawn, a, b, seed):
    table, _ = drawn
    other = torch.randn(table.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 10
    combined = per_sample_shapley(a * table + b * other)
    torch.testing.assert_close(
        combined, a * per_sample_shapley(table) + b * per_sample_shapley(other), atol=1e-8, rtol=1e-9
    )


def test_additive_game_returns_each_players_contribution():
    contributions = torch.tensor([0.5, -1.25, 3.0, 0.0], dtype=torch.float64)
    table = torch.tensor([[7.0 + sum(float(contributions[k]) for k in _members(s, 4)) for s in range(16)]])
    torch.testing.assert_close(per_sample_shapley(table)[0], contributions, atol=1e-12, rtol=0)


@pytest.mark.parametrize("num_bands", [1, 2, 3, 5, 8])
def test_shapley_weights_follow_the_explicit_formula(num_bands):
    expected = torch.zeros(2**num_bands, num_bands, dtype=torch.float64)
    for s, k in itertools.product(range(2**num_bands), range(num_bands)):
        members = _members(s, num_bands)
        size = len(members - {k})
        w = math.factorial(size) * math.factorial(num_bands - size - 1) / math.factorial(num_bands)
        expected[s, k] = w if k in members else -w
    torch.testing.assert_close(shapley_weights(num_bands), expected, atol=1e-15, rtol=0)


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 6), (1, 2, 4)])
def test_per_sample_shapley_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="values"):
        per_sample_shapley(torch.zeros(shape))


@SETTINGS
@given(value_tables(max_bands=4), st.integers(6, 12), st.data())
def test_statistics_of_a_split_sum_to_the_whole(drawn, batch, data):
    _, num_bands = drawn
    table = torch.randn(batch, 2**num_bands, dtype=torch.float64, generator=torch.Generator().manual_seed(batch))
    cut = data.draw(st.integers(1, batch - 1))
    merged = sum_statistics(shapley_statistics(table[:cut]), shapley_statistics(table[cut:]))
    whole = shapley_statistics(table)
    for name, a, b in zip(whole._fields, merged, whole):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-12, msg=name)
    assert float(merged.count) == batch


def test_compute_result_gives_mean_and_standard_error():
    num_bands, batch = 3, 9
    table = torch.randn(batch, 2**num_bands, dtype=torch.float64)
    phi = reference_shapley(_as_dict(table, num_bands), num_bands).numpy()
    result = compute_result(shapley_statistics(table), band_edges(num_bands, "linear"))
    np.testing.assert_allclose(result.phi.numpy(), phi.mean(0), atol=1e-12)
    np.testing.assert_allclose(result.stderr.numpy(), phi.std(0, ddof=1) / np.sqrt(batch), rtol=1e-9)
    np.testing.assert_allclose(result.coalition_values.numpy(), table.numpy().mean(0), atol=1e-12)
    assert float(result.v_empty) == pytest.approx(float(table[:, 0].mean()))
    assert float(result.v_full) == pytest.approx(float(table[:, -1].mean()))
    assert result.num_samples == batch and result.num_bands == num_bands
    torch.testing.assert_close(result.band_frequencies, torch.tensor([0, 1 / 6, 1 / 3, 0.5], dtype=torch.float64))
    torch.testing.assert_close(result.band_centers, torch.tensor([1 / 12, 0.25, 5 / 12], dtype=torch.float64))
    torch.testing.assert_close(result.psi, spectral_importance_distribution(result.phi)[0])


def test_compute_result_with_one_or_no_sample():
    one = compute_result(shapley_statistics(torch.randn(1, 4, dtype=torch.float64)), band_edges(2, "linear"))
    assert bool(one.stderr.isnan().all()) and bool(one.phi.isfinite().all())
    zeros = torch.zeros(2, dtype=torch.float64)
    nothing = ShapleyStatistics(zeros, torch.zeros(2, 2), torch.zeros(4, dtype=torch.float64), torch.tensor(0.0))
    with pytest.raises(ValueError, match="sample"):
        compute_result(nothing, band_edges(2, "linear"))


def test_statistics_of_an_empty_batch_are_zero_sums():
    empty = shapley_statistics(torch.zeros(0, 8, dtype=torch.float64))
    assert float(empty.count) == 0
    torch.testing.assert_close(empty.phi_sum, torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(empty.phi_outer_sum, torch.zeros(3, 3, dtype=torch.float64))
    torch.testing.assert_close(empty.value_sum, torch.zeros(8, dtype=torch.float64))


@pytest.mark.parametrize("fill", ["zero", "permute", "noise"])
def test_engine_result_is_efficient(make_cnn, fill):
    images, labels = torch.rand(6, 1, 16, 16, dtype=torch.float64), torch.randint(0, 3, (6,))
    result = spectral_shapley(make_cnn(1), images, labels, num_bands=5, fill=fill)
    torch.testing.assert_close(result.phi.sum(), result.v_full - result.v_empty, atol=1e-10, rtol=0)
    torch.testing.assert_close(result.v_full, result.coalition_values[-1])
    torch.testing.assert_close(result.v_empty, result.coalition_values[0])
