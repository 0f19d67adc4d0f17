"""Sum-state metrics SampleMeans, AttributionLocalization and BoundaryGeometry against NumPy and brute-force references.

Exactness across processes rests on every state being a float64 sum reduced with ``"sum"``: merging states (what a
``"sum"`` all-reduce does) must give the result of one process that saw every sample, an empty process included.
The real 2-process gloo sync is in ``test_ddp.py``.
"""

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_sum

from iaside_lightning.functional import boundary_geometry
from iaside_lightning.functional.boundary.geometry import BoundaryGeometryResult
from iaside_lightning.metrics import AttributionLocalization, BoundaryGeometry, SampleMeans

pytestmark = pytest.mark.usefixtures("single_thread")

NAN = float("nan")
values = st.one_of(st.floats(-1e3, 1e3), st.just(NAN))


def _states(metric: Metric) -> dict[str, Tensor]:
    return {name: getattr(metric, name).clone() for name in metric._defaults}


def _assert_states_close(a: Metric, b: Metric) -> None:
    for name, value in _states(a).items():
        torch.testing.assert_close(value, getattr(b, name), rtol=1e-12, atol=1e-12, msg=name)


def _assert_results_close(got: dict[str, Tensor], want: dict[str, Tensor], atol: float = 1e-12) -> None:
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=atol, equal_nan=True, msg=key)


def _numpy_summary(column: np.ndarray) -> tuple[float, float, int]:
    """Mean, standard error of the mean (0 for one value) and count of the non-NaN values; NaN mean when none."""
    defined = column[~np.isnan(column)]
    if defined.size == 0:
        return NAN, NAN, 0
    stderr = defined.std(ddof=1) / math.sqrt(defined.size) if defined.size > 1 else 0.0
    return float(defined.mean()), float(stderr), int(defined.size)


# ------------------------------------------------------------------------------------------------- SampleMeans


@settings(max_examples=60, deadline=None)
@given(data=st.lists(st.tuples(values, values), max_size=30))
def test_sample_means_equal_numpy_over_data_with_nans(data: list[tuple[float, float]]) -> None:
    table = np.array(data, dtype=np.float64).reshape(-1, 2)
    metric = SampleMeans(["a", "b"])
    metric.update({"a": torch.from_numpy(table[:, 0]), "b": torch.from_numpy(table[:, 1])})
    result = metric.compute()
    for column, name in enumerate("ab"):
        mean, stderr, count = _numpy_summary(table[:, column])
        scale = max(1.0, float(np.nanmax(np.abs(table[:, column]), initial=0.0)))
        assert int(result[f"{name}_count"]) == count
        if count == 0:
            assert math.isnan(result[name]) and math.isnan(result[f"{name}_stderr"])
            continue
        assert float(result[name]) == pytest.approx(mean, rel=1e-12, abs=1e-12 * scale)
        # Sum-of-squares variance: absolute error of order eps * scale^2 (compare squared standard errors).
        assert float(result[f"{name}_stderr"]) ** 2 == pytest.approx(stderr**2, rel=1e-9, abs=1e-12 * scale**2)


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")  # `manual` gets its states by hand
@settings(max_examples=40, deadline=None)
@given(data=st.lists(values, min_size=1, max_size=40), cuts=st.lists(st.integers(0, 40), max_size=4))
def test_sample_means_split_over_updates_or_processes_equal_one_update(data: list[float], cuts: list[int]) -> None:
    column = torch.tensor(data, dtype=torch.float64)
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    pieces = [column[lo:hi] for lo, hi in zip(bounds, bounds[1:])]  # empty pieces included
    whole = SampleMeans(["a"])
    whole.update({"a": column})

    split = SampleMeans(["a"])
    for piece in pieces:
        split.update({"a": piece})
    _assert_states_close(split, whole)
    _assert_results_close(split.compute(), whole.compute())

    ranks = [SampleMeans(["a"]) for _ in pieces]  # one "process" per piece, some with no sample
    for rank, piece in zip(ranks, pieces):
        rank.update({"a": piece})
    manual = SampleMeans(["a"])
    for name in whole._defaults:  # what the "sum" all-reduce does
        setattr(manual, name, torch.stack([getattr(rank, name) for rank in ranks]).sum(0))
    merged = ranks[0]
    for rank in ranks[1:]:
        merged.merge_state(rank)
    _assert_states_close(merged, whole)
    _assert_states_close(manual, whole)
    _assert_results_close(manual.compute(), whole.compute())


