"""SpectralRobustnessMonitor in a real Trainer: logging, budgets, no side effects on training, resume, bad config."""

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning.pytorch import seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning import SpectralRobustnessMonitor
from iaside_lightning.datasets import PlantedBandDataModule
from iaside_lightning.models import SmallCNNClassifier
from side_effects import BatchGuard, Recorder, quiet_trainer, training_record

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _data(**kwargs: Any) -> PlantedBandDataModule:
    options = {"num_train": 64, "num_val": 24, "batch_size": 8, "image_size": 16, "num_bands": 4, "planted_bands": 2}
    return PlantedBandDataModule(**{**options, **kwargs})


def _monitor(**kwargs: Any) -> SpectralRobustnessMonitor:
    options = {"num_bands": 4, "max_samples": 16, "normalization": PlantedBandDataModule.normalization}
    return SpectralRobustnessMonitor(**{**options, **kwargs})


def _fit(tmp_path: Path, with_monitor: bool, inference_mode: bool) -> dict[str, Any]:
    seed_everything(7)
    model, guard = Recorder(), BatchGuard()
    callbacks = [_monitor(fill="noise"), guard] if with_monitor else [guard]
    trainer = quiet_trainer(tmp_path, callbacks, inference_mode=inference_mode)
    trainer.fit(model, datamodule=_data())
    return training_record(trainer, model, guard, "spectral/") | {
        "spectral": {k for k in trainer.callback_metrics if k.startswith("spectral/")},
    }


@pytest.mark.parametrize("inference_mode", [True, False])
def test_monitor_does_not_change_training(tmp_path: Path, inference_mode: bool) -> None:
    without = _fit(tmp_path, with_monitor=False, inference_mode=inference_mode)
    with_ = _fit(tmp_path, with_monitor=True, inference_mode=inference_mode)
    assert with_["spectral"] and not without["spectral"]  # the monitor did run
    assert with_["state"].keys() == without["state"].keys()
    for key in without["state"]:  # parameters and BatchNorm statistics, bit for bit
        assert torch.equal(with_["state"][key], without["state"][key]), key
    assert len(with_["grads"]) == len(without["grads"]) > 0
    assert all(torch.equal(a, b) for x, y in zip(with_["grads"], without["grads"]) for a, b in zip(x, y))
    assert with_["metrics"] == without["metrics"]
    assert torch.equal(with_["rng"][0], without["rng"][0])
    assert np.array_equal(with_["rng"][1], without["rng"][1]) and with_["rng"][2] == without["rng"][2]
    assert with_["modes"] == without["modes"] and all(mode == (True, False) for mode in with_["modes"])
    assert with_["checked"] == without["checked"] > 0


def test_logged_scalars_history_and_sanity_check(tmp_path: Path) -> None:
    monitor = _monitor(max_samples=10)
    trainer = quiet_trainer(tmp_path, [monitor], max_epochs=3, num_sanity_val_steps=2)
    trainer.fit(SmallCNNClassifier(in_channels=1, width=4, depth=2), datamodule=_data())
    assert [r["epoch"] for r in monitor.history] == [0, 1, 2]  # nothing from the sanity check
    assert all(r["num_samples"] == 10 for r in monitor.history)  # the budget holds across batches of 8
    logged = trainer.callback_metrics
    scores = {"srs", "srs_stderr", "srs_signed", "srs_signed_stderr", "balance", "balance_stderr", "v_empty", "v_full"}
    per_band = {f"{s}/band_{k}" for s in ("phi", "phi_stderr", "psi", "psi_stderr") for k in range(4)}
    assert {k.removeprefix("spectral/") for k in logged if k.startswith("spectral/")} == scores | per_band
    last = monitor.history[-1]
    assert [float(logged[f"spectral/phi/band_{k}"]) for k in range(4)] == pytest.approx(last["phi"])
    for score in scores:  # every logged score, its standard error included, is the history's
        assert float(logged[f"spectral/{score}"]) == pytest.approx(last[score]), score
    assert all(last[f"{score}_stderr"] > 0 for score in ("srs", "srs_signed", "balance"))
    assert sum(last["phi"]) == pytest.approx(last["v_full"] - last["v_empty"], abs=1e-9)
    # Figure tags never equal a scalar key (W&B keeps one type per key).
    assert not {f"spectral/{tag}" for tag in monitor.figures()} & set(logged)


