"""fill="permute" works for every batch size, a one-image batch included, in the functional API, the metric and
the monitor."""

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning import SpectralImportance, SpectralRobustnessMonitor
from iaside_lightning.datasets import PlantedBandDataModule
from iaside_lightning.functional import coalition_values, spectral_shapley
from iaside_lightning.models import SmallCNNClassifier
from side_effects import quiet_trainer


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 16 * 16, 4)).double()


def _data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 16, 16, generator=g, dtype=torch.float64), torch.randint(0, 4, (n,), generator=g)


def test_a_single_image_needs_donors_and_says_so() -> None:
    model, (x, y) = _model(), _data()
    with pytest.raises(ValueError, match="`donors`"):
        spectral_shapley(model, x[:1], y[:1], num_bands=3)
    result = spectral_shapley(model, x[:1], y[:1], num_bands=3, donors=x[1:4])
    assert result.num_samples == 1 and bool(result.phi.isfinite().all())


def test_donor_fill_is_the_donors_band_images() -> None:
    """With one image and one donor, every absent band comes from the donor: v(empty) is the model on the donor."""
    model, (x, y) = _model(), _data()
    values = coalition_values(model, x[:1], y[:1], num_bands=3, donors=x[1:2])
    on_donor = torch.log_softmax(model(x[1:2]), dim=1)[0, y[0]]
    assert float(values[0, 0]) == pytest.approx(float(on_donor), abs=1e-9)
    assert float(values[0, -1]) == pytest.approx(float(torch.log_softmax(model(x[:1]), 1)[0, y[0]]), abs=1e-9)


@pytest.mark.parametrize(
    ("donors", "fill", "match"),
    [
        (torch.rand(2, 1, 8, 8, dtype=torch.float64), "permute", "like `images`"),
        (torch.rand(2, 1, 16, 16, dtype=torch.float64), "zero", "only apply to fill='permute'"),
        (torch.full((2, 1, 16, 16), float("nan"), dtype=torch.float64), "permute", "finite"),
    ],
)
def test_bad_donors_are_refused(donors: torch.Tensor, fill: str, match: str) -> None:
    model, (x, y) = _model(), _data()
    with pytest.raises(ValueError, match=match):
        spectral_shapley(model, x[:2], y[:2], num_bands=3, fill=fill, donors=donors)


@pytest.mark.parametrize("batch_size", [1, 3, 5, 15])
def test_metric_counts_every_image_whatever_the_batch_size(batch_size: int) -> None:
    model, (x, y) = _model(), _data(16)  # 16 = 15 + 1, 5 * 3 + 1, 3 * 5 + 1: a one-image last batch
    metric = SpectralImportance(num_bands=3, fill="permute")
    for images, labels in zip(x.split(batch_size), y.split(batch_size)):
        metric.update(model, images, labels)
    result = metric.compute()
    assert result.num_samples == 16 and bool(result.phi.isfinite().all()) and bool(result.stderr.isfinite().all())


def test_a_first_single_image_waits_for_the_next_batch() -> None:
    model, (x, y) = _model(), _data()
    waited = SpectralImportance(num_bands=3, seed=5)
    waited.update(model, x[:1], y[:1])
    waited.update(model, x[1:4], y[1:4])
    together = SpectralImportance(num_bands=3, seed=5)
    together.update(model, x[:4], y[:4])
    torch.testing.assert_close(waited.compute().phi, together.compute().phi, rtol=0, atol=1e-12)


def test_a_lone_image_is_left_out_with_a_warning() -> None:
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=3)
    metric.update(model, x[:1], y[:1])
    with pytest.warns(UserWarning, match="single image"), pytest.raises(ValueError, match="No sample"):
        metric.compute()
    metric.reset()
    metric.update(model, x[:2], y[:2])
    assert metric.compute().num_samples == 2


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("batch_size", [1, 3, 5, 15])
def test_monitor_fits_with_a_one_image_last_batch(tmp_path: Path, batch_size: int) -> None:
    """max_samples=16 with these validation batch sizes leaves one image in the last analysed batch."""
    data = PlantedBandDataModule(num_train=32, num_val=16, batch_size=8, image_size=16, num_bands=4, planted_bands=2)
    data.setup("fit")
    val = DataLoader(TensorDataset(*data.val_set.tensors), batch_size=batch_size)
    monitor = SpectralRobustnessMonitor(num_bands=4, max_samples=16, fill="permute", log_figures=False)
    trainer = quiet_trainer(tmp_path, [monitor], max_epochs=2)
    trainer.fit(SmallCNNClassifier(in_channels=1, num_classes=4, width=4), data.train_dataloader(), val)
    assert [r["num_samples"] for r in monitor.history] == [16, 16]
    assert {"spectral/srs_stderr", "spectral/balance", "spectral/balance_stderr"} <= set(trainer.callback_metrics)


def test_images_of_another_size_are_refused_even_after_a_waiting_image() -> None:
    model, (x, y) = _model(), _data()
    metric = SpectralImportance(num_bands=3)
    metric.update(model, x[:1], y[:1])  # waits for a partner
    with pytest.raises(ValueError, match="one size"):
        metric.update(model, torch.rand(2, 1, 20, 20, dtype=torch.float64), y[:2])


def test_forward_keeps_the_batch_sequence_and_returns_each_batch_result() -> None:
    """forward() = update() + the batch's own result: per-batch seeds and donors carry over, as with update()."""
    model, (x, y) = _model(), _data(16)
    updated, forwarded = SpectralImportance(num_bands=3), SpectralImportance(num_bands=3)
    batches = list(zip(x.split([1, 5, 5, 4, 1]), y.split([1, 5, 5, 4, 1])))
    results = []
    for images, labels in batches:
        updated.update(model, images, labels)
        results.append(forwarded(model, images, labels))
    assert results[0] is None  # a first single image waits for its partner ...
    assert [r.num_samples for r in results[1:]] == [6, 5, 4, 1]  # ... and counts with the next batch
    whole, accumulated = updated.compute(), forwarded.compute()
    assert accumulated.num_samples == whole.num_samples == 16
    torch.testing.assert_close(accumulated.phi, whole.phi, rtol=0, atol=1e-12)
    second = SpectralImportance(num_bands=3)
    second.update(model, torch.cat([x[:1], x[1:6]]), torch.cat([y[:1], y[1:6]]))
    torch.testing.assert_close(results[1].phi, second.compute().phi, rtol=0, atol=1e-12)  # batch 0's seed
