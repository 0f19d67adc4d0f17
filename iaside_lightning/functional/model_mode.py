"""Run a model in eval mode for an analysis, and put every module's own mode back afterwards."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["evaluation_mode"]


@contextmanager
def evaluation_mode(model: Callable[[Tensor], Any], *, gradients: bool = False) -> Iterator[None]:
    """Eval mode for the duration, under ``torch.inference_mode`` or, with ``gradients=True``, with autograd on.

    Each module's ``training`` flag is restored individually on exit, so a submodule the user froze in eval mode
    stays in eval mode. ``gradients=True`` also works inside ``torch.no_grad`` and ``torch.inference_mode`` blocks (as
    in Lightning's validation loop); only tensors created inside the block may then enter autograd.

    Args:
        model: the model; anything that is not an ``nn.Module`` is left alone.
        gradients: enable autograd (for input gradients) instead of entering inference mode.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout())
        >>> with evaluation_mode(net, gradients=True):
        ...     net.training, torch.is_grad_enabled()
        (False, True)
        >>> net.training
        True
    """
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        if gradients:
            with torch.inference_mode(False), torch.enable_grad():
                yield
        else:
            with torch.inference_mode():
                yield
    finally:
        for m, mode in zip(modules, modes):
            m.training = mode
