"""Real images a user already has on disk: CIFAR-10 (torchvision's python format) or any ImageFolder tree.

Nothing is ever downloaded: both loaders read local files through torchvision with ``download=False`` and say where
the files were expected when they are missing.
"""

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Optional, Union

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from iaside_lightning.datasets.splits import stratified_split

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["CIFAR10_NORMALIZATION", "LocalImageDataModule", "load_cifar10", "load_image_folder"]

#: Per-channel ``(mean, std)`` of the CIFAR-10 training images.
CIFAR10_NORMALIZATION = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))

Normalization = Optional[tuple[Sequence[float], Sequence[float]]]


def load_cifar10(
    root: Union[str, Path], train: bool = True, normalization: Normalization = CIFAR10_NORMALIZATION
) -> Dataset:
    """CIFAR-10 from ``root/cifar-10-batches-py`` (the python version), as float tensors ``[3, 32, 32]``.

    Args:
        root: folder that contains ``cifar-10-batches-py/``.
        train: the 50,000 training images (``True``) or the 10,000 test images.
        normalization: per-channel ``(mean, std)`` to standardise with; ``None`` keeps pixels in ``[0, 1]``.

    Returns:
        A ``torchvision.datasets.CIFAR10`` yielding ``(image, label)``.

    Raises:
        FileNotFoundError: if the files are missing or corrupted (with the path that was searched).

    Example:
        >>> load_cifar10("/nonexistent")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: No CIFAR-10 at '/nonexistent/cifar-10-batches-py' ...
    """
    from torchvision.datasets import CIFAR10

    folder = Path(root) / CIFAR10.base_folder
    try:
        return CIFAR10(str(root), train=train, transform=_transform(None, False, normalization), download=False)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"No CIFAR-10 at {str(folder)!r} (or its files fail torchvision's checksums). This package never "
            "downloads data: fetch it once yourself, e.g. `torchvision.datasets.CIFAR10(root, download=True)`."
        ) from err


def load_image_folder(
    root: Union[str, Path],
    image_size: Optional[Union[int, Sequence[int]]] = None,
    grayscale: bool = False,
    normalization: Normalization = None,
) -> Dataset:
    """Images in ``root/<class name>/<image file>`` (torchvision's ImageFolder), as float tensors ``[C, H, W]``.

    Classes are numbered in the sorted order of their folder names.

    Args:
        root: folder with one sub-folder per class.
        image_size: resize every image to ``H`` x ``H`` or ``(H, W)``; ``None`` keeps the files' size (the files must
            then all have the same size to be batched).
        grayscale: convert to one channel (otherwise RGB, three channels).
        normalization: per-channel ``(mean, std)`` to standardise with; ``None`` keeps pixels in ``[0, 1]``.

    Returns:
        A ``torchvision.datasets.ImageFolder`` yielding ``(image, label)``; ``.classes`` holds the class names.

    Raises:
        FileNotFoundError: if ``root`` is not a folder or holds no class folder with an image.

    Example:
        >>> load_image_folder("/nonexistent")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: No image folder at '/nonexistent': expected ...
    """
    from torchvision.datasets import ImageFolder

    if not Path(root).is_dir():
        raise FileNotFoundError(f"No image folder at {str(root)!r}: expected {root}/<class name>/<image files>.")
    try:
        return ImageFolder(str(root), transform=_transform(image_size, grayscale, normalization))
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"No images in {str(root)!r}: expected one sub-folder per class holding image files ({err})."
        ) from err


def _to_rgb(image: "Image") -> "Image":
    return image.convert("RGB")


