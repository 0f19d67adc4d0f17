"""DiffROARCallback on the monitors' scaffolding: their argument names (the old ones deprecated), a sample budget over
all processes, the schedule checks at fit start and end, and its history in checkpoints."""

import warnings
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping

from iaside_lightning import DiffROARCallback
from iaside_lightning.callbacks.epoch_monitor import EpochMonitor


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"proxy_every_n_epochs": 3}, {"every_n_epochs": 3}),
        ({"proxy_max_samples": 40}, {"max_samples": 40}),
        ({"name": "sanity"}, {"log_prefix": "sanity/"}),
        ({"name": "val/diffroar/"}, {"log_prefix": "val/diffroar/"}),
    ],
)
def test_old_argument_names_still_work_and_warn_naming_the_new_one(old: dict, new: dict) -> None:
    base = {"every_n_epochs": 1} if "proxy_every_n_epochs" not in old else {}
    (new_name, value), (old_name, _) = *new.items(), *old.items()
    warning = rf"`DiffROARCallback\({old_name}=\.\.\.\)` is deprecated.*`{new_name}`"
    with pytest.warns(DeprecationWarning, match=warning):
        callback = DiffROARCallback(**base, **old)
    assert getattr(callback, new_name) == value
    assert callback.state_key == DiffROARCallback(**base, **new).state_key


def test_new_names_do_not_warn_and_both_names_together_fail() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        callback = DiffROARCallback(every_n_epochs=2, max_samples=10, log_prefix="sanity/")
    assert isinstance(callback, EpochMonitor) and callback.state_key.startswith("DiffROARCallback{'log_prefix'")
    with pytest.raises(ValueError, match="both `every_n_epochs` and its deprecated alias `proxy_every_n_epochs`"):
        DiffROARCallback(every_n_epochs=2, proxy_every_n_epochs=3)


@pytest.mark.parametrize(("world_size", "expected"), [(1, 10), (2, 5), (3, 4)])
def test_max_samples_counts_the_images_of_all_processes(world_size: int, expected: int) -> None:
    callback = DiffROARCallback(every_n_epochs=1, max_samples=10)
    trainer: Any = SimpleNamespace(sanity_checking=False, current_epoch=0, world_size=world_size)
    callback.on_validation_epoch_start(trainer, None)  # type: ignore[arg-type]
    for batch_idx in range(4):
        batch = (torch.rand(3, 1, 2, 2), torch.arange(3) % 2)
        callback.on_validation_batch_end(trainer, None, None, batch, batch_idx)  # type: ignore[arg-type]
    assert sum(len(labels) for _, labels in callback._proxy_batches) == expected


def test_max_samples_none_takes_every_image_and_bad_budgets_fail() -> None:
    callback = DiffROARCallback(every_n_epochs=1, max_samples=None)
    trainer: Any = SimpleNamespace(sanity_checking=False, current_epoch=0, world_size=2)
    callback.on_validation_epoch_start(trainer, None)  # type: ignore[arg-type]
    batch = (torch.rand(7, 1, 2, 2), torch.zeros(7, dtype=torch.long))
    callback.on_validation_batch_end(trainer, None, None, batch, 0)  # type: ignore[arg-type]
    assert len(callback._proxy_batches[0][1]) == 7
    with pytest.raises(ValueError, match="`max_samples` must be a positive integer"):
        DiffROARCallback(every_n_epochs=1, max_samples=0)


def test_proxy_history_is_the_monitors_history_in_checkpoints() -> None:
    callback = DiffROARCallback(every_n_epochs=1)
    callback._record({"epoch": 0, "step": 3, "diff_k0.1": 0.25})
    restored = DiffROARCallback(every_n_epochs=1)
    restored.load_state_dict(callback.state_dict())
    assert restored.history == [{"epoch": 0, "step": 3, "diff_k0.1": 0.25}]
    assert callback._table_name == "diffroar_history" and callback._table("retrained") == "diffroar_retrained"


def test_a_strict_early_stopping_on_proxy_keys_off_schedule_fails_at_fit_start(tmp_path: Any) -> None:
    callbacks = [DiffROARCallback(every_n_epochs=2), EarlyStopping("diffroar/proxy/diff_k0.1")]
    trainer = Trainer(callbacks=callbacks, max_epochs=1, logger=False, enable_progress_bar=False,
                      default_root_dir=tmp_path)  # fmt: skip
    with pytest.raises(ValueError, match="DiffROARCallback logs it only every 2 epochs"):
        trainer.fit(_Tiny(), [(torch.rand(2, 1, 2, 2), torch.tensor([0, 1]))])


def test_retraining_only_needs_no_schedule() -> None:
    callback = DiffROARCallback(_Tiny)
    assert callback.every_n_epochs is None
    assert not callback._due(SimpleNamespace(sanity_checking=False, current_epoch=0))  # type: ignore[arg-type]


class _Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)
