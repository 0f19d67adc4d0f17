"""``EpochMonitor``: the scaffolding the per-epoch monitors share (schedule, dataloader, key prefix, sample budget,
history, state key, forked RNG), so that each monitor file holds only what it measures and logs."""

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Optional

import lightning.pytorch as pl
import torch
from typing_extensions import override

from iaside_lightning.callbacks.log_prefix import check_log_prefix
from iaside_lightning.callbacks.score_consumers import FitChecks
from iaside_lightning.functional.checks import check_non_negative_int, check_positive_int

__all__ = ["EpochMonitor"]


class EpochMonitor(FitChecks):
    """Base of the monitors that measure on some validation epochs and log under a key prefix.

    It checks and keeps ``every_n_epochs``, ``dataloader_idx`` and ``log_prefix`` (one wording for all monitors),
    says which epochs are due (:meth:`_due`: not the sanity check, ``(epoch + 1)`` a multiple of ``every_n_epochs``),
    splits a sample budget over all processes into each process's share (:meth:`_per_process`), keeps one history
    record per epoch (:meth:`_record`; saved in checkpoints under the monitor's ``state_key``, made of its class,
    ``log_prefix`` and ``dataloader_idx``) and measures with the global RNG streams forked (:meth:`_forked_rng`), so
    that training draws the same random numbers with and without the monitor.

    Args:
        every_n_epochs: measure on validation epochs whose ``(epoch + 1)`` is a multiple of this; ``None`` (only
            where the subclass sets ``_schedule_optional``, e.g. a monitor that also works at fit end): never.
        dataloader_idx: which validation dataloader to read.
        log_prefix: prefix of every logged key and figure tag (also names the history table).

    Raises:
        TypeError: if ``every_n_epochs`` or ``dataloader_idx`` is not an ``int``.
        ValueError: if ``every_n_epochs < 1`` or ``dataloader_idx < 0``, or for a malformed ``log_prefix``.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> monitor = EpochMonitor(every_n_epochs=2, dataloader_idx=0, log_prefix="probe/")
        >>> monitor._table_name, monitor._per_process(Trainer(devices=1, logger=False), 10)
        ('probe_history', 10)
    """

    #: Whether ``every_n_epochs=None`` (no epoch is due) is allowed.
    _schedule_optional: ClassVar[bool] = False
    #: Old record keys and their new names: records of older checkpoints are renamed when loaded.
    _renamed_record_keys: ClassVar[Mapping[str, str]] = {}

    def __init__(self, every_n_epochs: Optional[int], dataloader_idx: int, log_prefix: str) -> None:
        if not (every_n_epochs is None and self._schedule_optional):
            check_positive_int(every_n_epochs, "every_n_epochs", none="never" if self._schedule_optional else "")
        check_non_negative_int(dataloader_idx, "dataloader_idx")
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
        renamed = self._renamed_record_keys
        self.history = [{renamed.get(k, k): v for k, v in record.items()} for record in state_dict.get("history", [])]

    @override
    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.every_n_epochs is not None:  # without a schedule no key is logged per epoch
            super().on_fit_start(trainer, pl_module)

    @override
    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.every_n_epochs is not None:  # without a schedule there is nothing to miss
            super().on_fit_end(trainer, pl_module)

    def _due(self, trainer: "pl.Trainer") -> bool:
        """Whether this validation epoch is one the monitor measures."""
        n = self.every_n_epochs
        return n is not None and not trainer.sanity_checking and (trainer.current_epoch + 1) % n == 0

    @staticmethod
    def _per_process(trainer: "pl.Trainer", total: Optional[int]) -> float:
        """This process's share of ``total`` samples over all processes (``None``: no limit, ``inf``)."""
        return math.inf if total is None else math.ceil(total / trainer.world_size)

    def _record(self, record: dict[str, Any]) -> None:
        """Add this epoch's record (``record["epoch"]``), replacing one of the same epoch (e.g. after a resume)."""
        self.history = [r for r in self.history if r["epoch"] != record["epoch"]] + [record]

    @property
    def _table_name(self) -> str:
        """Name of the history table: the prefix with ``/`` as ``_`` (``"spectral/"`` -> ``"spectral_history"``)."""
        return self._table("history")

    def _table(self, name: str) -> str:
        """Name of a table under the prefix: the prefix with ``/`` as ``_``, then ``_<name>``."""
        return self.log_prefix.strip("/").replace("/", "_") + "_" + name

    @staticmethod
    @contextmanager
    def _forked_rng(pl_module: "pl.LightningModule") -> Iterator[None]:
        """Run the block with the CPU (and the module's CUDA device's) RNG state restored afterwards."""
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            yield