def _transform(
    image_size: Optional[Union[int, Sequence[int]]], grayscale: bool, normalization: Normalization
) -> Callable[["Image"], Tensor]:
    """PIL image -> float tensor: channels, optional resize, ``[0, 1]`` scaling, optional standardisation."""
    from torchvision import transforms

    steps = [transforms.Grayscale(1) if grayscale else transforms.Lambda(_to_rgb)]
    if image_size is not None:
        steps.append(transforms.Resize((image_size, image_size) if isinstance(image_size, int) else tuple(image_size)))
    steps.append(transforms.ToTensor())
    if normalization is not None:
        mean, std = normalization
        steps.append(transforms.Normalize(list(mean), list(std)))
    return transforms.Compose(steps)


class LocalImageDataModule(pl.LightningDataModule):
    """A LightningDataModule over local CIFAR-10 or an ImageFolder tree (see :func:`load_cifar10`,
    :func:`load_image_folder`).

    CIFAR-10 trains on its training batches and validates on its test batch. An ImageFolder validates on
    ``val_root`` when given, otherwise on a stratified, seeded ``val_fraction`` of ``root``. Pass
    :attr:`normalization` (the statistics actually applied) to the monitor so bands are cut in pixel space.

    Args:
        root: the CIFAR-10 root (containing ``cifar-10-batches-py/``) or the ImageFolder root.
        kind: ``"image_folder"`` or ``"cifar10"``.
        val_root: an ImageFolder root of validation images with the same class folders (ImageFolder only).
        val_fraction: fraction of ``root`` held out for validation when ``val_root`` is ``None``.
        image_size: resize ImageFolder images to this size (CIFAR-10 stays 32 x 32).
        grayscale: load ImageFolder images with one channel.
        normalization: per-channel ``(mean, std)``; default: CIFAR-10's statistics for ``"cifar10"``, none (pixels
            in ``[0, 1]``) for ``"image_folder"``.
        batch_size: batch size of both loaders.
        num_workers: loader worker processes.
        seed: seed of the train/validation split.

    Raises:
        ValueError: for an unknown ``kind`` or a ``val_fraction`` outside ``(0, 1)``.
        FileNotFoundError: at :meth:`setup`, if the files are missing.

    Example:
        >>> dm = LocalImageDataModule("/data/cifar", kind="cifar10")
        >>> dm.normalization == CIFAR10_NORMALIZATION
        True
    """

    def __init__(
        self,
        root: str,
        kind: Literal["image_folder", "cifar10"] = "image_folder",
        val_root: Optional[str] = None,
        val_fraction: float = 0.2,
        image_size: Optional[Union[int, Sequence[int]]] = None,
        grayscale: bool = False,
        normalization: Normalization = None,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if kind not in ("image_folder", "cifar10"):
            raise ValueError(f"`kind` must be 'image_folder' or 'cifar10', got {kind!r}.")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"`val_fraction` must lie strictly between 0 and 1, got {val_fraction!r}.")
        self.save_hyperparameters()
        self.normalization: Normalization = (
            CIFAR10_NORMALIZATION if normalization is None and kind == "cifar10" else normalization
        )
        self.train_set: Optional[Dataset] = None
        self.val_set: Optional[Dataset] = None

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
            return
        h = self.hparams
        if h.kind == "cifar10":
            self.train_set = load_cifar10(h.root, train=True, normalization=self.normalization)
            self.val_set = load_cifar10(h.root, train=False, normalization=self.normalization)
            return
        images = load_image_folder(h.root, h.image_size, h.grayscale, self.normalization)
        if h.val_root is not None:
            self.train_set = images
            self.val_set = load_image_folder(h.val_root, h.image_size, h.grayscale, self.normalization)
            return
        labels = torch.as_tensor(images.targets)
        num_val = min(max(math.ceil(h.val_fraction * len(labels)), 1), len(labels) - 1)
        train_idx, val_idx = stratified_split(labels, num_val, seed=h.seed)
        self.train_set, self.val_set = Subset(images, train_idx.tolist()), Subset(images, val_idx.tolist())

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set, batch_size=self.hparams.batch_size, shuffle=True, num_workers=self.hparams.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size, num_workers=self.hparams.num_workers)
