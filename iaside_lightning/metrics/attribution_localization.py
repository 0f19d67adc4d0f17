"""``AttributionLocalization``: how much of any attribution map falls on the ground-truth evidence, over batches."""

from collections.abc import Mapping, Sequence
from typing import Optional

from torch import Tensor

from iaside_lightning.functional.sanity.localization import attribution_localization, attribution_region_shares
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

    With ``regions=("pattern", ...)`` it also splits the mass over the mask (region ``"inside"``) and the named
    regions, given per batch as ``update(attributions, masks, regions={"pattern": pattern_masks, ...})``, and sets
    each share against its baseline (:func:`~iaside_lightning.functional.sanity.localization.attribution_region_shares`:
    the region's share of the pixels, which is the expected share of the pixel-shuffled attribution, so diffuse noise
    scores it): ``mass/<region>``, ``baseline/<region>`` and ``excess/<region>`` (``mass - baseline`` per sample;
    its standard error is that of the paired difference). On BlockMNIST, say, the digit block, the null pattern's ink
    and the null block's background separate leakage onto the pattern from noise spread over the background.

    Why ``update`` takes ``(attributions, masks)`` and not ``(model, images, labels)`` like
    :class:`~iaside_lightning.metrics.BoundaryGeometry` and :class:`~iaside_lightning.metrics.SpectralImportance`:
    it is a metric of given attribution maps, as torchmetrics' classification metrics are metrics of given
    ``(preds, target)``; no model is involved in the score. The maps may come from any attribution method
    (gradients, IG, BIG, a callable of your own), and one boundary search yields three of them
    (:class:`~iaside_lightning.callbacks.BoundaryMonitor` scores all three from the search it runs once).

    Args:
        top_k: fraction of pixels used by ``top_k_outside``.
        regions: names of extra regions scored against the shuffled baseline (disjoint from the mask and from each
            other); ``()`` scores the mask alone against its baseline; None (default) adds no region scores.
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> import torch
        >>> metric = AttributionLocalization(top_k=0.25)
        >>> masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
        >>> masks[:, :, :2] = True
        >>> metric.update(masks.float() * torch.rand(2, 1, 4, 4), masks)  # all mass on the evidence
        >>> float(metric.compute()["mass_inside"]), float(metric.compute()["top_k_outside"])
        (1.0, 0.0)
        >>> metric = AttributionLocalization(regions=("left",))
        >>> left = torch.zeros_like(masks)
        >>> left[:, :, 2:, :2] = True  # a quarter of the pixels, off the mask
        >>> metric.update(torch.ones(2, 1, 4, 4), masks, regions={"left": left})  # uniform: no preference
        >>> result = metric.compute()
        >>> float(result["mass/left"]), float(result["baseline/left"]), float(result["excess/inside"])
        (0.25, 0.25, 0.0)
    """

    def __init__(self, top_k: float = 0.1, regions: Optional[Sequence[str]] = None, **kwargs: object) -> None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, float)) or not 0 < top_k <= 1:
            raise ValueError(f"`top_k` must be a fraction of pixels in (0, 1], got {top_k!r}.")
        if regions is not None and (
            isinstance(regions, str)
            or not isinstance(regions, Sequence)
            or not all(isinstance(name, str) and name and name != "inside" for name in regions)
            or len(set(regions)) != len(regions)
        ):
            raise ValueError(
                f"`regions` must be a sequence of distinct non-empty names other than 'inside' (the mask), got {regions!r}."
            )
        self.regions = None if regions is None else ("inside", *regions)
        region_measures = [f"{kind}/{name}" for name in self.regions or () for kind in ("mass", "baseline", "excess")]
        super().__init__(("mass_inside", "pointing_game", "top_k_outside", *region_measures), **kwargs)
        self.top_k = float(top_k)

    def update(  # type: ignore[override]
        self, attributions: Tensor, masks: Tensor, regions: Optional[Mapping[str, Tensor]] = None
    ) -> None:
        """Score ``[N, C, H, W]`` attributions against ``[N, (C|1,) H, W]`` boolean masks (and the declared regions).

        Args:
            attributions: ``[N, C, H, W]`` or ``[N, H, W]`` attributions.
            masks: boolean (or 0/1) masks of the evidence, of the attributions' pixel size.
            regions: ``{name: mask}`` for exactly the names declared at construction; required if any were.

        Raises:
            TypeError: for attributions that are not a floating-point tensor ``[N, C, H, W]`` or ``[N, H, W]``.
            ValueError: for masks that are not boolean (or 0/1) tensors of the attributions' pixel size, regions
                other than the declared ones, or regions that overlap each other or the mask.
        """
        declared = set(self.regions[1:]) if self.regions else set()
        given = set(regions) if isinstance(regions, Mapping) else regions
        if (regions is not None or declared) and given != declared:
            raise ValueError(f"`regions` must map exactly the declared names {sorted(declared)} to masks, got {given!r:.80}.")
        scores = attribution_localization(attributions, masks, top_k=self.top_k)
        values = {"mass_inside": scores.mass_inside, "pointing_game": scores.pointing_game, "top_k_outside": scores.top_k_outside}
        if self.regions is not None:
            shares = attribution_region_shares(attributions, {"inside": masks, **(regions or {})})
            for name in self.regions:
                values |= {
                    f"mass/{name}": shares.mass[name],
                    f"baseline/{name}": shares.baseline[name],
                    f"excess/{name}": shares.excess[name],
                }
        self.add(values)
