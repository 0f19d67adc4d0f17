"""The worth of a coalition for one sample: a function of the model's logits and the true label."""

from typing import Literal

import torch
from torch import Tensor

__all__ = ["VALUES", "Value", "sample_values"]

Value = Literal["log_prob", "prob", "correct"]
VALUES = ("log_prob", "prob", "correct")


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
