"""Shared by the callbacks' tests: a quiet CPU Trainer, a model that records what training did, and a batch guard."""

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from iaside_lightning.models import SmallCNNClassifier


def quiet_trainer(tmp_path: Path, callbacks: list, **kwargs: Any) -> Trainer:
    """A deterministic CPU Trainer without logger, checkpoints, progress bar or summary (``kwargs`` override)."""
    options = {
        "accelerator": "cpu",
        "max_epochs": 2,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": tmp_path,
        "deterministic": True,
    }
    return Trainer(callbacks=callbacks, **{**options, **kwargs})


class Recorder(SmallCNNClassifier):
    """Records the modes of its modules and the gradients at every step; keeps one BatchNorm frozen in eval mode."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"in_channels": 1, "width": 4, "depth": 2, "dropout": 0.2, **kwargs})
        self.train_modes: list[tuple[bool, bool]] = []
        self.grads: list[list[torch.Tensor]] = []

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.features[1].eval()  # a deliberately frozen BatchNorm
        self.train_modes.append((self.training, self.features[1].training))

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.grads.append([p.grad.clone() for p in self.parameters() if p.grad is not None])


class BatchGuard(Callback):
    """Checks after the monitor that the validation batch is unchanged."""

    def __init__(self) -> None:
        self.checked = 0

    def on_validation_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, *args: Any) -> None:
        self.copy = [t.clone() for t in batch]

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, *args: Any) -> None:
        assert all(torch.equal(a, b) for a, b in zip(batch, self.copy))
        self.checked += 1


def training_record(trainer: Trainer, model: Recorder, guard: BatchGuard, monitor_prefix: str) -> dict[str, Any]:
    """Everything the monitor must not change, after ``trainer.fit(model)``; the monitor's own keys left out."""
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "grads": model.grads,
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items() if not k.startswith(monitor_prefix)},
        "rng": (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()),
        "modes": model.train_modes,
        "training_after": model.training,
        "checked": guard.checked,
    }


def assert_training_unchanged(with_monitor: dict[str, Any], without: dict[str, Any]) -> None:
    """Two :func:`training_record` results agree: parameters and BatchNorm statistics bit for bit, gradients, the
    other callbacks' metrics, every RNG stream, module modes and the guarded batches."""
    assert with_monitor["state"].keys() == without["state"].keys()
    for key in without["state"]:
        assert torch.equal(with_monitor["state"][key], without["state"][key]), key
    assert len(with_monitor["grads"]) == len(without["grads"]) > 0
    assert all(torch.equal(a, b) for x, y in zip(with_monitor["grads"], without["grads"]) for a, b in zip(x, y))
    assert with_monitor["metrics"] == without["metrics"] and "val/loss" in with_monitor["metrics"]
    assert torch.equal(with_monitor["rng"][0], without["rng"][0])
    assert np.array_equal(with_monitor["rng"][1], without["rng"][1]) and with_monitor["rng"][2] == without["rng"][2]
    assert with_monitor["modes"] == without["modes"] and with_monitor["training_after"] == without["training_after"]
    assert with_monitor["checked"] == without["checked"] > 0
