"""Misuse of the engine and of SpectralImportance gets a clear error (or warning) naming the argument or setting."""

import warnings

import pytest
import torch
from torch import nn

from iaside_lightning import SpectralImportance
from iaside_lightning.functional import coalition_values, spectral_shapley
from iaside_lightning.functional.spectral.estimators import minimum_budget
from iaside_lightning.functional.spectral.estimators import kernel_shapley, permutation_pairs

pytestmark = pytest.mark.usefixtures("single_thread")

IMAGES = torch.rand(4, 1, 16, 16)
LABELS = torch.tensor([0, 1, 2, 1])


def _linear(classes: int = 3) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, classes))


# 1. logits of another class count than the model's output


@pytest.mark.parametrize("estimator", ["exact", "kernel"])
def test_logits_with_another_class_count(estimator: str) -> None:
    logits = torch.randn(4, 5)  # the model has 3 classes
    with pytest.raises(ValueError, match=r"`logits` has 5 classes but the model outputs 3 classes"):
        spectral_shapley(_linear(), IMAGES, LABELS, num_bands=4, logits=logits, estimator=estimator, max_coalitions=40)


def test_logits_with_the_model_class_count_still_pass() -> None:
    model = _linear()
    with torch.no_grad():
        logits = model(IMAGES)
    reused = coalition_values(model, IMAGES, LABELS, num_bands=3, logits=logits, fill="zero")
    torch.testing.assert_close(  # float32 logits of a batch of 4 vs of a chunk of coalition images: rounding
        reused, coalition_values(model, IMAGES, LABELS, num_bands=3, fill="zero"), rtol=0, atol=1e-5
    )


# 2. integer labels of any integer dtype


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_integer_labels_of_any_dtype(dtype: torch.dtype) -> None:
    model = _linear()
    want = spectral_shapley(model, IMAGES, LABELS, num_bands=3, fill="zero")
    got = spectral_shapley(model, IMAGES, LABELS.to(dtype), num_bands=3, fill="zero")
    torch.testing.assert_close(got.phi, want.phi)
    metric = SpectralImportance(num_bands=3, fill="zero")
    metric.update(model, IMAGES, LABELS.to(dtype))
    torch.testing.assert_close(metric.compute().phi, want.phi.double())


@pytest.mark.parametrize("labels", [LABELS.bool(), LABELS.float(), LABELS.double()])
def test_bool_and_float_labels_keep_their_type_error(labels: torch.Tensor) -> None:
    with pytest.raises(TypeError, match="`labels` must be an integer tensor"):
        spectral_shapley(_linear(), IMAGES, labels, num_bands=3)


# 3. chunk_size and seed


@pytest.mark.parametrize(
    ("chunk_size", "error"),
    [(1.5, TypeError), (2.0, TypeError), (True, TypeError), ("4", TypeError), (0, ValueError), (-1, ValueError)],
)
def test_bad_chunk_size(chunk_size: object, error: type) -> None:
    with pytest.raises(error, match="`chunk_size` must be a positive integer"):
        spectral_shapley(_linear(), IMAGES, LABELS, num_bands=3, chunk_size=chunk_size)
    with pytest.raises(error, match="`chunk_size` must be a positive integer"):
        coalition_values(_linear(), IMAGES, LABELS, num_bands=3, chunk_size=chunk_size)
    with pytest.raises(error, match="`chunk_size` must be a positive integer"):
        SpectralImportance(num_bands=3, chunk_size=chunk_size)


@pytest.mark.parametrize("seed", [None, 1.5, "0", True])
@pytest.mark.parametrize("estimator", ["exact", "kernel", "permutation"])
def test_bad_seed(seed: object, estimator: str) -> None:
    with pytest.raises(TypeError, match="`seed` must be an integer"):
        spectral_shapley(_linear(), IMAGES, LABELS, num_bands=4, seed=seed, estimator=estimator, max_coalitions=60)
    with pytest.raises(TypeError, match="`seed` must be an integer"):
        SpectralImportance(num_bands=4, seed=seed, estimator=estimator, max_coalitions=60)


# 4. construction-time validation of the metric


@pytest.mark.parametrize(
    "normalization",
    [
        ([0.5], [0.0]),
        ([0.5, 0.5, 0.5], [0.2, -0.1, 0.2]),
        ([0.5], [float("nan")]),
        ([0.5, 0.5, 0.5], [0.2, 0.2]),
        ([], []),
        ([0.5],),
        ("a", "b"),
        0.5,
    ],
)
def test_bad_normalization_fails_at_construction(normalization: object) -> None:
    with pytest.raises(ValueError, match="`normalization`"):
        SpectralImportance(num_bands=3, normalization=normalization)


@pytest.mark.parametrize("normalization", [([0.5], [0.2]), ([0.5, 0.4, 0.3], [0.2]), ((0.1, 0.2), (0.3, 0.4))])
def test_good_normalization_passes_construction(normalization: tuple) -> None:
    SpectralImportance(num_bands=3, normalization=normalization)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_bands": 25, "max_coalitions": 64}, r"estimator='kernel' \(from estimator='auto'\).*>= 68"),
        ({"num_bands": 25, "max_coalitions": 64, "estimator": "kernel"}, ">= 68"),
        ({"num_bands": 10, "max_coalitions": 100, "estimator": "permutation"}, ">= 146"),
    ],
)
def test_too_small_budget_fails_at_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        SpectralImportance(**kwargs)
    assert "`max_coalitions`" in str(info.value)


