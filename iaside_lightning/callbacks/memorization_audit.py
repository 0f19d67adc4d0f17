"""``MemorizationAudit``: which training samples the model fits only through high frequencies, every N epochs."""

import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torch.utils.data import default_collate
from torchmetrics.functional.classification import binary_auroc
from typing_extensions import override

from iaside_lightning import loggers
from iaside_lightning.callbacks.batch import BatchUnpacker
from iaside_lightning.callbacks.epoch_monitor import EpochMonitor
from iaside_lightning.callbacks.forward import ForwardFn, check_forward_fn, model_view
from iaside_lightning.functional.memorization import MemorizationOptions, memorization_audit
from iaside_lightning.functional.spectral.bands import BandEdges, BandShape
from iaside_lightning.functional.spectral.coalitions import CoalitionFill

__all__ = ["MemorizationAudit"]


class MemorizationAudit(EpochMonitor):
    """Audit a fixed probe of *training* samples for memorised (likely mislabelled) ones every ``every_n_epochs``.

    At the first training epoch, ``num_probes`` samples of the training set (a seeded draw of indices into
    ``trainer.train_dataloader.dataset``, which must be map-style, read through its own transforms) become the
    probe; a resumed fit draws the same probe and keeps the running mean loss (checkpointed with the history). At
    the end of every training epoch whose ``(epoch + 1)`` is a multiple of ``every_n_epochs`` it computes
    :func:`~iaside_lightning.functional.memorization.memorization_audit` on them, with the labels they were
    trained with, and logs under ``log_prefix``: the score distribution (``score_mean``, ``score_p50``,
    ``score_p90``), the probe's mean loss, the lowest cut-off the score used and how many (``cutoff_lowest``,
    ``cutoffs_used``), ``audit_seconds`` (its cost), and, when the datamodule exposes which
    training labels are noisy (a Bool tensor over the training set in the attribute ``noisy_attribute``, as
    :class:`~iaside_lightning.datasets.MNIST5kDataModule` does), ``auroc`` (noisy vs clean by score) with the
    baselines on the same probe ``auroc_loss`` (this epoch's loss) and ``auroc_mean_loss`` (loss averaged over the
    audits so far). On global rank zero it writes the history table, a table of the ``num_suspects`` top suspects
    of every audit (``<prefix>_suspects``: epoch, rank, dataset index, label, score, loss, noisy flag when known)
    and, with ``log_figures``, the score histogram and thumbnails of the suspects to every logger.

    Cost per audit: ``len(cutoffs) + 1`` forward passes of ``num_probes`` images (no backward); at the defaults
    (512 probes, 7 cut-offs, every 5 epochs) 9% of the training time of a width-32 CNN on MNIST-5k in a plain loop,
    14% of a Lightning fit (docs/memorization.md, which also shows that on memorised noisy labels the score did not
    beat the loss or the training history). Never changes training: the model runs in eval mode under inference
    mode with every module's mode restored, the global RNG streams are forked, and the probe is read from the
    dataset, not from the training batches. Rank zero audits; the other processes skip it.

    Args:
        num_probes: training samples in the probe (all of them if the training set is smaller).
        every_n_epochs: audit after training epochs whose ``(epoch + 1)`` is a multiple of this.
        num_bands: number of frequency bands ``M``.
        cutoffs: candidate numbers of lowest bands kept (see :func:`~iaside_lightning.functional.memorization_scores`);
            ``None``: all of ``1 .. M - 1``.
        band_shape: ``"square"`` or ``"circle"``.
        band_edges: how the bands are cut (as in :func:`~iaside_lightning.functional.spectral_shapley`).
        fill: what replaces absent bands; ``"zero"`` (an ideal low-pass) is the audit's default.
        normalization: per-channel ``(mean, std)`` the images were normalised with (bands are cut in pixel space).
        output_transform: maps the model output to ``[N, K]`` logits.
        forward_fn: how to call the LightningModule on images, ``forward_fn(pl_module, images) -> output``.
        batch_keys: ``(image_key, label_key)`` for dict samples.
        batch_transform: callable mapping a collated batch of samples to ``(images, labels)``.
        noisy_attribute: name of the datamodule attribute holding the Bool noisy-label flags of the training set.
        num_suspects: rows of the suspects table and thumbnails in the figure.
        log_prefix: prefix of logged keys, tables and figure tags.
        log_figures: log the histogram and the thumbnails.
        seed: seed of the probe draw (and of the fill, for ``"permute"`` and ``"noise"``).

    Example:
        >>> from lightning.pytorch import Trainer
        >>> audit = MemorizationAudit(num_probes=256, every_n_epochs=5, normalization=((0.13,), (0.31,)))
        >>> trainer = Trainer(callbacks=[audit], logger=False, enable_progress_bar=False)
    """

    def __init__(
        self,
        num_probes: int = 512,
        every_n_epochs: int = 5,
        num_bands: int = 8,
        cutoffs: Optional[Sequence[int]] = None,
        band_shape: BandShape = "square",
        band_edges: BandEdges = "rings",
        fill: CoalitionFill = "zero",
        normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
        output_transform: Optional[Callable[[Any], Tensor]] = None,
        forward_fn: Optional[ForwardFn] = None,
        batch_keys: Optional[Sequence[str]] = None,
        batch_transform: Optional[Callable[[Any], tuple[Tensor, Tensor]]] = None,
        noisy_attribute: str = "train_noisy",
        num_suspects: int = 16,
        log_prefix: str = "memorization/",
        log_figures: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, 0, log_prefix)
        for name, value in (("num_probes", num_probes), ("num_suspects", num_suspects)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
        if not isinstance(noisy_attribute, str) or not noisy_attribute.isidentifier():
            raise ValueError(f"`noisy_attribute` must be an attribute name, got {noisy_attribute!r}.")
        self.options = MemorizationOptions(  # validated now, not after the first epoch
            num_bands=num_bands, cutoffs=cutoffs, band_shape=band_shape, band_edges=band_edges, fill=fill,
            normalization=normalization, output_transform=output_transform, seed=seed,
        )
        self.num_probes, self.num_suspects, self.seed = num_probes, num_suspects, seed
        self.noisy_attribute, self.log_figures = noisy_attribute, log_figures
        self.forward_fn = check_forward_fn(forward_fn)
        self.unpack = BatchUnpacker(batch_transform, batch_keys)
        self.probe: Optional[tuple[Tensor, Tensor, Tensor, Optional[Tensor]]] = None  # indices, images, labels, noisy
        self.suspects: list[dict[str, Any]] = []  # the top suspects of every audit, as logged
        self._loss_sum: Optional[Tensor] = None
        self._audits = 0

    @override
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.probe is None and trainer.is_global_zero:
            with self._forked_rng(pl_module):  # the dataset's random transforms must not move training's RNG
                self.probe = self._draw_probe(trainer)

    @override
    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"loss_sum": self._loss_sum, "audits": self._audits}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._loss_sum, self._audits = state_dict.get("loss_sum"), state_dict.get("audits", 0)

    def _draw_probe(self, trainer: "pl.Trainer") -> tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
        dataset = getattr(trainer.train_dataloader, "dataset", None)
        if dataset is None or not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(
                "MemorizationAudit reads its probe from `trainer.train_dataloader.dataset`, which must be a map-style "
                f"dataset (with __len__ and __getitem__); got {type(dataset).__name__}."
            )
        generator = torch.Generator().manual_seed(self.seed)
        indices = torch.randperm(len(dataset), generator=generator)[: self.num_probes].sort().values
        images, labels = self.unpack(default_collate([dataset[int(i)] for i in indices]))
        flags = getattr(trainer.datamodule, self.noisy_attribute, None) if trainer.datamodule is not None else None
        if flags is not None and (not isinstance(flags, Tensor) or flags.shape != (len(dataset),)):
            raise ValueError(
                f"`datamodule.{self.noisy_attribute}` must be a Bool tensor with one flag per training sample "
                f"({len(dataset)}), got {getattr(flags, 'shape', type(flags).__name__)}."
            )
        noisy = None if flags is None else flags[indices].bool()
        return indices, images.detach().cpu(), labels.detach().cpu(), noisy

    @override
    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self._due(trainer) or not trainer.is_global_zero or self.probe is None:
            return
        self._mark_ran()
        indices, images, labels, noisy = self.probe
        start = time.perf_counter()
        with self._forked_rng(pl_module):
            model = model_view(pl_module, self.forward_fn)
            audit = memorization_audit(model, images.to(pl_module.device), labels.to(pl_module.device), self.options)
        seconds = time.perf_counter() - start
        scores, loss = audit.scores.cpu(), -audit.full_values.cpu()
        self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
        self._audits += 1
        scalars = {
            "score_mean": float(scores.mean()),
            "score_p50": float(scores.quantile(0.5)),
            "score_p90": float(scores.quantile(0.9)),
            "loss_mean": float(loss.mean()),
            "cutoff_lowest": min(audit.selected),
            "cutoffs_used": len(audit.selected),
            "audit_seconds": seconds,
        }
        if noisy is not None and 0 < int(noisy.sum()) < len(noisy):
            target = noisy.long()
            scalars["auroc"] = float(binary_auroc(scores, target))
            scalars["auroc_loss"] = float(binary_auroc(loss, target))
            scalars["auroc_mean_loss"] = float(binary_auroc(self._loss_sum / self._audits, target))
        for name, value in scalars.items():
            pl_module.log(self.log_prefix + name, value, on_step=False, on_epoch=True, rank_zero_only=True)
        self._record({"epoch": trainer.current_epoch, "step": loggers.logging_step(trainer)} | scalars)
        self._log_artifacts(trainer, scores, loss)

    def _log_artifacts(self, trainer: "pl.Trainer", scores: Tensor, loss: Tensor) -> None:
        indices, images, labels, noisy = self.probe
        loggers.log_history(trainer, self._table_name, self.history)
        top = scores.argsort(descending=True)[: self.num_suspects]
        self.suspects = [row for row in self.suspects if row["epoch"] != trainer.current_epoch] + [
            {"epoch": trainer.current_epoch, "rank": rank, "index": int(indices[i]), "label": int(labels[i]),
             "score": float(scores[i]), "loss": float(loss[i])}
            | ({} if noisy is None else {"noisy": int(noisy[i])})
            for rank, i in enumerate(top.tolist())
        ]
        loggers.log_history(trainer, self._table("suspects"), self.suspects)
        if not self.log_figures:
            return
        from iaside_lightning.plotting.memorization import plot_memorization_scores, plot_suspects

        epoch = trainer.current_epoch
        fig, _ = plot_memorization_scores(scores, noisy, title=f"Memorisation scores, epoch {epoch}")
        loggers.log_figure(trainer, self.log_prefix + "scores", fig, epoch)
        fig, _ = plot_suspects(images[top], labels[top], scores[top], None if noisy is None else noisy[top],
                               title=f"Top suspects, epoch {epoch}")
        loggers.log_figure(trainer, self.log_prefix + "suspects", fig, epoch)

    @override
    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self._ran and trainer.is_global_zero:
            rank_zero_warn(
                f"MemorizationAudit audited nothing during this fit: it runs after training epochs whose (epoch + 1) "
                f"is a multiple of every_n_epochs={self.every_n_epochs}. Train longer or lower every_n_epochs."
            )
