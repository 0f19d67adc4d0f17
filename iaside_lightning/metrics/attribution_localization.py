"""``AttributionLocalization``: how much of any attribution map falls on the ground-truth evidence, over batches."""

from torch import Tensor

from iaside_lightning.functional.sanity.localization import attribution_localization
from iaside_lightning.metrics.sample_means import SampleMeans

__all__ = ["AttributionLocalization"]


class AttributionLocalization(SampleMeans):
    """Localization of attributions against ground-truth masks, averaged over samples and processes.

    ``update(attributions, masks)`` scores each sample with
    :func:`~iaside_lightning.functional.sanity.localization.attribution_localization`; ``compute()`` returns the means,
    standard errors and counts of ``mass_inside`` (share of attribution magnitude in the mask; higher is better),
    ``pointing_game`` (share of samples whose top pixel is in the mask) and ``top_k_outside`` (share of the top
    ``top_k`` pixels outside the mask; lower is better). Samples with an all-zero attribution are left out (their
    count shows).

    Why ``update`` takes ``(attributions, masks)`` and not ``(model, images, labels)`` like
    :class:`~iaside_lightning.metrics.BoundaryGeometry` and :class:`~iaside_lightning.metrics.SpectralImportance`:
    it is a metric of given attribution maps, as torchmetrics' classification metrics are metrics of given
    ``(preds, target)``; no model is involved in the score. The maps may come from any attribution method
    (gradients, IG, BIG, a callable of your own), and one boundary search yields three of them
    (:class:`~iaside_lightning.callbacks.BoundaryMonitor` scores all three from the search it runs once).

    Args:
        top_k: fraction of pixels used by ``top_k_outside``.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> import torch
        >>> metric = AttributionLocalization(top_k=0.25)
        >>> masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
        >>> masks[:, :, :2] = True
        >>> metric.update(masks.float() * torch.rand(2, 1, 4, 4), masks)  # all mass on the evidence
        >>> float(metric.compute()["mass_inside"]), float(metric.compute()["top_k_outside"])
        (1.0, 0.0)
    """

    def __init__(self, top_k: float = 0.1, **kwargs: object) -> None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, float)) or not 0 < top_k <= 1:
            raise ValueError(f"`top_k` must be a fraction of pixels in (0, 1], got {top_k!r}.")
        super().__init__(("mass_inside", "pointing_game", "top_k_outside"), **kwargs)
        self.top_k = float(top_k)

    def update(self, attributions: Tensor, masks: Tensor) -> None:  # type: ignore[override]
        """Score ``[N, C, H, W]`` attributions against ``[N, (C|1,) H, W]`` boolean masks.

        Raises:
            TypeError: for attributions that are not a floating-point tensor ``[N, C, H, W]`` or ``[N, H, W]``.
            ValueError: for masks that are not boolean (or 0/1) tensors of the attributions' pixel size.
        """
        scores = attribution_localization(attributions, masks, top_k=self.top_k)
        self.add(
            {"mass_inside": scores.mass_inside, "pointing_game": scores.pointing_game, "top_k_outside": scores.top_k_outside}
        )