def test_sample_means_accept_any_shape_and_dtype() -> None:
    metric = SampleMeans(["a"])
    metric.update({"a": torch.tensor([[1, 2], [3, 6]], dtype=torch.int32)})
    metric.update({"a": torch.tensor([NAN, 8.0], dtype=torch.float32)})
    result = metric.compute()
    assert float(result["a"]) == 4.0 and int(result["a_count"]) == 5 and result["a"].dtype == torch.float64


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        ([1.0, 2.0], TypeError, r"`values` must map every measure \['a', 'b'\] to a per-sample tensor, got list"),
        ({"a": torch.ones(2)}, TypeError, r"`values` must map every measure .* got \['a'\]"),
        ({"a": torch.ones(2), "b": [1.0, 2.0]}, TypeError, "`values` must map every measure"),
        ({"a": torch.ones(2), "b": torch.ones(3)}, ValueError, r"one value per sample .* \{'a': 2, 'b': 3\}"),
    ],
)
def test_sample_means_name_bad_values_and_keep_their_sums(values: object, error: type, match: str) -> None:
    metric = SampleMeans(["a", "b"])
    with pytest.raises(error, match=match):
        metric.update(values)
    assert all(float(getattr(metric, f"{m}_count")) == 0 for m in ("a", "b"))


def test_empty_sample_means_give_nan_with_count_zero() -> None:
    metric = SampleMeans(["a", "b"])
    with pytest.warns(UserWarning, match="before the ``update``"):  # torchmetrics' own warning, no exception
        result = metric.compute()
    assert all(math.isnan(result[k]) for k in ("a", "a_stderr", "b", "b_stderr"))
    assert int(result["a_count"]) == 0 and int(result["b_count"]) == 0
    metric = SampleMeans(["a"])
    metric.update({"a": torch.full((3,), NAN)})  # updated, but nothing defined
    result = metric.compute()
    assert math.isnan(result["a"]) and int(result["a_count"]) == 0
    metric = SampleMeans(["a"])
    metric.update({"a": torch.tensor([2.5])})  # one value: no spread to estimate
    assert float(metric.compute()["a_stderr"]) == 0.0


@pytest.mark.parametrize(
    "make",
    [lambda: SampleMeans(["x", "y"]), AttributionLocalization, BoundaryGeometry],
    ids=["means", "localization", "geometry"],
)
def test_every_state_is_a_float64_sum(make: Callable[[], Metric]) -> None:
    metric = make()
    assert metric._defaults and set(metric._reductions) == set(metric._defaults)
    for name, default in metric._defaults.items():
        assert metric._reductions[name] is dim_zero_sum, name
        assert default.dtype == torch.float64 and default.ndim == 0 and float(default) == 0.0, name
    assert metric.full_state_update is False


# --------------------------------------------------------------------------------------- AttributionLocalization


def _localization_reference(attributions: Tensor, masks: Tensor, top_k: float) -> list[tuple[float, float, float]]:
    """Per valid sample (mass inside, pointing game, top-k outside), one pixel at a time in plain Python."""
    rows = []
    for attribution, mask in zip(attributions.tolist(), masks.tolist()):
        channels, height, width = len(attribution), len(attribution[0]), len(attribution[0][0])
        saliency, inside = [], []
        for h in range(height):
            for w in range(width):
                saliency.append(sum(abs(attribution[c][h][w]) for c in range(channels)))
                inside.append(any(bool(m[h][w]) for m in mask))  # a pixel is inside if any mask channel is
        total = sum(saliency)
        if total == 0:
            continue
        mass = sum(s for s, i in zip(saliency, inside) if i) / total
        best = max(range(len(saliency)), key=lambda p: saliency[p])
        k = max(1, round(top_k * len(saliency)))
        top = sorted(range(len(saliency)), key=lambda p: -saliency[p])[:k]
        rows.append((mass, float(inside[best]), sum(not inside[p] for p in top) / k))
    return rows


def _attributions_and_masks(seed: int, channels: int = 2, mask_channels: int = 1, zeros: int = 2) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    attributions = torch.randn(12, channels, 6, 6, generator=g, dtype=torch.float64)
    attributions[torch.randperm(12, generator=g)[:zeros]] = 0.0
    masks = torch.rand(12, mask_channels, 6, 6, generator=g) < 0.4
    return attributions, masks


