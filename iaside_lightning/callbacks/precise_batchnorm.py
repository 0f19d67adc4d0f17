"""``PreciseBatchNorm``: recompute BatchNorm statistics on the training data before every validation epoch."""

from collections.abc import Callable, Iterable
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn
from typing_extensions import override

from iaside_lightning.callbacks.batch import BatchUnpacker
from iaside_lightning.functional.checks import check_positive_int

__all__ = ["PreciseBatchNorm", "recompute_batchnorm"]


class PreciseBatchNorm(Callback):
    """Replace every BatchNorm layer's running mean and variance by their average over (part of) the training data
    just before each validation epoch ("precise BN", Wu & Johnson 2021).

    BatchNorm's exponential running averages lag behind weights that change fast (large learning rates, noisy
    labels, few steps per epoch), so eval-mode predictions, and everything measured on them (validation accuracy,
    spectral importance), can swing wildly from epoch to epoch. Training-mode outputs, gradients and the optimiser
    are unaffected: only the BatchNorm buffers change. Statistics are computed per process, like BatchNorm's own.

    The pass runs under ``torch.no_grad`` with only the BatchNorm layers in training mode (dropout stays off), the
    global RNG streams forked, and every module's mode and ``momentum`` restored.

    Args:
        num_batches: training batches averaged over (``None``: one full pass over the training dataloader).
        batch_transform: callable mapping a training batch to ``(images, labels)``; default: ``(x, y, ...)`` tuples.

    Raises:
        TypeError: if ``num_batches`` is neither an integer nor ``None``.
        ValueError: if ``num_batches`` is below 1.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> trainer = Trainer(callbacks=[PreciseBatchNorm(num_batches=20)], logger=False, enable_progress_bar=False)
    """

    def __init__(
        self,
        num_batches: Optional[int] = None,
        batch_transform: Optional[Callable[[Any], tuple[Tensor, Tensor]]] = None,
    ) -> None:
        if num_batches is not None:
            check_positive_int(num_batches, "num_batches", none="a full pass")
        self.num_batches = num_batches
        self.unpack = BatchUnpacker(batch_transform)

    @override
    def on_validation_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.sanity_checking:
            return
        loader = trainer.train_dataloader
        if loader is None:
            rank_zero_warn("PreciseBatchNorm found no training dataloader; BatchNorm statistics are left as they are.")
            return
        recompute_batchnorm(pl_module, (self.unpack(batch)[0] for batch in loader), self.num_batches)


def recompute_batchnorm(module: nn.Module, images: Iterable[Tensor], num_batches: Optional[int] = None) -> None:
    """Reset the running statistics of every BatchNorm layer of ``module`` to their average over ``images``.

    Each batch contributes its mean and its unbiased variance with equal weight (BatchNorm's ``momentum=None``
    cumulative average).

    Args:
        module: the model.
        images: an iterable of image batches (moved to the device of ``module``'s first parameter).
        num_batches: batches used at most (``None``: all).

    Example:
        >>> bn = nn.BatchNorm1d(1)
        >>> recompute_batchnorm(bn, [torch.tensor([[1.0], [3.0]]), torch.tensor([[5.0], [7.0]])])
        >>> bn.running_mean.tolist(), bn.running_var.tolist(), bn.training
        ([4.0], [2.0], True)
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return
    modes = [(m, m.training) for m in module.modules()]
    momenta = [m.momentum for m in norms]
    device = next(module.parameters()).device
    module.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            for i, batch in enumerate(images):
                if num_batches is not None and i >= num_batches:
                    break
                module(batch.to(device))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        for m, training in modes:
            m.training = training
