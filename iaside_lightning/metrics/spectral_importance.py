"""``SpectralImportance``: a torchmetrics Metric that accumulates I-ASIDE statistics over batches and processes."""

from collections.abc import Callable, Sequence
from typing import Any, Optional

import torch
from torch import Tensor
from torchmetrics import Metric

from iaside_lightning.functional.bands import BandEdges, BandShape
from iaside_lightning.functional.bands import band_edges as make_band_edges
from iaside_lightning.functional.coalitions import FILLS, Fill
from iaside_lightning.functional.engine import AUTOCAST_DTYPES, Autocast, spectral_shapley_statistics
from iaside_lightning.functional.estimators import Estimator, resolve_estimator
from iaside_lightning.functional.result import SpectralShapleyResult, compute_result
from iaside_lightning.functional.shapley import ShapleyStatistics
from iaside_lightning.functional.values import VALUES, Value

__all__ = ["SpectralImportance"]


class SpectralImportance(Metric):
    """Spectral importance (I-ASIDE Shapley values over frequency bands) of a classifier, accumulated over batches.

    ``update(model, images, labels)`` evaluates the band coalitions of every image (all ``2^M`` of them, or a sampled
    subset within ``max_coalitions`` for large ``M``) and adds the per-sample Shapley values to fixed-shape sum states; ``compute()`` returns a
    :class:`~iaside_lightning.functional.result.SpectralShapleyResult`. All states are sums reduced with ``"sum"``,
    so the result after synchronisation is exactly the single-process result however the samples were split across
    processes (including a process that saw none) for ``fill="zero"`` with exact enumeration; the ``"permute"`` and
    ``"noise"`` fills and the samplers depend on the batch and its seed, so they agree for the same batches and seeds.

    Args:
        num_bands: number of frequency bands ``M``.
        band_shape: ``"square"`` or ``"circle"``.
        band_edges: ``"linear"``, ``"log"`` or ``M + 1`` normalised radii from 0 to 1.
        fill: what replaces absent bands: ``"zero"``, ``"permute"`` or ``"noise"``.
        value: coalition worth: ``"log_prob"``, ``"prob"`` or ``"correct"``.
        normalization: per-channel ``(mean, std)`` of the inputs, so bands are cut in pixel space.
        output_transform: maps the model output to ``[N, K]`` logits.
        beta: decay of the band weights of the spectral robustness score.
        chunk_size: coalitions per forward pass (default: automatic).
        max_coalitions: coalitions evaluated per image at most: ``"exact"`` refuses ``2^M`` above it, ``"auto"``
            samples above it.
        estimator: ``"auto"`` (exact when ``2^M <= max_coalitions``, else KernelSHAP), ``"exact"``,
            ``"kernel"`` or ``"permutation"``; see docs/estimators.md.
        seed: base seed of the ``"permute"``/``"noise"`` fills and the samplers; batch ``i`` of process ``r`` uses
            ``seed + i + 1_000_003 * r``, so that sampling errors of batches are independent.
        autocast: run the forward passes under ``torch.autocast`` to ``"bfloat16"`` or ``"float16"`` (GPU).
        kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute``).

    Example:
        >>> import torch
        >>> from iaside_lightning import SpectralImportance
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 5))
        >>> metric = SpectralImportance(num_bands=4)
        >>> for _ in range(2):  # e.g. over validation batches
        ...     metric.update(model, torch.rand(8, 3, 16, 16), torch.randint(0, 5, (8,)))
        >>> result = metric.compute()
        >>> result.phi.shape, result.num_samples
        (torch.Size([4]), 16)
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better: Optional[bool] = None

    phi_sum: Tensor
    phi_sq_sum: Tensor
    value_sum: Tensor
    count: Tensor
    estimator_var_sum: Tensor

    def __init__(
        self,
        num_bands: int = 8,
        band_shape: BandShape = "square",
        band_edges: BandEdges = "linear",
        fill: Fill = "zero",
        value: Value = "log_prob",
        normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
        output_transform: Optional[Callable[[Any], Tensor]] = None,
        beta: float = 0.75,
        chunk_size: Optional[int] = None,
        max_coalitions: int = 4096,
        estimator: Estimator = "auto",
        autocast: Optional[Autocast] = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if band_shape not in ("square", "circle"):
            raise ValueError(f"`band_shape` must be 'square' or 'circle', got {band_shape!r}.")
        self._edges = make_band_edges(num_bands, band_edges)
        if fill not in FILLS:
            raise ValueError(f"`fill` must be one of {FILLS}, got {fill!r}.")
        if value not in VALUES:
            raise ValueError(f"`value` must be one of {VALUES}, got {value!r}.")
        if not 0.0 < beta < 1.0:
            raise ValueError(f"`beta` must lie in (0, 1), got {beta!r}.")
        self.estimator = resolve_estimator(estimator, num_bands, max_coalitions)
        if self.estimator == "exact" and 2**num_bands > max_coalitions:
            raise ValueError(
                f"Exact enumeration of num_bands={num_bands} needs 2^{num_bands} = {2**num_bands} coalitions per image, "
                f"above max_coalitions={max_coalitions}. Raise `max_coalitions`, or use estimator='auto'/'kernel'."
            )
        if autocast is not None and autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"`autocast` must be None or one of {AUTOCAST_DTYPES}, got {autocast!r}.")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"`chunk_size` must be a positive number of coalitions or None, got {chunk_size!r}.")
        self.num_bands = num_bands
        self.beta = beta
        self.engine_kwargs: dict[str, Any] = {
            "num_bands": num_bands,
            "band_shape": band_shape,
            "band_edges": band_edges,
            "fill": fill,
            "value": value,
            "normalization": normalization,
            "output_transform": output_transform,
            "chunk_size": chunk_size,
            "max_coalitions": max_coalitions,
            "estimator": self.estimator,
            "autocast": autocast,
        }
        self.seed = seed
        self._batches = 0
        zeros = torch.zeros
        self.add_state("phi_sum", default=zeros(num_bands, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("phi_sq_sum", default=zeros(num_bands, dtype=torch.float64), dist_reduce_fx="sum")
        num_values = 2**num_bands if self.estimator == "exact" else 2  # sampled: v(empty) and v(full) only
        self.add_state("value_sum", default=zeros(num_values, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("estimator_var_sum", default=zeros(num_bands, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, model: Callable[[Tensor], Any], images: Tensor, labels: Tensor, logits: Optional[Tensor] = None) -> None:
        """Evaluate every band coalition of ``images`` with ``model`` and add the per-sample statistics.

        Args:
            model: the classifier (run in eval mode; every module's mode is restored).
            images: ``[B, C, H, W]`` float images as the model expects them.
            labels: ``[B]`` integer class labels.
            logits: the model's logits on ``images`` if already computed (reused for the full coalition).
        """
        rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
        seed = self.seed + self._batches + 1_000_003 * rank
        self._batches += 1
        stats = spectral_shapley_statistics(model, images, labels, logits=logits, seed=seed, **self.engine_kwargs)
        stats = stats._replace(estimator_var_sum=stats.estimator_var_sum if stats.estimator_var_sum is not None else 0.0)
        # Out of place: validation may run under torch.inference_mode.
        for name, value in zip(ShapleyStatistics._fields, stats):
            setattr(self, name, getattr(self, name) + torch.as_tensor(value, dtype=torch.float64).to(self.count.device))

    def reset(self) -> None:
        """Reset the states and the batch counter that derives per-batch seeds."""
        super().reset()
        self._batches = 0

    def compute(self) -> SpectralShapleyResult:
        """The spectral Shapley result of all samples seen (across processes after synchronisation).

        Raises:
            ValueError: if no sample was seen.
        """
        stats = ShapleyStatistics(*(getattr(self, name) for name in ShapleyStatistics._fields))
        return compute_result(stats, self._edges, self.beta)

    def plot(self, val: Optional[SpectralShapleyResult] = None, ax: Optional[Any] = None) -> tuple[Any, Any]:
        """Plot the frequency response (phi per band with 95% error bars) like torchmetrics' ``plot``.

        Args:
            val: a result from :meth:`compute`; computed when omitted.
            ax: a matplotlib axis to draw on; a new figure when omitted.

        Returns:
            ``(fig, ax)``.
        """
        from iaside_lightning.plotting import plot_frequency_response

        result = val if val is not None else self.compute()
        return plot_frequency_response(result.phi, result.stderr, result.band_edges, ax=ax)

