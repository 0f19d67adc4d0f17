"""Callbacks that read a monitor's scores on epochs it skips fail at fit start with the fix, the documented recipe
works, and a fit in which a monitor never ran says so."""

import warnings
from pathlib import Path
from typing import Any

import pytest
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from iaside_lightning import BoundaryMonitor, SpectralRobustnessMonitor
from iaside_lightning.datasets import PlantedBandDataModule
from iaside_lightning.models import SmallCNNClassifier
from side_effects import quiet_trainer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _data() -> PlantedBandDataModule:
    return PlantedBandDataModule(num_train=32, num_val=16, batch_size=8, image_size=16, num_bands=4, planted_bands=2)


def _spectral(**kwargs: Any) -> SpectralRobustnessMonitor:
    return SpectralRobustnessMonitor(num_bands=4, max_samples=8, log_figures=False, **kwargs)


def _fit(tmp_path: Path, callbacks: list, **kwargs: Any) -> None:
    trainer = quiet_trainer(tmp_path, callbacks, **{"enable_checkpointing": True, **kwargs})
    trainer.fit(SmallCNNClassifier(in_channels=1, width=4, depth=2), datamodule=_data())


@pytest.mark.parametrize(
    ("consumer", "match"),
    [
        (EarlyStopping(monitor="spectral/srs"), "strict=False"),
        (ModelCheckpoint(monitor="spectral/srs"), "every_n_epochs=2"),
        (ModelCheckpoint(monitor="spectral/srs", every_n_epochs=3), "every_n_epochs=2"),
        (ModelCheckpoint(monitor="spectral/srs", every_n_train_steps=2, every_n_epochs=0), "every_n_train_steps"),
    ],
)
def test_consumers_of_skipped_epochs_fail_at_fit_start(tmp_path: Path, consumer: Any, match: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=match):
            _fit(tmp_path, [_spectral(every_n_epochs=2), consumer], max_epochs=2)


def test_the_documented_recipe_runs_and_checkpoints_on_the_monitors_epochs(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="spectral/srs", mode="max", every_n_epochs=2)
    stopping = EarlyStopping(monitor="spectral/balance", mode="max", strict=False, patience=5)
    monitor = _spectral(every_n_epochs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _fit(tmp_path, [monitor, checkpoint, stopping], max_epochs=4)
    assert [r["epoch"] for r in monitor.history] == [1, 3]
    assert checkpoint.best_model_path and float(checkpoint.best_model_score) == pytest.approx(
        max(r["srs"] for r in monitor.history), rel=1e-6
    )


def test_other_keys_and_every_epoch_monitors_are_left_alone(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _fit(tmp_path, [_spectral(every_n_epochs=2), EarlyStopping(monitor="val/loss")], max_epochs=2)
        _fit(tmp_path, [_spectral(), EarlyStopping(monitor="spectral/srs", mode="max")], max_epochs=1)


@pytest.mark.parametrize("make", [lambda: _spectral(every_n_epochs=5), lambda: BoundaryMonitor(num_probes=4, every_n_epochs=5)])
def test_a_monitor_that_never_ran_says_so(tmp_path: Path, make: Any) -> None:
    monitor = make()
    with pytest.warns(UserWarning, match="recorded nothing during this fit"):
        _fit(tmp_path, [monitor], max_epochs=1)
    assert monitor.history == []


def test_no_never_ran_warning_when_it_ran(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [_spectral()], max_epochs=1)
    assert not [w for w in caught if "recorded nothing" in str(w.message)]
