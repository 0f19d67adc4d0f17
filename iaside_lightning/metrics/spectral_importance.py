"""``SpectralImportance``: a torchmetrics Metric that accumulates I-ASIDE statistics over batches and processes."""

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal, Optional, Union

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.bands import BandEdges, BandShape
from iaside_lightning.functional.spectral.coalitions import CoalitionFill
from iaside_lightning.functional.spectral.engine import spectral_shapley_statistics
from iaside_lightning.functional.spectral.estimators import Estimator
from iaside_lightning.functional.spectral.options import Autocast, SpectralOptions, document_options
from iaside_lightning.functional.spectral.result import NO_SAMPLE_MESSAGE, SpectralShapleyResult, compute_result
from iaside_lightning.functional.spectral.shapley import ShapleyStatistics
from iaside_lightning.functional.spectral.values import Value
from iaside_lightning.metrics.spectral_states import CheckedSpectralStates
from iaside_lightning.plotting import plot_frequency_response

__all__ = ["SpectralImportance"]

Output = Literal["result", "dict"]
OUTPUTS: tuple[str, ...] = ("result", "dict")


@document_options(
    "num_bands", "band_shape", "band_edges", "fill", "value", "normalization", "output_transform", "beta",
    "forward_batch_size", "chunk_size", "max_coalitions", "estimator", "seed", "autocast",
)
class SpectralImportance(CheckedSpectralStates):
    """Spectral importance (I-ASIDE Shapley values over frequency bands) of a classifier, accumulated over batches.

    ``update(model, images, labels)`` evaluates the band coalitions of every image (all ``2^M`` of them, or a sampled
    subset within ``max_coalitions`` for large ``M``) and adds the per-sample Shapley values to fixed-shape sum states; ``compute()`` returns a
    :class:`~iaside_lightning.functional.spectral.result.SpectralShapleyResult`. All states are sums reduced with ``"sum"``,
    so the result after synchronisation is exactly the single-process result however the samples were split across
    processes (including a process that saw none) for ``fill="zero"`` with exact enumeration; the ``"permute"`` and
    ``"noise"`` fills and the samplers depend on the batch and its seed, so they agree for the same batches and seeds.
    The sums include the outer products of the per-sample Shapley values, so the covariance of ``phi`` and the
    standard errors of every score are exact under any split too.

    With ``fill="permute"`` a batch of a single image (e.g. the last, partial batch) takes its absent bands from the
    images of the previous batch; a single image in the very first batch waits for the next batch and is evaluated
    with it. A process that only ever saw one image leaves it out, with a warning.

    Args:
        {options}
        output: what :meth:`compute` returns: ``"result"`` (a ``SpectralShapleyResult``) or ``"dict"`` (its flat
            ``as_dict()`` of tensors, for wrappers such as ``MetricTracker`` and ``MetricCollection`` that stack or
            flatten dicts of tensors).
        kwargs: passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute``).

    The images of one accumulation (until ``reset()``) must all have the same size: the bands depend on it.

    Raises:
        ValueError: at construction, if an option is invalid (validated by
            :class:`~iaside_lightning.functional.spectral.options.SpectralOptions`, with the functional API's
            messages): e.g. a malformed ``normalization``, a ``chunk_size`` below 1, or a ``max_coalitions`` budget
            below the minimum of the estimator that runs.
        TypeError: at construction, if ``seed``, ``chunk_size`` or ``forward_batch_size`` is not an integer.

    Metrics merge (:meth:`merge_state`) and load states (``load_state_dict``) only from metrics with the same
    settings; anything else raises an error naming the setting. With persistent states (``metric.persistent(True)``)
    the state dict also keeps the batch counter (key ``"batches_seen"``), so a metric resumed mid-accumulation draws
    the same per-batch seeds as one never interrupted; state dicts saved without it load with the counter at 0. The
    ``"permute"`` donors (the previous batch) are not saved: a resumed one-image batch waits like a first one.

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
    phi_outer_sum: Tensor
    value_sum: Tensor
    count: Tensor
    estimator_cov_sum: Tensor
    image_size: Tensor

    def __init__(
        self,
        num_bands: int = 8,
        band_shape: BandShape = "square",
        band_edges: BandEdges = "rings",
        fill: CoalitionFill = "permute",
        value: Value = "log_prob",
        normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
        output_transform: Optional[Callable[[Any], Tensor]] = None,
        beta: float = 0.75,
        chunk_size: Optional[int] = None,
        max_coalitions: int = 4096,
        estimator: Estimator = "auto",
        autocast: Optional[Autocast] = None,
        seed: int = 0,
        output: Output = "result",
        forward_batch_size: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if output not in OUTPUTS:
            raise ValueError(f"`output` must be one of {OUTPUTS}, got {output!r}.")
        self.output = output
        self.options = SpectralOptions(
            num_bands=num_bands,
            band_shape=band_shape,
            band_edges=band_edges,
            fill=fill,
            value=value,
            normalization=normalization,
            output_transform=output_transform,
            beta=beta,
            chunk_size=chunk_size,
            max_coalitions=max_coalitions,
            estimator=estimator,
            seed=seed,
            autocast=autocast,
            forward_batch_size=forward_batch_size,
        )
        self.estimator = self.options.resolved_estimator
        self._batches = 0
        self._in_forward = False  # forward() resets the states, but not the batch counter, donors or waiting image
        self._donors: Optional[Tensor] = None  # the previous batch's images, for a one-image batch ("permute")
        self._pending: Optional[tuple[Any, Tensor, Tensor]] = None  # a first batch of one image, waiting
        zeros = torch.zeros
        square = (num_bands, num_bands)
        self.add_state("phi_sum", default=zeros(num_bands, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("phi_outer_sum", default=zeros(square, dtype=torch.float64), dist_reduce_fx="sum")
        num_values = 2**num_bands if self.estimator == "exact" else 2  # sampled: v(empty) and v(full) only
        self.add_state("value_sum", default=zeros(num_values, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("estimator_cov_sum", default=zeros(square, dtype=torch.float64), dist_reduce_fx="sum")
        # (height, width) of the images; 0 until an image is seen. "max" keeps it on processes that saw none.
        self.add_state("image_size", default=zeros(2, dtype=torch.int64), dist_reduce_fx="max")

    def update(self, model: Callable[[Tensor], Any], images: Tensor, labels: Tensor, logits: Optional[Tensor] = None) -> None:
        """Evaluate every band coalition of ``images`` with ``model`` and add the per-sample statistics.

        Args:
            model: the classifier (run in eval mode; every module's mode is restored).
            images: ``[B, C, H, W]`` float images as the model expects them.
            labels: ``[B]`` integer class labels.
            logits: the model's logits on ``images`` if already computed (reused for the full coalition).
        """
        self._check_size(images)
        donors = None
        if self.options.fill == "permute":
            if self._pending is not None:  # a first one-image batch joins this one
                first_images, first_labels, first_logits = self._pending
                self._pending = None
                both = None if first_logits is None or logits is None else torch.cat([first_logits, logits])
                images, labels, logits = torch.cat([first_images, images]), torch.cat([first_labels, labels]), both
            elif self._waits(images):
                self._pending = (images, labels, logits)
                return
            elif images.shape[0] == 1:
                donors = self._donors
            self._donors = images.detach()
        rank = torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
        seed = self.options.seed + self._batches + 1_000_003 * rank
        self._batches += 1
        options = self.options.with_seed(seed)
        stats = spectral_shapley_statistics(model, images, labels, options, logits=logits, donors=donors)
        stats = stats._replace(estimator_cov_sum=stats.estimator_cov_sum if stats.estimator_cov_sum is not None else 0.0)
        # Out of place: validation may run under torch.inference_mode.
        for name, value in zip(ShapleyStatistics._fields, stats):
            setattr(self, name, getattr(self, name) + torch.as_tensor(value, dtype=torch.float64).to(self.count.device))
        self.image_size = torch.tensor(images.shape[-2:], dtype=torch.int64, device=self.count.device)

    def _check_size(self, images: Tensor) -> None:
        """Bands are cut per image size: every batch of one accumulation must have the same height and width."""
        seen = tuple(int(s) for s in self.image_size)
        if seen == (0, 0) and self._pending is not None:  # a waiting first image fixes the size too
            seen = tuple(self._pending[0].shape[-2:])
        if isinstance(images, Tensor) and images.ndim == 4 and seen != (0, 0) and seen != tuple(images.shape[-2:]):
            raise ValueError(
                f"SpectralImportance accumulates images of one size, got {tuple(images.shape[-2:])} after {seen}: "
                "the bands (and their edges in cycles/pixel) depend on the size. Resize the images, or use one "
                "metric per size (or `reset()` between sizes)."
            )

    def forward(
        self, model: Callable[[Tensor], Any], images: Tensor, labels: Tensor, logits: Optional[Tensor] = None
    ) -> Optional[Union[SpectralShapleyResult, dict[str, Tensor]]]:
        """Add the batch (like :meth:`update`) and return the result of this batch alone, torchmetrics' contract.

        Unlike a plain reset-update-compute, the batch counter (so every batch gets its own seed) and the
        ``"permute"`` donors carry over from batch to batch. A first batch of one image with ``fill="permute"`` has
        no partner yet: it waits for the next batch (``None`` is returned for it) and counts in that batch's result.
        """
        if self._waits(images):
            self.update(model, images, labels, logits)
            return None
        self._in_forward = True
        try:
            return super().forward(model, images, labels, logits)
        finally:
            self._in_forward = False

    def _waits(self, images: Tensor) -> bool:
        """Whether ``images`` is a first one-image batch that ``"permute"`` must keep until a partner comes."""
        alone = isinstance(images, Tensor) and images.ndim == 4 and images.shape[0] == 1
        return self.options.fill == "permute" and alone and self._donors is None and self._pending is None

    def reset(self) -> None:
        """Reset the states, the batch counter that derives per-batch seeds and the ``"permute"`` donors."""
        super().reset()
        if self._in_forward:  # forward()'s batch-local reset: the batch sequence goes on
            return
        self._batches = 0
        self._donors = None
        self._pending = None

    def compute(self) -> Union[SpectralShapleyResult, dict[str, Tensor]]:
        """The spectral Shapley result of all samples seen (across processes after synchronisation).

        Returns:
            a ``SpectralShapleyResult``, or its ``as_dict()`` with ``output="dict"``.

        Raises:
            ValueError: if no sample was seen.
        """
        if self._pending is not None:
            warnings.warn(
                "SpectralImportance(fill='permute') saw a single image on this process and had no other image to "
                "take its absent bands from: it is left out. Pass at least 2 images, or use fill='zero'/'noise'.",
                stacklevel=2,
            )
        stats = ShapleyStatistics(*(getattr(self, name) for name in ShapleyStatistics._fields))
        if float(stats.count) <= 0:
            raise ValueError(NO_SAMPLE_MESSAGE)
        height, width = (int(s) for s in self.image_size)
        result = compute_result(stats, self.options.layout(height, width), self.options.beta)
        return result.as_dict() if self.output == "dict" else result

    def plot(
        self,
        val: Optional[Union[SpectralShapleyResult, dict[str, Tensor], Sequence[Any]]] = None,
        ax: Optional[Any] = None,
    ) -> tuple[Any, Any]:
        """Plot the frequency response (phi per band with 95% error bars) like torchmetrics' ``plot``.

        Args:
            val: a result from :meth:`compute` (a ``SpectralShapleyResult`` or its dict), or a sequence of them (e.g.
                one per epoch), drawn as overlaid curves labelled by their position; computed when omitted.
            ax: a matplotlib axis to draw on; a new figure when omitted.

        Returns:
            ``(fig, ax)``.
        """
        val = self.compute() if val is None else val
        results = [val] if isinstance(val, (SpectralShapleyResult, dict)) else list(val)
        curves = [_curve(r) for r in results]
        if not curves or None in curves:
            raise ValueError(
                "`val` must be a SpectralShapleyResult, its `as_dict()`, or a non-empty sequence of them."
            )
        fig = None
        for i, (phi, stderr, edges) in enumerate(curves):
            label = None if len(curves) == 1 else str(i)
            fig, ax = plot_frequency_response(phi, stderr, edges, ax=ax, label=label)
        return fig, ax

def _curve(result: Any) -> Optional[tuple[Tensor, Tensor, Tensor]]:
    """``(phi, stderr, band_frequencies)`` of a result or of its ``as_dict()``; ``None`` for anything else."""
    if isinstance(result, SpectralShapleyResult):
        return result.phi, result.stderr, result.band_frequencies
    if isinstance(result, dict) and {"phi", "stderr", "band_frequencies"} <= result.keys():
        return result["phi"], result["stderr"], result["band_frequencies"]
    return None
