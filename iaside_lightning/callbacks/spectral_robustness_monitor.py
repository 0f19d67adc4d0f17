"""``SpectralRobustnessMonitor``: a Lightning callback that tracks spectral importance every validation epoch."""

import math
from collections.abc import Callable, Sequence
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from typing_extensions import override

from iaside_lightning import loggers
from iaside_lightning.callbacks.batch import BatchUnpacker
from iaside_lightning.callbacks.forward import ForwardFn, check_forward_fn, model_view
from iaside_lightning.callbacks.epoch_monitor import EpochMonitor
from iaside_lightning.functional.checks import check_positive_int
from iaside_lightning.functional.spectral.bands import BandEdges, BandShape
from iaside_lightning.functional.spectral.coalitions import CoalitionFill
from iaside_lightning.functional.spectral.estimators import Estimator
from iaside_lightning.functional.spectral.options import Autocast, document_options
from iaside_lightning.functional.spectral.result import SpectralShapleyResult
from iaside_lightning.functional.spectral.values import Value
from iaside_lightning.metrics.spectral_importance import SpectralImportance
from iaside_lightning.plotting import plot_band_epoch_heatmap, plot_frequency_response, plot_srs_curve

__all__ = ["SpectralRobustnessMonitor"]

#: Scalar scores logged every evaluated epoch (as ``log_prefix + name``) and kept in the history.
_SCALARS = (
    "srs",
    "srs_stderr",
    "srs_signed",
    "srs_signed_stderr",
    "balance",
    "balance_stderr",
    "v_empty",
    "v_full",
)
#: History keys passed to :func:`~iaside_lightning.plotting.plot_srs_curve` beside SRS and signed SRS.
_CURVE_KEYWORDS = ("srs_stderr", "srs_signed_stderr", "balance", "balance_stderr")


