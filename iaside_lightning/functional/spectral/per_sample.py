"""Per-sample outputs of :func:`~iaside_lightning.functional.spectral.engine.spectral_shapley` (``per_sample=True``).

The engine already evaluates every analysed image on every coalition it needs; :class:`PerSampleRecorder` keeps those
per-sample values, the coalitions they belong to and each sample's Shapley values, and attaches them to the result.
With the exact estimator the coalitions are all ``2^M`` rows of
:func:`~iaside_lightning.functional.spectral.coalitions.coalition_matrix`; with a sampled estimator they are the
distinct coalitions the estimator asked for, in the order it first asked for them.
"""

import dataclasses
from typing import Optional

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.coalitions import coalition_matrix
from iaside_lightning.functional.spectral.estimators import ShapleyEstimate, ValueOracle
from iaside_lightning.functional.spectral.result import SpectralShapleyResult
from iaside_lightning.functional.spectral.shapley import per_sample_shapley

__all__ = ["PerSampleRecorder"]


class PerSampleRecorder:
    """Collects per-sample Shapley values, coalition values and coalitions while the engine runs.

    Example:
        >>> recorder = PerSampleRecorder()
        >>> recorder.record_exact(torch.tensor([[0.0, 1.0, 2.0, 3.0]]))
        >>> recorder.phi, recorder.coalitions.tolist()
        (tensor([[1., 2.]], dtype=torch.float64), [[0, 0], [1, 0], [0, 1], [1, 1]])
    """

    def __init__(self) -> None:
        self.phi: Optional[Tensor] = None
        self.values: Optional[Tensor] = None
        self.coalitions: Optional[Tensor] = None
        self._calls: list[tuple[Tensor, Tensor]] = []

    def record_exact(self, values: Tensor) -> None:
        """Keep the ``[B, 2^M]`` values of exact enumeration and the Shapley values they give."""
        self.phi = per_sample_shapley(values)
        self.values = values.to(torch.float64)
        self.coalitions = coalition_matrix(self.phi.shape[1], dtype=torch.int64)

    def watch(self, oracle: ValueOracle) -> ValueOracle:
        """The oracle, recording every call's coalitions and values (for sampled estimators)."""

        def recorded(coalitions: Tensor) -> Tensor:
            values = oracle(coalitions)
            self._calls.append((coalitions.detach().to("cpu", torch.int64), values.detach().to(torch.float64)))
            return values

        return recorded

    def record_estimate(self, estimate: ShapleyEstimate) -> None:
        """Keep a sampled estimator's per-sample estimates and the distinct coalitions its oracle evaluated."""
        self.phi = estimate.phi.to(torch.float64)
        coalitions = torch.cat([c for c, _ in self._calls])
        values = torch.cat([v.to(self.phi.device) for _, v in self._calls], dim=1)
        codes = (coalitions << torch.arange(coalitions.shape[1])).sum(1)
        _, inverse = torch.unique(codes, return_inverse=True)
        first = torch.full((int(inverse.max()) + 1,), len(codes), dtype=torch.int64)
        first = first.scatter_reduce(0, inverse, torch.arange(len(codes)), reduce="amin").sort().values
        self.coalitions, self.values = coalitions[first], values[:, first.to(values.device)]

    def attach(self, result: SpectralShapleyResult) -> SpectralShapleyResult:
        """``result`` with ``phi_per_sample``, ``values_per_sample`` and ``coalitions`` set (on the CPU)."""
        if self.phi is None or self.values is None:
            raise RuntimeError("PerSampleRecorder.attach needs a recorded batch: call the engine with it first.")
        return dataclasses.replace(
            result,
            phi_per_sample=self.phi.detach().to("cpu", torch.float64),
            values_per_sample=self.values.detach().to("cpu", torch.float64),
            coalitions=self.coalitions,
        )
