"""Seeded label operations for real data sets: a stratified train/validation split and symmetric label noise."""

import torch
from torch import Tensor

__all__ = ["stratified_split", "symmetric_label_noise"]


def stratified_split(labels: Tensor, num_val: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Split sample indices into training and validation indices with the class proportions of ``labels``.

    Within each class the samples are shuffled (seeded); then every sample gets the key ``(rank within its class +
    0.5) / class size`` and the ``num_val`` smallest keys form the validation set. Each class therefore gets its
    proportional share of the validation set to within one sample, and any prefix of the validation indices is itself
    nearly class-balanced (useful when a callback analyses only the first few validation images).

    Args:
        labels: integer class labels ``[N]``.
        num_val: validation samples, ``1 <= num_val < N``.
        seed: seed of the shuffle.

    Returns:
        ``(train_idx, val_idx)``: int64 index tensors of lengths ``N - num_val`` and ``num_val``, disjoint, together
        covering ``range(N)``, both in key order (so the prefixes of both are nearly class-balanced).

    Raises:
        ValueError: if ``labels`` is not a 1-D integer tensor of non-negative labels or ``num_val`` is out of range.

    Example:
        >>> train_idx, val_idx = stratified_split(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]), num_val=4)
        >>> torch.bincount(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])[val_idx]).tolist(), len(train_idx)
        ([2, 2], 4)
    """
    _check_labels(labels)
    if isinstance(num_val, bool) or not isinstance(num_val, int) or not 1 <= num_val < labels.numel():
        raise ValueError(f"`num_val` must be an integer in [1, {labels.numel() - 1}] (N - 1), got {num_val!r}.")
    labels = labels.cpu()
    order = torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(seed))
    shuffled = labels[order]
    one_hot = torch.nn.functional.one_hot(shuffled)
    rank = (one_hot.cumsum(0) - 1).gather(1, shuffled[:, None]).squeeze(1)
    key = (rank.double() + 0.5) / one_hot.sum(0)[shuffled].double()
    ranked = order[torch.argsort(key, stable=True)]
    return ranked[num_val:], ranked[:num_val]


def symmetric_label_noise(labels: Tensor, rate: float, num_classes: int, seed: int = 0) -> Tensor:
    """Replace each label, with probability ``rate``, by a uniformly drawn *different* class.

    Each label is flipped independently; a flipped label is never its original class, and every other class is
    equally likely. (Noise of "rate r" therefore means a fraction r of wrong labels, not r * (K - 1) / K.)

    Args:
        labels: integer class labels ``[N]`` in ``[0, num_classes)``.
        rate: flip probability in ``[0, 1]``.
        num_classes: number of classes ``K >= 2``.
        seed: seed of the flips.

    Returns:
        The noisy labels, a new int64 tensor ``[N]``; ``labels`` is not modified.

    Raises:
        ValueError: if ``rate`` is outside ``[0, 1]``, ``num_classes < 2`` or a label is out of range.

    Example:
        >>> clean = torch.arange(10) % 5
        >>> noisy = symmetric_label_noise(clean, rate=1.0, num_classes=5)
        >>> bool((noisy != clean).all()), bool(((0 <= noisy) & (noisy < 5)).all())
        (True, True)
    """
    _check_labels(labels)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"`rate` (the label-noise probability) must be a number in [0, 1], got {rate!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
    if labels.numel() and int(labels.max()) >= num_classes:
        raise ValueError(f"`labels` must lie in [0, {num_classes}) (num_classes), got a label {int(labels.max())}.")
    generator = torch.Generator().manual_seed(seed)
    flip = torch.rand(labels.shape, generator=generator) < rate
    shift = torch.randint(1, num_classes, labels.shape, generator=generator)  # 1..K-1: never the same class
    labels = labels.cpu().long()
    return torch.where(flip, (labels + shift) % num_classes, labels)


def _check_labels(labels: Tensor) -> None:
    if (
        not isinstance(labels, Tensor)
        or labels.ndim != 1
        or labels.dtype.is_floating_point
        or labels.dtype == torch.bool
    ):
        raise ValueError(
            f"`labels` must be a 1-D integer tensor, got {type(labels).__name__} {getattr(labels, 'shape', '')}."
        )
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"`labels` must be non-negative class indices, got {int(labels.min())}.")
