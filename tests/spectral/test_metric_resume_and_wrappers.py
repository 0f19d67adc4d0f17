"""SpectralImportance resumes mid-accumulation with the same seeds, and works inside torchmetrics' wrappers."""

import matplotlib
import pytest
import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.wrappers import MetricTracker

from iaside_lightning import SpectralImportance

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("single_thread")


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 3))


def _batches(count: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.rand(8, 1, 16, 16, generator=generator), torch.randint(0, 3, (8,), generator=generator)) for _ in range(count)]


@pytest.mark.parametrize("options", [{"fill": "permute"}, {"fill": "noise"}])
def test_resumed_metric_draws_the_seeds_of_an_uninterrupted_one(options: dict) -> None:
    model, batches = _model(), _batches()
    uninterrupted = SpectralImportance(num_bands=4, **options)
    for images, labels in batches:
        uninterrupted.update(model, images, labels)

    first = SpectralImportance(num_bands=4, **options)
    first.persistent(True)
    for images, labels in batches[:2]:
        first.update(model, images, labels)
    saved = first.state_dict()
    assert int(saved["batches_seen"]) == 2
    resumed = SpectralImportance(num_bands=4, **options)
    resumed.load_state_dict(saved)  # strict: the counter is no unexpected key
    resumed.update(model, *batches[2])
    torch.testing.assert_close(resumed.compute().phi, uninterrupted.compute().phi, rtol=0, atol=1e-12)

    # The counter is what makes them agree: a resumed metric that starts counting at 0 again differs.
    restarted = SpectralImportance(num_bands=4, **options)
    restarted.load_state_dict({k: v for k, v in saved.items() if k != "batches_seen"})
    restarted.update(model, *batches[2])
    assert not torch.allclose(restarted.compute().phi, uninterrupted.compute().phi, rtol=0, atol=1e-9)


def test_state_dict_without_the_counter_loads_and_non_persistent_states_save_none() -> None:
    metric = SpectralImportance(num_bands=3)
    metric.update(_model(), *_batches(1)[0])
    assert "batches_seen" not in metric.state_dict()  # nothing is saved unless the states are persistent
    metric.persistent(True)
    older = {k: v for k, v in metric.state_dict().items() if k != "batches_seen"}
    fresh = SpectralImportance(num_bands=3)
    fresh.load_state_dict(older)  # a state dict saved before the counter existed
    assert fresh._batches == 0
    torch.testing.assert_close(fresh.phi_sum, metric.phi_sum)


def test_dict_output_is_the_results_flat_dict() -> None:
    model, (images, labels) = _model(), _batches(1)[0]
    as_result, as_dict = SpectralImportance(num_bands=3), SpectralImportance(num_bands=3, output="dict")
    as_result.update(model, images, labels)
    as_dict.update(model, images, labels)
    expected, got = as_result.compute().as_dict(), as_dict.compute()
    assert isinstance(got, dict) and got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], equal_nan=True)
    fig, ax = as_dict.plot()  # plot() takes the dict output too
    assert len(ax.lines) + len(ax.containers) > 0
    matplotlib.pyplot.close(fig)


def test_metric_tracker_stacks_every_score_over_increments() -> None:
    model, batches = _model(), _batches()
    tracker = MetricTracker(SpectralImportance(num_bands=3, output="dict"), maximize=True)
    for images, labels in batches:  # e.g. one increment per epoch
        tracker.increment()
        tracker.update(model, images, labels)
    history = tracker.compute_all()
    assert history["srs"].shape == (3,) and history["phi"].shape == (3, 3) and history["srs_stderr"].shape == (3,)
    single = SpectralImportance(num_bands=3)
    single.update(model, *batches[1])
    torch.testing.assert_close(history["srs"][1], single.compute().srs)


def test_metric_collection_flattens_the_scores_into_its_keys() -> None:
    model, (images, labels) = _model(), _batches(1)[0]
    collection = MetricCollection({"spectral": SpectralImportance(num_bands=3, output="dict")}, prefix="val/")
    collection.update(model, images, labels)
    values = collection.compute()
    assert {"val/srs", "val/balance", "val/srs_stderr"} <= values.keys()


def test_bad_output_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"`output` must be one of \('result', 'dict'\), got 'tensor'"):
        SpectralImportance(num_bands=3, output="tensor")  # type: ignore[arg-type]


def test_plot_refuses_what_is_no_result() -> None:
    with pytest.raises(ValueError, match="`val` must be a SpectralShapleyResult, its `as_dict\\(\\)`"):
        SpectralImportance(num_bands=3).plot([{"srs": torch.tensor(0.1)}])