@pytest.mark.parametrize("top_k", [0.1, 0.25, 0.5, 1.0])
@pytest.mark.parametrize(("channels", "mask_channels"), [(1, 1), (3, 1), (3, 3)])
def test_localization_equals_a_per_pixel_python_loop(top_k: float, channels: int, mask_channels: int) -> None:
    attributions, masks = _attributions_and_masks(round(100 * top_k) + channels, channels, mask_channels)
    metric = AttributionLocalization(top_k=top_k)
    metric.update(attributions[:5], masks[:5])
    metric.update(attributions[5:], masks[5:])
    result = metric.compute()
    reference = np.array(_localization_reference(attributions, masks, top_k))
    assert len(reference) == 10  # two all-zero samples left out
    for column, name in enumerate(("mass_inside", "pointing_game", "top_k_outside")):
        mean, stderr, count = _numpy_summary(reference[:, column])
        assert int(result[f"{name}_count"]) == count == 10
        assert float(result[name]) == pytest.approx(mean, rel=1e-12, abs=1e-12)
        assert float(result[f"{name}_stderr"]) == pytest.approx(stderr, rel=1e-9, abs=1e-12)
    assert 0 < float(result["mass_inside"]) < 1  # a non-trivial case


def test_localization_ignores_signs_and_positive_scale() -> None:
    attributions, masks = _attributions_and_masks(4, channels=3)
    signs = torch.randint(0, 2, attributions.shape, generator=torch.Generator().manual_seed(5)) * 2 - 1
    results = []
    for transformed in (attributions, -attributions, signs * attributions, 7.3 * attributions, 1e-6 * attributions):
        metric = AttributionLocalization(top_k=0.2)
        metric.update(transformed, masks)
        results.append(metric.compute())
    for result in results[1:]:
        _assert_results_close(result, results[0])


def test_all_zero_attributions_are_skipped_and_counted_out() -> None:
    attributions, masks = _attributions_and_masks(6, zeros=0)
    kept = AttributionLocalization()
    kept.update(attributions[4:], masks[4:])
    with_zeros = AttributionLocalization()
    with_zeros.update(torch.cat([torch.zeros_like(attributions[:4]), attributions[4:]]), masks)
    assert int(with_zeros.compute()["mass_inside_count"]) == 8
    _assert_results_close(with_zeros.compute(), kept.compute())
    only_zeros = AttributionLocalization()
    only_zeros.update(torch.zeros(3, 1, 6, 6), masks[:3])
    result = only_zeros.compute()
    assert int(result["pointing_game_count"]) == 0 and math.isnan(result["pointing_game"])


def test_localization_of_attributions_on_the_mask_only() -> None:
    attributions, masks = _attributions_and_masks(7, zeros=0)
    metric = AttributionLocalization(top_k=0.1)
    metric.update(attributions * masks, masks)  # every sample's mask covers well over 10% of the pixels
    result = metric.compute()
    assert (float(result["mass_inside"]), float(result["pointing_game"]), float(result["top_k_outside"])) == (1.0, 1.0, 0.0)


@pytest.mark.parametrize("top_k", [0, 1.5, -0.1, True, "10%"])
def test_bad_top_k_is_named(top_k: object) -> None:
    with pytest.raises(ValueError, match="top_k"):
        AttributionLocalization(top_k=top_k)


