"""A Metric base for means of per-sample measures with standard errors, exact across processes."""

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["SampleMeans"]


class SampleMeans(Metric):
    """Accumulates, for each named per-sample measure, the count, sum and sum of squares of its defined values.

    NaN marks a sample for which a measure is undefined (e.g. no boundary point was found): it is left out of that
    measure's mean and counted in no sum. All states are float64 sums reduced with ``"sum"``, so the synchronised
    result equals the single-process one however samples are split (a process that saw none included).
    ``compute()`` returns ``{name: mean, name + "_stderr": standard error of the mean, name + "_count": count}``;
    a measure with no defined value has a NaN mean (its count says why).

    Subclasses add their per-sample measures through :meth:`add`, which checks that every measure has one value per
    sample. Their ``update`` follows torchmetrics: it takes what the measure is a function of, a model and its data
    where the metric runs the model (:class:`~iaside_lightning.metrics.BoundaryGeometry`, like
    :class:`~iaside_lightning.metrics.SpectralImportance`), the scored quantities otherwise
    (:class:`~iaside_lightning.metrics.AttributionLocalization`: attributions and masks, like ``preds`` and
    ``target``).

    Args:
        measures: names of the per-sample measures.

    Example:
        >>> metric = SampleMeans(["score"])
        >>> metric.update({"score": torch.tensor([1.0, 3.0, float("nan")])})
        >>> {k: float(v) for k, v in metric.compute().items()}
        {'score': 2.0, 'score_stderr': 1.0, 'score_count': 2.0}
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(self, measures: Sequence[str], **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.measures = tuple(measures)
        for name in self.measures:
            for suffix in ("count", "sum", "sq_sum"):
                self.add_state(f"{name}_{suffix}", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: Mapping[str, Tensor]) -> None:
        """Add per-sample values ``{name: [N] tensor}`` (NaN: undefined for that sample)."""
        self.add(values)

    def add(self, values: Mapping[str, Tensor]) -> None:
        """Add per-sample values to the sums (called by subclasses' ``update``).

        Raises:
            TypeError: unless ``values`` maps every measure to a tensor.
            ValueError: unless every measure has the same number of values.
        """
        if not isinstance(values, Mapping) or not all(isinstance(values.get(name), Tensor) for name in self.measures):
            got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
            raise TypeError(f"`values` must map every measure {list(self.measures)} to a per-sample tensor, got {got}.")
        columns = {name: values[name].detach().to(self.device, torch.float64).flatten() for name in self.measures}
        if len({column.numel() for column in columns.values()}) > 1:
            sizes = {name: column.numel() for name, column in columns.items()}
            raise ValueError(f"`values` must hold one value per sample for every measure, got sizes {sizes}.")
        for name, column in columns.items():
            defined = column[~torch.isnan(column)]
            setattr(self, f"{name}_count", getattr(self, f"{name}_count") + defined.numel())
            setattr(self, f"{name}_sum", getattr(self, f"{name}_sum") + defined.sum())
            setattr(self, f"{name}_sq_sum", getattr(self, f"{name}_sq_sum") + defined.square().sum())

    def compute(self) -> dict[str, Tensor]:
        """Means, standard errors and counts of every measure."""
        out: dict[str, Tensor] = {}
        for name in self.measures:
            count, total, squares = (getattr(self, f"{name}_{s}") for s in ("count", "sum", "sq_sum"))
            mean = total / count if count > 0 else torch.tensor(float("nan"), dtype=torch.float64, device=self.device)
            variance = (squares - count * mean.square()).clamp_min(0) / (count - 1) if count > 1 else torch.zeros_like(mean)
            out[name] = mean
            out[f"{name}_stderr"] = (variance / count).sqrt() if count > 0 else torch.full_like(mean, float("nan"))
            out[f"{name}_count"] = count
        return out
