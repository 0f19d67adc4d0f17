"""``BoundaryMonitor``: decision-boundary geometry and boundary attributions (BIG) on a fixed probe set, per epoch."""

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from typing_extensions import override

from iaside_lightning import loggers
from iaside_lightning.callbacks.batch import BatchUnpacker, MaskKey
from iaside_lightning.callbacks.forward import ForwardFn, check_forward_fn, model_view
from iaside_lightning.callbacks.epoch_monitor import EpochMonitor
from iaside_lightning.functional.attacks import Norm
from iaside_lightning.functional.boundary.geometry import BoundaryGeometryResult, run_boundary_geometry
from iaside_lightning.functional.boundary.options import Preset, document_options
from iaside_lightning.functional.checks import check_positive_int
from iaside_lightning.metrics.attribution_localization import AttributionLocalization
from iaside_lightning.metrics.boundary_geometry import BoundaryGeometry

__all__ = ["BoundaryMonitor"]

ATTRIBUTIONS = ("gradient", "integrated_gradients", "big")
GEOMETRY_KEYS = ("distance", "attack_success_rate", "accuracy", "cos_gradient_boundary", "cos_ig_big", "abs_completeness_error")


@document_options("preset", "epsilons", "norm", "steps", "bisection_steps", "ig_steps", "bounds", "seed")
class BoundaryMonitor(EpochMonitor):
    """Track how far the decision boundary is and how well gradients point at it, on a fixed probe set.

    The first ``num_probes`` validation images (over all processes; the first validation epoch after the sanity
    check) are cached once, so every epoch is measured on the same images. On validation epochs whose
    ``(epoch + 1)`` is a multiple of ``every_n_epochs`` it runs
    :func:`~iaside_lightning.functional.boundary.geometry.boundary_geometry` on them and logs through the
    LightningModule (synchronised across processes by sum-state metrics) ``distance``, ``attack_success_rate``,
    ``accuracy``, ``cos_gradient_boundary``, ``cos_ig_big``, ``abs_completeness_error`` and the distance's standard
    error under ``log_prefix``. When batches carry ground-truth masks (``mask_key``, e.g. BlockMNIST), it also logs
    ``localization/<method>/{mass_inside,pointing_game,top_k_outside}`` for the input gradient, IG and BIG. On rank
    zero it logs an image grid (input, gradient, IG, BIG; masks outlined) and the per-epoch history table.

    Never changes training: eval mode with every module's mode restored, only input gradients (parameters'
    ``.grad`` untouched, BatchNorm statistics unchanged), seeded attacks (global RNG streams forked), batches not
    modified. The sanity check is skipped.

    Args:
        num_probes: images in the probe set (over all processes).
        every_n_epochs: measure on validation epochs whose ``(epoch + 1)`` is a multiple of this.
        {options}
        top_k: fraction of pixels used by the ``top_k_outside`` localization score.
        dataloader_idx: which validation dataloader to take probes from.
        batch_keys: ``(image_key, label_key)`` for dict batches.
        batch_transform: callable mapping a batch to ``(images, labels)`` or ``(images, labels, masks)``.
        mask_key: where tuple (index) or dict (key) batches keep the ground-truth masks, e.g. ``2`` for
            ``(image, label, mask)`` batches.
        output_transform: maps the model output to ``[N, K]`` logits.
        forward_fn: how to call the LightningModule on images when its ``forward`` needs more than them, as
            ``forward_fn(pl_module, images) -> output``, e.g. ``lambda module, x: module(x, task="digits")``;
            ``None``: ``pl_module(images)``.
        log_prefix: prefix of logged keys and figure tags.
        log_images: log the attribution image grid.
        num_images: probe images shown in the grid.

    Raises:
        ValueError: for an invalid option, at construction (the search and attribution options are validated once,
            by the monitor's :class:`~iaside_lightning.metrics.BoundaryGeometry` into its ``options``, with the
            messages of :func:`~iaside_lightning.functional.boundary.geometry.boundary_geometry`), or a
            ``num_probes``, ``num_images`` or ``every_n_epochs`` below 1.
        TypeError: for a wrongly typed option, e.g. a non-``int`` ``num_probes`` (at construction), or an unreadable
            batch (at the first validation batch).

    Example:
        >>> from lightning.pytorch import Trainer
        >>> monitor = BoundaryMonitor(num_probes=16, preset="fast", mask_key=2)
        >>> trainer = Trainer(callbacks=[monitor], logger=False, enable_progress_bar=False)
    """

    def __init__(
        self,
        num_probes: int = 16,
        every_n_epochs: int = 1,
        preset: Preset = "fast",
        epsilons: Optional[Sequence[float]] = None,
        norm: Optional[Norm] = None,
        steps: Optional[int] = None,
        bisection_steps: Optional[int] = None,
        ig_steps: Optional[int] = None,
        bounds: Optional[tuple[Any, Any]] = None,
        top_k: float = 0.1,
        dataloader_idx: int = 0,
        batch_keys: Optional[Sequence[str]] = None,
        batch_transform: Optional[Callable[[Any], tuple[Tensor, ...]]] = None,
        mask_key: Optional[MaskKey] = None,
        output_transform: Optional[Callable[[Any], Tensor]] = None,
        forward_fn: Optional[ForwardFn] = None,
        log_prefix: str = "boundary/",
        log_images: bool = True,
        num_images: int = 6,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, dataloader_idx, log_prefix)
        check_positive_int(num_probes, "num_probes")
        check_positive_int(num_images, "num_images")
        self.geometry = BoundaryGeometry(
            preset, epsilons=epsilons, norm=norm, steps=steps, bisection_steps=bisection_steps, ig_steps=ig_steps,
            bounds=bounds, output_transform=output_transform, seed=seed,
        )
        self.options = self.geometry.options  # validated once, by the metric
        self.num_probes, self.num_images = num_probes, num_images
        self.forward_fn = check_forward_fn(forward_fn)
        self.output_transform = output_transform
        self.localization = {name: AttributionLocalization(top_k=top_k) for name in ATTRIBUTIONS}
        self.unpack = BatchUnpacker(batch_transform, batch_keys, mask_key)
        self.log_images = log_images
        self.probes: Optional[tuple[Tensor, Tensor, Optional[Tensor]]] = None
        self._collecting: list[tuple[Tensor, Tensor, Optional[Tensor]]] = []
        self._budget = 0

    @override
    def on_validation_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.probes is None and not trainer.sanity_checking:
            self._budget = self._per_process(trainer, self.num_probes)

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
        if self._budget <= 0 or dataloader_idx != self.dataloader_idx or trainer.sanity_checking:
            return
        images, labels, masks = self.unpack.with_masks(batch)
        take = int(min(self._budget, images.shape[0]))
        self._budget -= take
        with torch.inference_mode(False):  # plain tensors: the probes later enter autograd
            self._collecting.append(
                (images[:take].detach().cpu().clone(), labels[:take].detach().cpu().clone(),
                 None if masks is None else masks[:take].detach().cpu().clone())
            )

    @override
    def on_validation_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.sanity_checking:
            return
        if self.probes is None and self._collecting:
            parts = list(zip(*self._collecting))
            with torch.inference_mode(False):  # plain tensors: the probes later enter autograd
                self.probes = (torch.cat(parts[0]), torch.cat(parts[1]), None if parts[2][0] is None else torch.cat(parts[2]))
            self._collecting, self._budget = [], 0
        if not self._due(trainer):
            return
        if self.probes is None and trainer.world_size == 1:
            rank_zero_warn(f"BoundaryMonitor found no probe image in validation dataloader {self.dataloader_idx}.")
            return
        self._mark_ran()
        result = self._measure(pl_module)
        scalars = self._compute()  # collectives: every rank calls them
        for name, value in scalars.items():
            pl_module.log(self.log_prefix + name, value, on_step=False, on_epoch=True, sync_dist=False)
        self._record({"epoch": trainer.current_epoch, "step": loggers.logging_step(trainer)} | scalars)
        if trainer.is_global_zero:
            self._log_artifacts(trainer, result)

    def _measure(self, pl_module: "pl.LightningModule") -> Optional[BoundaryGeometryResult]:
        self.geometry.reset()
        self.geometry.to(pl_module.device)
        for metric in self.localization.values():
            metric.reset()
            metric.to(pl_module.device)
        if self.probes is None:  # a process without probes still joins the collectives
            return None
        with torch.inference_mode(False):
            images, labels, masks = tuple(None if t is None else t.to(pl_module.device) for t in self.probes)
        with self._forked_rng(pl_module):
            model = model_view(pl_module, self.forward_fn)
            result = run_boundary_geometry(model, images, labels, self.options, output_transform=self.output_transform)
        self.geometry.update_from_result(result)  # one search feeds the geometry, the localization and the grid
        if masks is not None:
            for name in ATTRIBUTIONS:
                self.localization[name].update(getattr(result, name), masks)
        return result

    def _compute(self) -> dict[str, float]:
        geometry = self.geometry.compute()
        scalars = {key: float(geometry[key]) for key in GEOMETRY_KEYS}
        scalars["distance_stderr"] = float(geometry["distance_stderr"])
        if not self.unpack.reads_masks:
            return scalars  # no process can have masks
        for name, metric in self.localization.items():
            # Every process calls the collective compute (a process without masks or probes contributes zeros);
            # whether to log is decided on the synchronised count, the same everywhere.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*compute.*before.*update.*")
                values = metric.compute()
            if float(values["mass_inside_count"]) > 0:
                for key, value in values.items():
                    if not key.endswith(("_stderr", "_count")):
                        scalars[f"localization/{name}/{key}"] = float(value)
        return scalars

    def _log_artifacts(self, trainer: "pl.Trainer", result: Optional[BoundaryGeometryResult]) -> None:
        from iaside_lightning.plotting import plot_attribution_grid

        loggers.log_history(trainer, self._table_name, self.history)
        if not self.log_images or result is None or self.probes is None:
            return
        images, labels, masks = self.probes
        n = min(self.num_images, len(images))
        maps: Mapping[str, Tensor] = {"gradient": result.gradient[:n], "IG (zero baseline)": result.integrated_gradients[:n], "BIG": result.big[:n]}
        fig, _ = plot_attribution_grid(
            images[:n], {k: v.cpu() for k, v in maps.items()}, None if masks is None else masks[:n], labels[:n].tolist(),
            title=f"Attributions, epoch {trainer.current_epoch}",
        )
        loggers.log_figure(trainer, self.log_prefix + "attributions", fig, trainer.current_epoch)
