"""The worth of a coalition for one sample: a function of the model's logits and the true label."""

from typing import Literal

import torch
from torch import Tensor

__all__ = ["Value", "check_logits", "sample_values"]

Value = Literal["log_prob", "prob", "correct"]
VALUES = ("log_prob", "prob", "correct")


def check_logits(logits: object, batch_size: int, what: str = "model output") -> Tensor:
    """Raise a clear error unless ``logits`` is a finite ``[batch_size, num_classes >= 2]`` floating tensor."""
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"The {what} must be a logits tensor [batch, classes], got {type(logits).__name__}. Pass "
            "`output_transform` (e.g. `lambda out: out['logits']`) to pick the logits from a dict or tuple."
        )
    if logits.ndim != 2 or logits.shape[0] != batch_size or logits.shape[1] < 2:
        raise ValueError(
            f"The {what} must be logits of shape [batch={batch_size}, classes>=2], got {tuple(logits.shape)}. Pass "
            "`output_transform` to turn the output into such logits (a binary classifier needs 2 logits)."
        )
    if not logits.is_floating_point():
        raise TypeError(f"The {what} must be floating-point logits, got dtype {logits.dtype}.")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(
            f"The {what} contains NaN or infinite logits; every score computed from them would be meaningless. "
            "Check the model (e.g. its numerical stability on the images it was given: band-filtered, blank or "
            "attacked ones) and its input dtype."
        )
    return logits


def sample_values(logits: Tensor, labels: Tensor, value: Value = "log_prob") -> Tensor:
    """Per-sample worth in float64: ``log p(y | x)`` (via ``log_softmax``), ``p(y | x)`` or ``1[argmax = y]``.

    Args:
        logits: ``[N, K]`` logits.
        labels: ``[N]`` integer labels in ``[0, K)``.
        value: ``"log_prob"``, ``"prob"`` or ``"correct"``.

    Example:
        >>> sample_values(torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 1]), "correct")
        tensor([1., 0.], dtype=torch.float64)
    """
    if value == "correct":
        return (logits.argmax(dim=1) == labels).to(torch.float64)
    log_prob = torch.log_softmax(logits.to(torch.float64), dim=1).gather(1, labels[:, None]).squeeze(1)
    if value == "log_prob":
        return log_prob
    if value == "prob":
        return log_prob.exp()
    raise ValueError(f"`value` must be one of {VALUES}, got {value!r}.")