@document_options(
    "num_bands", "band_shape", "band_edges", "fill", "value", "normalization", "beta", "output_transform",
    "forward_batch_size", "chunk_size", "estimator", "autocast", "seed",
)
class SpectralRobustnessMonitor(EpochMonitor):
    """Track how much predictive power the model draws from each frequency band, every validation epoch.

    During validation the callback evaluates the band coalitions (all ``2^M``, or a KernelSHAP sample within
    ``max_coalitions`` for large ``M``) of (up to ``max_samples`` of) the validation images with the model in eval mode and accumulates them in a
    :class:`~iaside_lightning.metrics.SpectralImportance` metric, synchronised exactly across processes. At the end of
    the validation epoch it logs through the LightningModule (so ``ModelCheckpoint``/``EarlyStopping`` can monitor
    e.g. ``"spectral/srs"``), under ``log_prefix``: ``phi/band_k``, ``phi_stderr/band_k``, ``psi/band_k``,
    ``psi_stderr/band_k``, ``srs``, ``srs_stderr``, ``srs_signed``, ``srs_signed_stderr``, ``balance`` (the spectral
    balance, which unlike SRS counts harmful bands against robustness), ``balance_stderr``, ``v_empty`` and
    ``v_full``; and, on rank zero, figures (this epoch's frequency response with 95% error bars, the band x epoch
    heat map and the scores over epochs with 95% bands) and the per-epoch history table to every attached logger.
    Every standard error is that of the score as an estimate over the data distribution, from the analysed images.

    The callback never changes training: the model runs in eval mode under ``torch.inference_mode`` and every module's
    mode is restored, BatchNorm statistics and gradients are untouched, the global RNG streams are forked, and the
    batch is not modified. The sanity-check pass is skipped.

    Args:
        {options}
        every_n_epochs: run on validation epochs whose ``(epoch + 1)`` is a multiple of this.
        max_samples: images analysed per validation epoch over all processes (``None``: all of them); the first
            ones of the epoch are used.
        dataloader_idx: which validation dataloader to analyse.
        batch_keys: ``(image_key, label_key)`` for dict batches (default batches are ``(x, y, ...)`` tuples).
        batch_transform: callable mapping a batch to ``(images, labels)``; overrides ``batch_keys``.
        forward_fn: how to call the LightningModule on images when its ``forward`` needs more than them, as
            ``forward_fn(pl_module, images) -> output``, e.g. ``lambda module, x: module(x, task="digits")``;
            ``None``: ``pl_module(images)``.
        log_prefix: prefix of every logged key and figure tag.
        log_figures: log the frequency response, heat map and SRS figures.
        max_coalitions: coalitions evaluated per image at most. The default (4,096, as in the metric) enumerates all
            ``2^M`` coalitions, exact Shapley values, up to ``num_bands=12``; a smaller budget makes larger ``M``
            a KernelSHAP estimate whose error is included in ``phi_stderr`` (docs/estimators.md).
    Raises:
        ValueError: for an invalid option (at construction) and for an unreadable batch or model output (at the first
            validation batch).

    Example:
        >>> from lightning.pytorch import Trainer
        >>> monitor = SpectralRobustnessMonitor(num_bands=8, max_samples=64, fill="permute")
        >>> trainer = Trainer(callbacks=[monitor], logger=False, enable_progress_bar=False)
    """

    #: Records of checkpoints from before the rename keep their band edges under the old key.
    _renamed_record_keys = {"band_edges": "band_frequencies"}

    def __init__(
        self,
        num_bands: int = 8,
        band_shape: BandShape = "square",
        band_edges: BandEdges = "rings",
        fill: CoalitionFill = "permute",
        value: Value = "log_prob",
        normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
        beta: float = 0.75,
        every_n_epochs: int = 1,
        max_samples: Optional[int] = 8,
        dataloader_idx: int = 0,
        batch_keys: Optional[Sequence[str]] = None,
        batch_transform: Optional[Callable[[Any], tuple[Tensor, Tensor]]] = None,
        output_transform: Optional[Callable[[Any], Tensor]] = None,
        forward_fn: Optional[ForwardFn] = None,
        log_prefix: str = "spectral/",
        log_figures: bool = True,
        chunk_size: Optional[int] = None,
        estimator: Estimator = "auto",
        autocast: Optional[Autocast] = None,
        max_coalitions: int = 4096,
        seed: int = 0,
        forward_batch_size: Optional[int] = None,
    ) -> None:
        super().__init__(every_n_epochs, dataloader_idx, log_prefix)
        if max_samples is not None:
            check_positive_int(max_samples, "max_samples", none="all samples")
        self.metric = SpectralImportance(
            num_bands=num_bands,
            band_shape=band_shape,
            band_edges=band_edges,
            fill=fill,
            value=value,
            normalization=normalization,
            output_transform=output_transform,
            beta=beta,
            chunk_size=chunk_size,
            estimator=estimator,
            max_coalitions=max_coalitions,
            autocast=autocast,
            seed=seed,
            forward_batch_size=forward_batch_size,
        )
        self.unpack = BatchUnpacker(batch_transform, batch_keys)
        self.forward_fn = check_forward_fn(forward_fn)
        self.max_samples = max_samples
        self.log_figures = log_figures
        self._active = False
        self._budget = 0

    @override
    def on_validation_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._active = self._due(trainer)
        if not self._active:
            return
        self.metric.reset()
        self.metric.to(pl_module.device)
        self._budget = self._per_process(trainer, self.max_samples)

    @override
    def on_validation_batch_end(
        self,
        trainer: "pl.Trainer",
        pl_module: "pl.LightningModule",
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._active or dataloader_idx != self.dataloader_idx or self._budget <= 0:
            return
        images, labels = self.unpack(batch)
        take = int(min(self._budget, images.shape[0]))
        self._budget -= take
        with self._forked_rng(pl_module):
            model = model_view(pl_module, self.forward_fn)
            self.metric.update(model, images[:take].to(pl_module.device), labels[:take].to(pl_module.device))

    @override
    def on_validation_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self._active:
            return
        self._active = False
        if trainer.world_size == 1 and float(self.metric.count) == 0:
            rank_zero_warn(f"SpectralRobustnessMonitor saw no sample of validation dataloader {self.dataloader_idx}.")
            return
        self._mark_ran()
        result = self.metric.compute()  # a collective: every rank calls it
        self._log_scalars(pl_module, result)
        self._record_result(trainer, result)
        if trainer.is_global_zero:
            self._log_artifacts(trainer)

    def _log_scalars(self, pl_module: "pl.LightningModule", result: SpectralShapleyResult) -> None:
        scalars = {name: getattr(result, name) for name in _SCALARS}
        for k in range(result.num_bands):
            scalars[f"phi/band_{k}"] = result.phi[k]
            scalars[f"phi_stderr/band_{k}"] = result.stderr[k]
            scalars[f"psi/band_{k}"] = result.psi[k]
            scalars[f"psi_stderr/band_{k}"] = result.psi_stderr[k]
        for name, val in scalars.items():
            # Already synchronised by the metric: every rank logs the same value.
            pl_module.log(self.log_prefix + name, float(val), on_step=False, on_epoch=True, sync_dist=False)

    def _record_result(self, trainer: "pl.Trainer", result: SpectralShapleyResult) -> None:
        record = {
            "epoch": trainer.current_epoch,
            "step": loggers.logging_step(trainer),
            "num_samples": result.num_samples,
            **{name: float(getattr(result, name)) for name in _SCALARS},
            "phi": result.phi.tolist(),
            "stderr": result.stderr.tolist(),
            "psi": result.psi.tolist(),
            "psi_stderr": result.psi_stderr.tolist(),
            "band_frequencies": result.band_frequencies.tolist(),
        }
        self._record(record)

    def _log_artifacts(self, trainer: "pl.Trainer") -> None:
        rows = [
            {key: r.get(key, math.nan) for key in ("epoch", "step", "num_samples", *_SCALARS)}
            | {f"phi_band{k}": v for k, v in enumerate(r["phi"])}
            | {f"stderr_band{k}": v for k, v in enumerate(r["stderr"])}
            for r in self.history
        ]
        loggers.log_history(trainer, self._table_name, rows)
        if not self.log_figures:
            return
        for tag, (fig, _) in self.figures().items():
            loggers.log_figure(trainer, self.log_prefix + tag, fig, trainer.current_epoch)

    def figures(self) -> dict[str, tuple[Any, Any]]:
        """Figures of the history so far, as ``{tag: (fig, ax)}``: ``"frequency_response"`` (latest epoch, 95%
        error bars), ``"band_epoch_heatmap"`` (phi per band and epoch) and ``"scores"`` (SRS, signed SRS and the
        spectral balance per epoch, with 95% bands). Figure tags never equal a scalar's key (W&B keeps one type per
        key).

        Raises:
            RuntimeError: if nothing has been recorded yet.
        """
        if not self.history:
            raise RuntimeError("SpectralRobustnessMonitor has no history yet: figures exist after a validation epoch.")
        last, epochs = self.history[-1], [r["epoch"] for r in self.history]
        # Records from before the scores had standard errors (resumed runs) read as NaN: no band drawn there.
        columns = [[r.get(key, math.nan) for r in self.history] for key in ("srs", "srs_signed", *_CURVE_KEYWORDS)]
        edges = torch.tensor(last["band_frequencies"])
        return {
            "frequency_response": plot_frequency_response(
                torch.tensor(last["phi"]), torch.tensor(last["stderr"]), edges, title=f"Frequency response, epoch {epochs[-1]}"
            ),
            "band_epoch_heatmap": plot_band_epoch_heatmap(torch.tensor([r["phi"] for r in self.history]), epochs, edges),
            "scores": plot_srs_curve(epochs, *columns[:2], **dict(zip(_CURVE_KEYWORDS, columns[2:]))),
        }
