"""Running a LightningModule whose ``forward`` needs more than the images: the monitors' ``forward_fn``."""

from collections.abc import Callable
from typing import Any, Optional

from torch import Tensor, nn

__all__ = ["ForwardFn", "check_forward_fn", "model_view"]

#: ``forward_fn(pl_module, images) -> output``, e.g. ``lambda module, x: module(x, mode="classify")``.
ForwardFn = Callable[[nn.Module, Tensor], Any]


class _ForwardWith(nn.Module):
    """``module`` called through ``forward_fn``; its parameters, buffers and modes stay the module's own."""

    def __init__(self, module: nn.Module, forward_fn: ForwardFn) -> None:
        super().__init__()
        self.module = module
        self.forward_fn = forward_fn

    def forward(self, images: Tensor) -> Any:
        return self.forward_fn(self.module, images)

    @property
    def __wrapped__(self) -> nn.Module:
        """The module itself: the engine keeps its tuned forward plans per module, not per (per-batch) view."""
        return self.module


def model_view(module: nn.Module, forward_fn: Optional[ForwardFn]) -> nn.Module:
    """The model the monitors analyse: ``module`` itself, or ``module`` called through ``forward_fn``.

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(4, 2)
        >>> view = model_view(net, lambda module, x: module(2 * x))
        >>> bool(torch.equal(view(torch.ones(1, 4)), net(2 * torch.ones(1, 4))))
        True
    """
    return module if forward_fn is None else _ForwardWith(module, forward_fn)


def check_forward_fn(forward_fn: object) -> Optional[ForwardFn]:
    """``forward_fn`` if it is ``None`` or callable, else a clear error at construction."""
    if forward_fn is not None and not callable(forward_fn):
        raise ValueError(
            f"`forward_fn` must be None or a callable (module, images) -> output, e.g. "
            f"`lambda module, x: module(x, extra=1)`, got {forward_fn!r}."
        )
    return forward_fn