def test_every_n_epochs(tmp_path: Path) -> None:
    monitor = _monitor(every_n_epochs=2)
    quiet_trainer(tmp_path, [monitor], max_epochs=4).fit(SmallCNNClassifier(in_channels=1, width=4, depth=2), datamodule=_data())
    assert [r["epoch"] for r in monitor.history] == [1, 3]


def test_checkpoint_monitors_srs_and_resume_continues_history(tmp_path: Path) -> None:
    data = _data()
    # save_top_k=-1: this Lightning writes last.ckpt only when a top-k checkpoint is written, so keep every epoch's.
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="spectral/srs", mode="max", save_last=True, save_top_k=-1
    )
    first = _monitor()
    quiet_trainer(tmp_path, [first, checkpoint], max_epochs=2, enable_checkpointing=True).fit(
        SmallCNNClassifier(in_channels=1, width=4, depth=2), datamodule=data
    )
    assert checkpoint.best_model_path
    assert float(checkpoint.best_model_score) == pytest.approx(max(r["srs"] for r in first.history), rel=1e-6)
    resumed = _monitor()
    quiet_trainer(tmp_path, [resumed, ModelCheckpoint(dirpath=tmp_path / "ckpt2")], max_epochs=3, enable_checkpointing=True).fit(
        SmallCNNClassifier(in_channels=1, width=4, depth=2), datamodule=data, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
    )
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2]
    assert resumed.history[:2] == first.history


class _DictData(TensorDataset):
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        x, y = super().__getitem__(index)
        return {"pixels": x, "target": y}


class _DictModule(SmallCNNClassifier):
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return super().training_step((batch["pixels"], batch["target"]), batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return super().validation_step((batch["pixels"], batch["target"]), batch_idx)


def _dict_loader() -> DataLoader:
    return DataLoader(_DictData(torch.rand(16, 1, 16, 16), torch.randint(0, 4, (16,))), batch_size=8)


def test_dict_batches_need_keys_and_say_so(tmp_path: Path) -> None:
    model = _DictModule(in_channels=1, width=4, depth=2)
    with pytest.raises(TypeError, match="batch_keys"):
        quiet_trainer(tmp_path, [_monitor()], max_epochs=1).fit(model, _dict_loader(), _dict_loader())
    monitor = _monitor(batch_keys=("pixels", "target"))
    quiet_trainer(tmp_path, [monitor], max_epochs=1).fit(model, _dict_loader(), _dict_loader())
    assert monitor.history and monitor.history[-1]["num_samples"] == 16


class _DictOutput(SmallCNNClassifier):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {"logits": super().forward(x)}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch[0])["logits"], batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        return None


def test_model_output_needs_transform_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="output_transform"):
        quiet_trainer(tmp_path, [_monitor()], max_epochs=1).fit(_DictOutput(in_channels=1, width=4, depth=2), datamodule=_data())
    monitor = _monitor(output_transform=_pick_logits)
    quiet_trainer(tmp_path, [monitor], max_epochs=1).fit(_DictOutput(in_channels=1, width=4, depth=2), datamodule=_data())
    assert len(monitor.history) == 1


def _pick_logits(out: dict[str, torch.Tensor]) -> torch.Tensor:
    return out["logits"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every_n_epochs": 0}, ValueError, "every_n_epochs"),
        ({"max_samples": 0}, ValueError, "max_samples"),
        ({"fill": "mean"}, ValueError, "fill"),
        ({"dataloader_idx": -1}, ValueError, "dataloader_idx"),
        ({"batch_keys": ("image",)}, ValueError, "batch_keys"),
        ({"batch_transform": "not callable"}, TypeError, "batch_transform"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        _monitor(**kwargs)


def test_figures_before_any_epoch_raise() -> None:
    with pytest.raises(RuntimeError, match="no history"):
        _monitor().figures()


def test_no_warning_storm_on_single_device(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_trainer(tmp_path, [_monitor()], max_epochs=1).fit(SmallCNNClassifier(in_channels=1, width=4, depth=2), datamodule=_data())
    assert not [w for w in caught if "iaside" in str(w.filename) or "Spectral" in str(w.message)]
