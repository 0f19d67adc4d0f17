"""Models whose forward needs more than the images: the monitors call them through ``forward_fn``."""

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from iaside_lightning import BoundaryMonitor, SpectralRobustnessMonitor
from iaside_lightning.datasets import PlantedBandDataModule
from iaside_lightning.models import SmallCNNClassifier
from side_effects import quiet_trainer


class _NeedsScale(SmallCNNClassifier):
    """``forward(x, scale)``: the extra argument has no default, as in multi-task or conditional models."""

    def forward(self, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        return super().forward(x) * scale

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x, 1.0), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", torch.nn.functional.cross_entropy(self(x, 1.0), y))


def _data() -> PlantedBandDataModule:
    return PlantedBandDataModule(num_train=32, num_val=16, batch_size=8, image_size=16, num_bands=4, planted_bands=2)


@pytest.mark.parametrize(
    "make",
    [
        lambda fn: SpectralRobustnessMonitor(num_bands=4, max_samples=8, log_figures=False, forward_fn=fn),
        lambda fn: BoundaryMonitor(num_probes=4, log_images=False, forward_fn=fn),
    ],
)
def test_monitors_run_a_model_whose_forward_needs_an_extra_argument(tmp_path: Path, make: Any) -> None:
    monitor = make(lambda module, x: module(x, scale=1.0))
    model = _NeedsScale(in_channels=1, width=4, depth=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_trainer(tmp_path, [monitor], max_epochs=1).fit(model, datamodule=_data())
    assert [r["epoch"] for r in monitor.history] == [0]
    assert model.training  # the module's own mode is restored


def test_forward_fn_must_be_callable() -> None:
    for make in (SpectralRobustnessMonitor, BoundaryMonitor):
        with pytest.raises(ValueError, match="`forward_fn`"):
            make(forward_fn="scale")
