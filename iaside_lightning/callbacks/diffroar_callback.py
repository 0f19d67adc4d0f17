"""``DiffROARCallback``: DiffROAR of the trained model's input gradients at the end of fit, and a per-epoch proxy."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from typing_extensions import override

from iaside_lightning import loggers
from iaside_lightning.callbacks.batch import BatchUnpacker
from iaside_lightning.callbacks.deprecated_arguments import renamed_argument
from iaside_lightning.callbacks.epoch_monitor import EpochMonitor
from iaside_lightning.evaluation.retrained_diffroar import diffroar_with_options
from iaside_lightning.evaluation.retraining import check_model_factory
from iaside_lightning.functional.checks import check_positive_int
from iaside_lightning.functional.sanity.attributions import (
    AttributionMethod,
    check_attribution_method,
    compute_attributions,
)
from iaside_lightning.functional.sanity.diffroar_proxy import diffroar_proxy_with_options
from iaside_lightning.functional.sanity.diffroar_result import DiffROARResult
from iaside_lightning.functional.sanity.options import (
    DEFAULT_LEVELS,
    DIFFROAR_OPTION_DOCS,
    DiffROAROptions,
    check_levels,
    document_options,
)
from iaside_lightning.functional.sanity.unmasking import MaskFill, Per

__all__ = ["DiffROARCallback"]

#: Defaults of the arguments that have deprecated aliases (an alias may not be passed together with a changed value).
_MAX_SAMPLES, _LOG_PREFIX = 256, "diffroar/"


@document_options(*DIFFROAR_OPTION_DOCS)
class DiffROARCallback(EpochMonitor):
    """Run DiffROAR on the trained model when fit ends and, optionally, track a cheap proxy every few epochs.

    **At fit end** (when ``model_factory`` is given), the attributions of the trained model (input gradients by
    default) on the training and validation images rank their coordinates, and
    :func:`~iaside_lightning.evaluation.diffroar` retrains ``2 * len(levels) * repeats`` fresh models from
    ``model_factory`` on the top-k and bottom-k unmasked data (this can take long: ``progress`` prints a line per
    fit). There is no default factory: rebuilding a module from its hyper-parameters, or deep-copying it and
    resetting its parameters, silently keeps trained weights in layers without ``reset_parameters``; pass e.g.
    ``model_factory=lambda: SmallCNNClassifier(in_channels=1, num_classes=2)``. The table (``k, top, bottom, diff,
    std``) goes to every logger as ``<log_prefix>retrained`` with ``/`` as ``_`` (``diffroar_retrained.csv``) via
    :func:`~iaside_lightning.loggers.log_history` and the figure via :func:`~iaside_lightning.loggers.log_figure`
    under tag ``<log_prefix>retrained``; the result is kept in :attr:`result`. The images are ``train``/``test`` when
    given, else read from the trainer's training and validation dataloader ``dataloader_idx``. The retraining runs
    on global rank zero only: use it after single-process fits (or call ``diffroar`` yourself).

    **Proxy** (``every_n_epochs``): on validation epochs whose ``(epoch + 1)`` is a multiple of it, the attributions
    of the current model on the first ``max_samples`` validation images of the epoch (over all processes; validation
    dataloader ``dataloader_idx``) rank their coordinates and :func:`~iaside_lightning.evaluation.diffroar_proxy`
    evaluates the model itself on the top-k and bottom-k unmasked images (NO retraining: a trend, not DiffROAR). It
    logs ``<log_prefix>proxy/diff_k<k>`` through the LightningModule and the history table (one row per epoch,
    ``diffroar_history.csv`` by default). The proxy never changes training: eval mode with every module's mode
    restored, parameters' gradients and BatchNorm statistics untouched, the global RNG streams forked. Each process
    computes it on its share of the images (not synchronised).

    The DiffROAR options are checked once, at construction, into :attr:`options` (a
    :class:`~iaside_lightning.functional.sanity.options.DiffROAROptions`) and :attr:`proxy_options` (the same with
    ``proxy_levels``).

    Args:
        model_factory: returns a fresh, untrained LightningModule of the architecture under test that logs
            ``metric`` in validation; ``None`` skips the retraining at fit end (proxy only).
        attribution: ``"gradient"``, ``"random"`` (the baseline) or a callable ``(model, images, labels)``.
        {options}
        train: training ``(images, labels)`` for the retraining; default: the trainer's training dataloader.
        test: test ``(images, labels)``; default: the trainer's validation dataloader ``dataloader_idx``.
        max_train_samples: training images used at most (``None``: all).
        max_test_samples: test images used at most (``None``: all).
        every_n_epochs: run the proxy on validation epochs whose ``(epoch + 1)`` is a multiple of this; ``None``:
            never.
        proxy_levels: fractions unmasked ``k`` of the proxy.
        max_samples: validation images per proxy evaluation over all processes (``None``: all of them); the first
            ones of the epoch are used.
        batch_keys: ``(image_key, label_key)`` for dict batches.
        batch_transform: callable mapping a batch to ``(images, labels)``; overrides ``batch_keys``.
        output_transform: maps the model output to logits.
        log_prefix: prefix of every logged key, table and figure tag. Two callbacks in one Trainer need different
            prefixes (the prefix keys their state in checkpoints).
        dataloader_idx: the validation dataloader the proxy reads and, without ``test``, the test images come from.
        name: deprecated, use ``log_prefix`` (``name="diffroar"`` is ``log_prefix="diffroar/"``).
        proxy_every_n_epochs: deprecated, use ``every_n_epochs``.
        proxy_max_samples: deprecated, use ``max_samples`` (which counts the images of all processes).

    Raises:
        TypeError: if ``model_factory`` is not callable or an option has the wrong type.
        ValueError: if there is nothing to do (no ``model_factory`` and no proxy) or an option is invalid.

    Example:
        >>> from iaside_lightning.models import SmallCNNClassifier
        >>> callback = DiffROARCallback(lambda: SmallCNNClassifier(in_channels=1, num_classes=2), repeats=3,
        ...                             trainer_kwargs={"max_epochs": 5}, every_n_epochs=1)
        >>> callback.log_prefix, callback.max_samples
        ('diffroar/', 256)
    """

    _schedule_optional = True

    def __init__(
        self,
        model_factory: Optional[Callable[[], pl.LightningModule]] = None,
        *,
        attribution: AttributionMethod = "gradient",
        levels: Sequence[float] = DEFAULT_LEVELS,
        repeats: int = 2,
        per: Per = "coordinate",
        fill: MaskFill = "mean",
        metric: str = "val/acc",
        train: Optional[tuple[Tensor, Tensor]] = None,
        test: Optional[tuple[Tensor, Tensor]] = None,
        max_train_samples: Optional[int] = None,
        max_test_samples: Optional[int] = None,
        trainer_kwargs: Optional[Mapping[str, Any]] = None,
        batch_size: int = 128,
        seed: int = 0,
        progress: bool = True,
        every_n_epochs: Optional[int] = None,
        proxy_levels: Sequence[float] = (0.05, 0.1, 0.2),
        max_samples: Optional[int] = _MAX_SAMPLES,
        batch_keys: Optional[Sequence[str]] = None,
        batch_transform: Optional[Callable[[Any], tuple[Tensor, Tensor]]] = None,
        output_transform: Optional[Callable[[Any], Tensor]] = None,
        log_prefix: str = _LOG_PREFIX,
        dataloader_idx: int = 0,
        name: Optional[str] = None,
        proxy_every_n_epochs: Optional[int] = None,
        proxy_max_samples: Optional[int] = None,
    ) -> None:
        owner = type(self).__name__
        every_n_epochs = renamed_argument(owner, "proxy_every_n_epochs", proxy_every_n_epochs, "every_n_epochs",
                                          every_n_epochs, None)  # fmt: skip
        max_samples = renamed_argument(owner, "proxy_max_samples", proxy_max_samples, "max_samples", max_samples,
                                       _MAX_SAMPLES, "It counts the images of all processes, not of each.")  # fmt: skip
        as_prefix = None if name is None else f"{str(name).rstrip('/')}/"  # the old name "diffroar" is "diffroar/"
        log_prefix = renamed_argument(owner, "name", as_prefix, "log_prefix", log_prefix, _LOG_PREFIX,
                                      "Keys, tables and figure tags now start with `log_prefix`.")  # fmt: skip
        if model_factory is None and every_n_epochs is None:
            raise ValueError(
                f"{owner} has nothing to do: pass `model_factory` (retrained DiffROAR at fit end) and/or "
                "`every_n_epochs` (the per-epoch proxy)."
            )
        super().__init__(every_n_epochs, dataloader_idx, log_prefix)
        if model_factory is not None:
            check_model_factory(model_factory)
        check_attribution_method(attribution, "attribution")
        for value, argument in ((max_train_samples, "max_train_samples"), (max_test_samples, "max_test_samples"),
                                (max_samples, "max_samples")):  # fmt: skip
            if value is not None:
                check_positive_int(value, argument)
        self.model_factory = model_factory
        self.attribution = attribution
        self.options = DiffROAROptions(
            levels=levels, repeats=repeats, per=per, fill=fill, metric=metric, trainer_kwargs=trainer_kwargs,
            batch_size=batch_size, seed=seed, progress=progress,
        )  # fmt: skip
        self.proxy_options = replace(self.options, levels=check_levels(proxy_levels, "proxy_levels"))
        self.train, self.test = train, test
        self.max_train_samples, self.max_test_samples = max_train_samples, max_test_samples
        self.max_samples = max_samples
        self.unpack = BatchUnpacker(batch_transform, batch_keys)
        self.output_transform = output_transform
        self.result: Optional[DiffROARResult] = None
        self._proxy_batches: list[tuple[Tensor, Tensor]] = []
        self._budget = 0.0
        self._active = False

    @override
    def on_validation_epoch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._active = self._due(trainer)
        self._proxy_batches, self._budget = [], self._per_process(trainer, self.max_samples)

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
        take = int(min(self._budget, len(labels)))
        self._budget -= take
        self._proxy_batches.append((images[:take].detach().clone(), labels[:take].detach().clone()))

    @override
    def on_validation_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not self._active:
            return
        self._active = False
        if not self._proxy_batches:
            rank_zero_warn(f"{type(self).__name__} saw no validation image this epoch; the proxy is skipped.")
            return
        self._mark_ran()
        images = torch.cat([images for images, _ in self._proxy_batches])
        labels = torch.cat([labels for _, labels in self._proxy_batches])
        self._proxy_batches = []
        options = self.proxy_options
        with self._forked_rng(pl_module):
            attributions = compute_attributions(
                pl_module, images, labels, self.attribution, batch_size=options.batch_size, seed=options.seed,
                output_transform=self.output_transform,
            )  # fmt: skip
            result = diffroar_proxy_with_options(
                pl_module, images, labels, attributions, options, self.output_transform
            )
        row: dict[str, float] = {"epoch": trainer.current_epoch, "step": loggers.logging_step(trainer)}
        for k, diff in zip(options.levels, result.diff_mean.tolist()):
            pl_module.log(f"{self.log_prefix}proxy/diff_k{k:g}", diff, on_step=False, on_epoch=True, sync_dist=False)
            row[f"diff_k{k:g}"] = diff
        self._record(row)
        if trainer.is_global_zero:
            loggers.log_history(trainer, self._table_name, self.history)

    @override
    def on_fit_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_fit_end(trainer, pl_module)  # warns if the proxy was due but never ran
        if self.model_factory is None or not trainer.is_global_zero:
            return
        train = self.train or self._gather(pl_module, trainer.train_dataloader, self.max_train_samples, "training")
        test = self.test or self._gather(
            pl_module, _nth(trainer.val_dataloaders, self.dataloader_idx), self.max_test_samples, "validation"
        )
        options = self.options
        attributions = [
            compute_attributions(
                pl_module, images, labels, self.attribution, batch_size=options.batch_size, seed=options.seed + i,
                output_transform=self.output_transform,
            )  # fmt: skip
            for i, (images, labels) in enumerate((train, test))
        ]
        self.result = diffroar_with_options(self.model_factory, train, test, *attributions, options)
        loggers.log_history(trainer, self._table("retrained"), self.result.rows())
        fig, _ = self.result.plot()
        loggers.log_figure(trainer, self.log_prefix + "retrained", fig, step=trainer.current_epoch)

    def _gather(
        self, pl_module: "pl.LightningModule", loader: Optional[Iterable[Any]], max_samples: Optional[int], kind: str
    ) -> tuple[Tensor, Tensor]:
        """``(images, labels)`` on the CPU from ``loader`` (up to ``max_samples``), with the global RNG forked."""
        if loader is None:
            raise ValueError(
                f"{type(self).__name__} found no {kind} dataloader at fit end; pass `train` and `test` tensors instead."
            )
        images, labels, count = [], [], 0
        with self._forked_rng(pl_module):
            for batch in loader:
                x, y = self.unpack(batch)
                take = len(y) if max_samples is None else min(len(y), max_samples - count)
                images.append(x[:take].detach().cpu())
                labels.append(y[:take].detach().cpu())
                count += take
                if max_samples is not None and count >= max_samples:
                    break
        return torch.cat(images), torch.cat(labels)


def _nth(loaders: Any, index: int) -> Any:
    """Validation dataloader ``index`` of several, or the only one (index 0)."""
    if isinstance(loaders, (list, tuple)):
        if index >= len(loaders):
            raise ValueError(f"`dataloader_idx`={index}, but the Trainer has {len(loaders)} validation dataloaders.")
        return loaders[index]
    if index != 0 and loaders is not None:
        raise ValueError(f"`dataloader_idx`={index}, but the Trainer has a single validation dataloader.")
    return loaders
