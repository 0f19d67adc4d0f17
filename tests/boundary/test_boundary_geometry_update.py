"""``BoundaryGeometry``'s two contracts: ``update(model, images, labels)`` runs the search with the metric's validated
options; ``update_from_result(geometry)`` takes a search run elsewhere (what ``BoundaryMonitor`` does, to share it
with the localization metrics). The old ``update(geometry)`` still works, with a ``DeprecationWarning``."""

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from iaside_lightning.callbacks import BoundaryMonitor
from iaside_lightning.functional import boundary_geometry
from iaside_lightning.functional.boundary.options import BoundaryGeometryOptions
from iaside_lightning.metrics import BoundaryGeometry

pytestmark = pytest.mark.usefixtures("single_thread")

OPTIONS = {"epsilons": [0.1, 0.3], "steps": 5, "bisection_steps": 4, "ig_steps": 4}


@pytest.fixture
def batch(make_cnn: Callable[..., nn.Module]) -> tuple[nn.Module, Tensor, Tensor]:
    """A tiny CNN and 8 images, every fourth one labelled with a class the model does not predict."""
    model = make_cnn()
    x = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        predicted = model(x).argmax(1)
    return model, x, torch.where(torch.arange(8) % 4 == 0, (predicted + 1) % 3, predicted)


def _assert_same(got: dict[str, Tensor], want: dict[str, Tensor]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-12, atol=1e-12, equal_nan=True, msg=key)


def test_update_runs_the_search_like_the_functional(batch: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, x, y = batch
    ran, given = BoundaryGeometry(**OPTIONS, seed=5), BoundaryGeometry()
    for part in (slice(0, 3), slice(3, 8)):
        ran.update(model, x[part], y[part])
        given.update_from_result(boundary_geometry(model, x[part], y[part], **OPTIONS, seed=5))
    assert int(ran.compute()["accuracy_count"]) == 8
    _assert_same(ran.compute(), given.compute())
    assert ran.options == BoundaryGeometryOptions.from_preset("fast", **OPTIONS, seed=5)


def test_forward_returns_the_batch_values_and_accumulates(batch: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, x, y = batch
    metric, reference = BoundaryGeometry(**OPTIONS), BoundaryGeometry()
    reference.update_from_result(boundary_geometry(model, x, y, **OPTIONS))
    _assert_same(metric(model, x, y), reference.compute())
    _assert_same(metric.compute(), reference.compute())


def test_output_transform_picks_the_logits(batch: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, x, y = batch
    wrapped = nn.Sequential(model, nn.Unflatten(1, (1, 3)))  # logits inside a [N, 1, K] output

    def pick(out: Tensor) -> Tensor:
        return out[:, 0]

    metric, reference = BoundaryGeometry(**OPTIONS, output_transform=pick), BoundaryGeometry(**OPTIONS)
    metric.update(wrapped, x, y)
    reference.update(model, x, y)
    _assert_same(metric.compute(), reference.compute())


def test_update_from_result_counts_as_an_update(
    batch: tuple[nn.Module, Tensor, Tensor], recwarn: pytest.WarningsRecorder
) -> None:
    model, x, y = batch
    metric, reference = BoundaryGeometry(), BoundaryGeometry()
    metric.update_from_result(boundary_geometry(model, x[:4], y[:4], **OPTIONS))
    first = metric.compute()
    metric.update_from_result(boundary_geometry(model, x[4:], y[4:], **OPTIONS))  # clears the cached compute()
    reference.update_from_result(boundary_geometry(model, x, y, **OPTIONS))
    assert int(first["accuracy_count"]) == 4 and int(metric.compute()["accuracy_count"]) == 8
    _assert_same(metric.compute(), reference.compute())
    assert metric.update_count == 2 and not [w for w in recwarn if "before the ``update``" in str(w.message)]


def test_deprecated_update_with_a_result_warns_and_still_works(batch: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, x, y = batch
    result = boundary_geometry(model, x, y, **OPTIONS)
    old, new = BoundaryGeometry(), BoundaryGeometry()
    with pytest.warns(DeprecationWarning, match=r"update_from_result\(geometry\)") as records:
        old.update(result)
    assert records[0].filename == __file__  # points at the caller
    new.update_from_result(result)
    _assert_same(old.compute(), new.compute())


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        (("not a model",), r"`model` must be a callable classifier, got str.*update_from_result\(geometry\)"),
        ((None, None, None), r"`model` must be a callable classifier, got NoneType"),
        (("model",), r"`update` needs `images` and `labels`.*update\(model, images, labels\)"),
        (("model", "x"), r"`update` needs `images` and `labels`"),
        (("result", "x", "y"), r"`model` must be a callable classifier, got BoundaryGeometryResult.*update_from_"),
        (("model", "x", "x"), r"`labels` must be an integer tensor"),
        (("model", "y", "y"), r"`images` must be a 4-D floating-point tensor"),
    ],
)
def test_bad_update_arguments_name_the_fix(
    batch: tuple[nn.Module, Tensor, Tensor], arguments: tuple, match: str
) -> None:
    model, x, y = batch
    named = {"model": model, "x": x, "y": y, "result": boundary_geometry(model, x[:2], y[:2], **OPTIONS)}
    metric = BoundaryGeometry(**OPTIONS)
    with pytest.raises(TypeError, match=match):
        metric.update(*(named.get(a, a) if isinstance(a, str) else a for a in arguments))
    assert int(metric.compute()["accuracy_count"]) == 0  # nothing was added


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"preset": "slow"}, ValueError, "`preset` must be one of"),
        ({"epsilons": [0.3, 0.1]}, ValueError, "`epsilons` must be a non-empty, strictly ascending"),
        ({"ig_steps": 1}, ValueError, "`ig_steps` must be an integer >= 2"),
        ({"random_start": "yes"}, TypeError, "`random_start` must be True or False"),
        ({"seed": 1.5}, TypeError, "`seed` must be an integer"),
    ],
)
def test_bad_options_fail_at_construction(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BoundaryGeometry(**kwargs)


def test_monitor_shares_its_metrics_options() -> None:
    monitor = BoundaryMonitor(preset="paper", steps=3, ig_steps=5, seed=2)
    assert monitor.options is monitor.geometry.options
    assert monitor.options == BoundaryGeometryOptions.from_preset("paper", steps=3, ig_steps=5, seed=2)