@pytest.mark.parametrize(
    ("attributions", "masks", "error", "match"),
    [
        (torch.rand(2, 1, 6, 6), torch.ones(2, 1, 5, 6, dtype=torch.bool), ValueError, "masks"),
        (torch.rand(2, 1, 6, 6), torch.full((2, 1, 6, 6), 2.0), ValueError, "masks"),
        (torch.rand(2, 1, 6, 6), torch.ones(2, 36, dtype=torch.bool), ValueError, "masks"),
        (torch.rand(2, 1, 6, 6), "mask", ValueError, "masks"),
        (torch.ones(2, 1, 6, 6, dtype=torch.long), torch.ones(2, 1, 6, 6, dtype=torch.bool), TypeError, "attributions"),
        (torch.rand(2, 36), torch.ones(2, 1, 6, 6, dtype=torch.bool), TypeError, "attributions"),
    ],
)
def test_bad_localization_inputs_are_named(attributions: Tensor, masks: Tensor, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        AttributionLocalization().update(attributions, masks)


# ---------------------------------------------------------------------------------------------- BoundaryGeometry


@pytest.fixture(scope="module")
def geometry() -> BoundaryGeometryResult:
    """A boundary search on a tiny CNN where some samples are misclassified and some are not flipped."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3))
    with torch.no_grad():
        model[0].weight.mul_(4)
        model[-1].weight.mul_(10)
    model = model.double()
    x = torch.rand(16, 1, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        predicted = model(x).argmax(1)
    y = torch.where(torch.arange(16) % 4 == 0, (predicted + 1) % 3, predicted)  # every fourth one misclassified
    result = boundary_geometry(model, x, y, epsilons=[0.1, 0.3], steps=5, bisection_steps=4)
    search = result.search
    assert 0 < int(search.found.sum()) < int(search.correct.sum()) < 16  # all three kinds of samples occur
    return result


def _subset(result: BoundaryGeometryResult, index: Tensor) -> BoundaryGeometryResult:
    """The samples ``index`` of a geometry result (its nested search result included)."""

    def pick(value: object) -> object:
        if dataclasses.is_dataclass(value):
            return dataclasses.replace(value, **{f.name: pick(getattr(value, f.name)) for f in dataclasses.fields(value)})
        return value[index]

    return pick(result)


def test_boundary_geometry_means_rates_and_counts(geometry: BoundaryGeometryResult) -> None:
    metric = BoundaryGeometry()
    metric.update_from_result(_subset(geometry, torch.arange(0, 7)))
    metric.update_from_result(_subset(geometry, torch.arange(7, 16)))
    result = metric.compute()
    found, correct = geometry.search.found.numpy(), geometry.search.correct.numpy()
    per_sample = {
        "distance": geometry.search.distance.numpy(),
        "cos_gradient_boundary": geometry.cos_gradient_boundary.numpy(),
        "cos_ig_big": geometry.cos_ig_big.numpy(),
        "abs_completeness_error": np.where(found, np.abs(geometry.big_completeness_error.numpy()), NAN),
        "accuracy": correct.astype(np.float64),
        "attack_success_rate": np.where(correct, found, NAN),
    }
    assert set(result) == {f"{k}{s}" for k in per_sample for s in ("", "_stderr", "_count")}
    for name, column in per_sample.items():
        mean, stderr, count = _numpy_summary(column)
        assert float(result[name]) == pytest.approx(mean, rel=1e-12), name
        assert float(result[f"{name}_stderr"]) == pytest.approx(stderr, rel=1e-9, abs=1e-15), name
        assert int(result[f"{name}_count"]) == count, name
    assert float(result["accuracy"]) == correct.mean()
    assert float(result["attack_success_rate"]) == found.sum() / correct.sum()
    assert float(result["attack_success_rate"]) == pytest.approx(geometry.search.success_rate, rel=1e-6)
    # Only samples with a boundary point enter the geometry means, also where their per-sample value is finite.
    assert bool(torch.isfinite(geometry.big_completeness_error[~geometry.search.found]).all())
    for name in ("distance", "cos_gradient_boundary", "cos_ig_big", "abs_completeness_error"):
        assert int(result[f"{name}_count"]) == found.sum()
    assert float(result["distance"]) == pytest.approx(float(geometry.search.distance.nanmean()), rel=1e-12)


def test_boundary_geometry_without_any_boundary_point_keeps_the_rates(geometry: BoundaryGeometryResult) -> None:
    metric = BoundaryGeometry()
    metric.update_from_result(_subset(geometry, torch.nonzero(~geometry.search.found).flatten()))
    result = metric.compute()
    assert math.isnan(result["distance"]) and int(result["distance_count"]) == 0
    assert float(result["attack_success_rate"]) == 0.0 and 0 < float(result["accuracy"]) < 1


def test_boundary_geometry_names_a_wrong_argument(geometry: BoundaryGeometryResult) -> None:
    metric = BoundaryGeometry()
    for wrong in (geometry.search, {"distance": geometry.search.distance}, geometry.cos_ig_big, nn.Linear(2, 2)):
        with pytest.raises(TypeError, match=r"`geometry` must be a BoundaryGeometryResult.*update\(model, images"):
            metric.update_from_result(wrong)
