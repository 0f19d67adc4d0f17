"""``EpochMonitor``: the scaffolding the per-epoch monitors share (schedule, dataloader, key prefix, history, state key,
forked RNG), so that each monitor file holds only what it measures and logs."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning.pytorch as pl
import torch
from typing_extensions import override

from iaside_lightning.callbacks.log_prefix import check_log_prefix
from iaside_lightning.callbacks.score_consumers import FitChecks

__all__ = ["EpochMonitor"]


class EpochMonitor(FitChecks):
    """Base of the monitors that measure on some validation epochs and log under a key prefix.

    It checks and keeps ``every_n_epochs``, ``dataloader_idx`` and ``log_prefix`` (one wording for all monitors),
    says which epochs are due (:meth:`_due`: not the sanity check, ``(epoch + 1)`` a multiple of ``every_n_epochs``),
    keeps one history record per epoch (:meth:`_record`; saved in checkpoints under the monitor's ``state_key``,
    made of its class, ``log_prefix`` and ``dataloader_idx``) and measures with the global RNG streams forked
    (:meth:`_forked_rng`), so that training draws the same random numbers with and without the monitor.

    Args:
        every_n_epochs: measure on validation epochs whose ``(epoch + 1)`` is a multiple of this.
        dataloader_idx: which validation dataloader to read.
        log_prefix: prefix of every logged key and figure tag (also names the history table).
    """

    def __init__(self, every_n_epochs: int, dataloader_idx: int, log_prefix: str) -> None:
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"`every_n_epochs` must be an integer >= 1, got {every_n_epochs!r}.")
        if isinstance(dataloader_idx, bool) or not isinstance(dataloader_idx, int) or dataloader_idx < 0:
            raise ValueError(f"`dataloader_idx` must be an integer >= 0, got {dataloader_idx!r}.")
        self.every_n_epochs = every_n_epochs
        self.dataloader_idx = dataloader_idx
        self.log_prefix = check_log_prefix(log_prefix)
        self.history: list[dict[str, Any]] = []

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(log_prefix=self.log_prefix, dataloader_idx=self.dataloader_idx)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(record) for record in self.history]}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(record) for record in state_dict.get("history", [])]

    def _due(self, trainer: "pl.Trainer") -> bool:
        """Whether this validation epoch is one the monitor measures."""
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _record(self, record: dict[str, Any]) -> None:
        """Add this epoch's record (``record["epoch"]``), replacing one of the same epoch (e.g. after a resume)."""
        self.history = [r for r in self.history if r["epoch"] != record["epoch"]] + [record]

    @property
    def _table_name(self) -> str:
        """Name of the history table: the prefix with ``/`` as ``_`` (``"spectral/"`` -> ``"spectral_history"``)."""
        return self.log_prefix.strip("/").replace("/", "_") + "_history"

    @staticmethod
    @contextmanager
    def _forked_rng(pl_module: "pl.LightningModule") -> Iterator[None]:
        """Run the block with the CPU (and the module's CUDA device's) RNG state restored afterwards."""
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            yield
