"""Checks a monitor runs at fit start and end: callbacks that read its scores on epochs it skips, and a fit in which it
never ran. :class:`FitChecks` runs both for any monitor with ``log_prefix`` and ``every_n_epochs``."""

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn
from typing_extensions import override

__all__ = ["FitChecks", "check_score_consumers", "warn_if_never_ran"]


class FitChecks(Callback):
    """Base of the monitors: at fit start, :func:`check_score_consumers`; at fit end, :func:`warn_if_never_ran`.

    Subclasses set ``log_prefix`` and ``every_n_epochs`` and call :meth:`_mark_ran` when they evaluate.
    """

    log_prefix: str
    every_n_epochs: int
    _ran: bool = False

    def _mark_ran(self) -> None:
        self._ran = True

    @override
    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        check_score_consumers(trainer, type(self).__name__, self.log_prefix, self.every_n_epochs)
        self._ran = False

    @override
    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        warn_if_never_ran(trainer, type(self).__name__, self._ran, self.every_n_epochs)


def check_score_consumers(trainer: "pl.Trainer", owner: str, log_prefix: str, every_n_epochs: int) -> None:
    """Raise at fit start if an ``EarlyStopping`` or ``ModelCheckpoint`` monitors one of the monitor's keys (those
    starting with ``log_prefix``) on epochs the monitor skips; such a callback otherwise crashes after the first
    skipped epoch with "metric not available".

    Raises:
        ValueError: naming the callback and the option that fixes it.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(callbacks=[EarlyStopping("spectral/srs", strict=False)], logger=False)
        >>> check_score_consumers(trainer, "SpectralRobustnessMonitor", "spectral/", every_n_epochs=5)  # no error
    """
    if every_n_epochs == 1:
        return
    for callback in trainer.callbacks:
        key = getattr(callback, "monitor", None)
        if not isinstance(key, str) or not key.startswith(log_prefix):
            continue
        if isinstance(callback, EarlyStopping) and callback.strict:
            raise ValueError(
                f"EarlyStopping(monitor={key!r}) checks every validation epoch, but {owner} logs it only every "
                f"{every_n_epochs} epochs (`every_n_epochs={every_n_epochs}`). Pass EarlyStopping(..., strict=False) "
                "so that it skips the epochs without the score (its patience then counts evaluations), or "
                f"{owner}(every_n_epochs=1)."
            )
        if isinstance(callback, ModelCheckpoint) and _checks_off_schedule(callback, every_n_epochs):
            raise ValueError(
                f"ModelCheckpoint(monitor={key!r}) checks on epochs {owner} skips: it logs the key only every "
                f"{every_n_epochs} epochs (`every_n_epochs={every_n_epochs}`). Pass ModelCheckpoint(..., "
                f"every_n_epochs={every_n_epochs}) (or a multiple), without `every_n_train_steps` or "
                "`train_time_interval`."
            )


def _checks_off_schedule(checkpoint: ModelCheckpoint, every_n_epochs: int) -> bool:
    """Whether the checkpoint reads its monitored key on an epoch whose ``(epoch + 1)`` is not a multiple of
    ``every_n_epochs`` (or at step/time intervals, which ignore epochs)."""
    by_steps = checkpoint._every_n_train_steps > 0 or checkpoint._train_time_interval is not None
    return by_steps or checkpoint._every_n_epochs < 1 or checkpoint._every_n_epochs % every_n_epochs != 0


def warn_if_never_ran(trainer: "pl.Trainer", owner: str, ran: bool, every_n_epochs: int) -> None:
    """Warn once, at the end of a fit, if the monitor recorded nothing (no validation loop ran on an epoch it
    measures), instead of saying nothing."""
    if ran or trainer.sanity_checking:
        return
    rank_zero_warn(
        f"{owner} recorded nothing during this fit: it runs in validation epochs whose (epoch + 1) is a multiple of "
        f"every_n_epochs={every_n_epochs}, and none ran (no validation dataloader, `limit_val_batches=0`, "
        "`check_val_every_n_epoch` or `max_epochs` too small). Give the Trainer a validation loop, or lower "
        "every_n_epochs."
    )