@pytest.mark.parametrize("num_bands", [3, 5, 8, 25])
def test_minimum_budget_is_the_samplers_own(num_bands: int) -> None:
    """The construction-time minimum agrees with the checks the samplers make when they run."""
    kernel = minimum_budget("kernel", num_bands)

    def never_called(coalitions: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the budget check comes first")

    with pytest.raises(ValueError, match="needs max_evaluations"):
        kernel_shapley(never_called, num_bands, kernel - 1)
    with pytest.raises(AssertionError, match="budget check comes first"):
        kernel_shapley(never_called, num_bands, kernel)
    permutation = minimum_budget("permutation", num_bands)
    with pytest.raises(ValueError, match="needs max_evaluations"):
        permutation_pairs(num_bands, permutation - 1)
    assert permutation_pairs(num_bands, permutation) >= 1
    SpectralImportance(num_bands=num_bands, max_coalitions=kernel, estimator="kernel")
    SpectralImportance(num_bands=num_bands, max_coalitions=permutation, estimator="permutation")


# 5. merging and loading states of metrics with other settings


def _filled(**kwargs: object) -> SpectralImportance:
    metric = SpectralImportance(**{"num_bands": 4, "fill": "zero", **kwargs})
    metric.update(_linear(), IMAGES, LABELS)
    return metric


@pytest.mark.parametrize(
    ("other", "name"),
    [
        ({"num_bands": 5}, "num_bands"),
        ({"fill": "noise"}, "fill"),
        ({"value": "prob"}, "value"),
        ({"band_shape": "circle"}, "band_shape"),
        ({"band_edges": "linear"}, "band_edges"),
        ({"estimator": "kernel", "max_coalitions": 16}, "estimator"),
        ({"normalization": ([0.5], [0.25])}, "normalization"),
    ],
)
def test_merge_of_metrics_with_other_settings(other: dict, name: str) -> None:
    metric = _filled()
    before = metric.phi_sum.clone()
    with pytest.raises(ValueError, match=f"Cannot merge a SpectralImportance with {name}="):
        metric.merge_state(_filled(**other))
    assert torch.equal(metric.phi_sum, before)  # left untouched


def test_merge_of_metrics_with_the_same_settings() -> None:
    metric, other = _filled(band_edges=[0.0, 0.2, 0.4, 0.7, 1.0]), _filled(band_edges=(0.0, 0.2, 0.4, 0.7, 1.0))
    metric.merge_state(other)
    assert float(metric.count) == 8


def test_merge_of_states_on_other_image_sizes() -> None:
    metric, other = _filled(), SpectralImportance(num_bands=4, fill="zero")
    other.update(nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 3)), torch.rand(4, 1, 32, 32), LABELS)
    with pytest.raises(ValueError, match="32x32 images into ones of 16x16"):
        metric.merge_state(other)


def test_merge_of_a_dict_with_other_shapes() -> None:
    metric = _filled()
    with pytest.raises(ValueError, match=r"`phi_sum` of shape \(5,\) into a SpectralImportance with num_bands=4"):
        metric.merge_state(_filled(num_bands=5).metric_state)
    metric.merge_state(_filled().metric_state)  # same shapes: fine
    assert float(metric.count) == 8


def test_merge_of_another_type_keeps_torchmetrics_error() -> None:
    with pytest.raises(ValueError, match="Expected incoming state"):
        _filled().merge_state(3)  # type: ignore[arg-type]


def test_load_state_dict_of_another_num_bands() -> None:
    # By default the states are not persistent: state_dict() holds none of them and loading changes nothing.
    four, five = _filled(), _filled(num_bands=5)
    assert "phi_sum" not in four.state_dict()
    five.load_state_dict(four.state_dict())
    assert five.phi_sum.shape == (5,)
    # Persistent states of another num_bands are refused, instead of replacing the states with ill-shaped ones.
    four.persistent(True)
    with pytest.raises(ValueError, match=r"Cannot load state `phi_sum` of shape \(4,\).*num_bands=5"):
        five.load_state_dict(four.state_dict())
    assert five.phi_sum.shape == (5,)
    again = _filled()
    again.load_state_dict(four.state_dict())
    torch.testing.assert_close(again.phi_sum, four.phi_sum)


# 6. BatchNorm with batch statistics in eval mode


def _batchnorm_model(track: bool) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2, track_running_stats=track), nn.Flatten(), nn.Linear(512, 3)
    )


def test_batch_statistics_warn_once_per_call() -> None:
    model = _batchnorm_model(track=False)
    with pytest.warns(UserWarning) as records:
        coalition_values(model, IMAGES, LABELS, num_bands=3, forward_batch_size=1)
    ours = [r for r in records if "track_running_stats=False" in str(r.message)]
    assert len(ours) == 1
    assert "BatchNorm2d" in str(ours[0].message) and "forward_batch_size" in str(ours[0].message)
    assert ours[0].filename == __file__  # points at the caller


def test_batch_statistics_make_results_depend_on_the_forward_batch() -> None:
    """Why it warns: the claim that results do not depend on forward_batch_size fails for such models."""
    model = _batchnorm_model(track=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = coalition_values(model, IMAGES, LABELS, num_bands=3, forward_batch_size=1)
        all_ = coalition_values(model, IMAGES, LABELS, num_bands=3, forward_batch_size=8)
    assert not torch.allclose(one, all_)


def test_running_statistics_do_not_warn() -> None:
    model = _batchnorm_model(track=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = coalition_values(model, IMAGES, LABELS, num_bands=3, forward_batch_size=1)
        all_ = coalition_values(model, IMAGES, LABELS, num_bands=3, forward_batch_size=8)
    torch.testing.assert_close(one, all_, rtol=0, atol=1e-5)  # float32 convolutions of other batch sizes: rounding
