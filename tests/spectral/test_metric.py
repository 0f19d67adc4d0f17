"""SpectralImportance: accumulation over batches equals the one-shot functional result; validation; plot.

Models and images are float64 so that results may be compared to 1e-10 whatever the batch split."""

import pytest
import torch
from torch import nn

from iaside_lightning import SpectralImportance, spectral_shapley


def _model(channels: int = 1, classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 16 * 16, classes)).double()


def _data(n: int = 12, channels: int = 1, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, 16, 16, generator=g, dtype=torch.float64), torch.randint(0, 4, (n,), generator=g)


@pytest.mark.parametrize("splits", [[12], [5, 7], [1, 3, 8], [4, 4, 4]])
def test_accumulation_equals_one_shot_result(splits: list[int]) -> None:
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=4, fill="zero")  # the fill that does not depend on the batching
    for chunk_x, chunk_y in zip(x.split(splits), y.split(splits)):
        metric.update(model, chunk_x, chunk_y)
    got = metric.compute()
    want = spectral_shapley(model, x, y, num_bands=4, fill="zero")
    torch.testing.assert_close(got.phi, want.phi, rtol=0, atol=1e-10)
    torch.testing.assert_close(got.stderr, want.stderr, rtol=0, atol=1e-10)
    torch.testing.assert_close(got.coalition_values, want.coalition_values, rtol=0, atol=1e-10)
    torch.testing.assert_close(got.phi_covariance, want.phi_covariance, rtol=0, atol=1e-12)
    assert got.num_samples == 12
    for score in ("srs", "srs_stderr", "srs_signed_stderr", "balance", "balance_stderr"):
        assert float(getattr(got, score)) == pytest.approx(float(getattr(want, score)), abs=1e-9), score
    assert torch.equal(got.band_rings, want.band_rings) and torch.equal(got.band_bins, want.band_bins)


def test_permute_fill_is_exact_for_the_same_batches() -> None:
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=3, fill="permute", seed=3)
    metric.update(model, x[:6], y[:6])
    metric.update(model, x[6:], y[6:])
    first = spectral_shapley(model, x[:6], y[:6], num_bands=3, fill="permute", seed=3)
    second = spectral_shapley(model, x[6:], y[6:], num_bands=3, fill="permute", seed=4)  # batch i: seed + i
    torch.testing.assert_close(metric.compute().phi, (first.phi + second.phi) / 2, rtol=0, atol=1e-10)


def test_merged_states_equal_single_process() -> None:
    """What DDP's "sum" reduction does: states of disjoint shards add up to the state of the whole."""
    model, (x, y) = _model(), _data()
    whole, left, right, empty = (SpectralImportance(num_bands=4, fill="zero") for _ in range(4))
    whole.update(model, x, y)
    left.update(model, x[:5], y[:5])
    right.update(model, x[5:], y[5:])
    left.merge_state(right)
    left.merge_state(empty)  # a process that saw no sample
    torch.testing.assert_close(left.compute().phi, whole.compute().phi, rtol=0, atol=1e-12)


def test_update_under_inference_mode_and_reset() -> None:
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=3)
    with torch.inference_mode():
        metric.update(model, x, y)
    assert metric.compute().num_samples == 12
    metric.reset()
    assert float(metric.count) == 0


def test_compute_without_samples_raises() -> None:
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="No sample"):
        SpectralImportance(num_bands=3).compute()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fill": "blur"}, "`fill`"),
        ({"value": "logit"}, "`value`"),
        ({"band_shape": "diamond"}, "`band_shape`"),
        ({"num_bands": 1}, "`num_bands`"),
        ({"num_bands": 13, "estimator": "exact"}, "max_coalitions"),
        ({"estimator": "shapley"}, "`estimator`"),
        ({"autocast": "int8"}, "`autocast`"),
        ({"beta": 1.5}, "`beta`"),
        ({"chunk_size": 0}, "`chunk_size`"),
        ({"num_bands": 3, "band_edges": [0.0, 0.5, 1.0]}, "num_bands \\+ 1"),
    ],
)
def test_bad_options_fail_at_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SpectralImportance(**kwargs)


def test_sampled_estimator_accumulates_with_estimator_error() -> None:
    """Above the budget, "auto" samples (KernelSHAP): states stay fixed-shape sums, errors include the sampler's."""
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=6, max_coalitions=40, fill="zero")
    assert metric.estimator == "kernel" and metric.value_sum.shape == (2,)
    metric.update(model, x[:6], y[:6])
    metric.update(model, x[6:], y[6:])
    got = metric.compute()
    exact = spectral_shapley(model, x, y, num_bands=6, fill="zero")
    assert got.coalition_values is None and bool((got.estimator_stderr > 0).all())
    assert float(got.phi.sum()) == pytest.approx(float(exact.v_full - exact.v_empty), abs=1e-9)  # efficiency
    assert float((got.phi - exact.phi).abs().max()) <= 4 * float(got.estimator_stderr.max()) + 1e-9


def test_plot_returns_figure_and_axis() -> None:
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=4)
    metric.update(model, x, y)
    fig, ax = metric.plot()
    assert fig is ax.figure
    assert "cycles" in ax.get_xlabel().lower()


def test_layout_follows_the_plan_and_autocast_runs_reduced_precision() -> None:
    """Multi-channel coalition images go in channels_last unless probed otherwise; layouts agree to float tolerance."""
    seen: list[bool] = []

    class Spy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.head = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
            return self.head(self.conv(x).mean(dim=(2, 3)))

    x, y = _data(channels=3)
    x = x.float()
    model = Spy()
    plain = spectral_shapley(model, x, y, num_bands=3)
    assert seen and all(seen)  # a small call is not probed: the default plan is channels_last
    contiguous = spectral_shapley(model, x, y, num_bands=3, forward_batch_size=8)
    torch.testing.assert_close(contiguous.phi, plain.phi, rtol=0, atol=1e-5)
    reduced = spectral_shapley(model, x, y, num_bands=3, autocast="bfloat16")
    assert float((reduced.phi - plain.phi).abs().max()) < 0.05 * float(plain.phi.abs().max()) + 1e-3
    with pytest.raises(ValueError, match="autocast"):
        spectral_shapley(model, x, y, num_bands=3, autocast="int8")  # type: ignore[arg-type]


def test_plot_overlays_a_sequence_of_results_and_refuses_other_values() -> None:
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=4)
    results = []
    for chunk_x, chunk_y in zip(x.split(6), y.split(6)):
        metric.update(model, chunk_x, chunk_y)
        results.append(metric.compute())
    fig, ax = metric.plot(results)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["0", "1"]
    with pytest.raises(ValueError, match="`val`"):
        metric.plot([])


def test_result_as_a_flat_dict_of_tensors() -> None:
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=4)
    metric.update(model, x, y)
    result = metric.compute()
    flat = result.as_dict()
    assert all(isinstance(v, torch.Tensor) for v in flat.values())
    assert {"phi", "srs", "srs_stderr", "balance_stderr", "psi_degenerate", "num_samples"} <= set(flat)
    torch.testing.assert_close(flat["phi"], result.phi)


def test_metrics_cannot_be_added_and_say_what_to_do() -> None:
    first, second = SpectralImportance(num_bands=3), SpectralImportance(num_bands=3)
    for combine in (lambda: first + second, lambda: first * 2, lambda: 1 - first):
        with pytest.raises(TypeError, match="merge_state"):
            combine()
