"""Getting ``(images, labels)``, and per-image masks where batches carry them, out of what a dataloader yields."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional, Union

from torch import Tensor

__all__ = ["BatchUnpacker", "MaskKey"]

#: Where batches keep per-image masks: an index of tuple batches or a key of dict batches.
MaskKey = Union[int, str]


class BatchUnpacker:
    """Extract ``(images, labels)`` from a batch: ``(x, y, ...)`` tuples/lists, dicts by key, or a user callable;
    :meth:`with_masks` also reads an optional third element, per-image masks (e.g. BlockMNIST's signal masks).

    Args:
        batch_transform: callable mapping a batch to ``(images, labels)`` or ``(images, labels, masks)``; takes
            precedence over the keys.
        batch_keys: ``(image_key, label_key)`` for dict batches, e.g. ``("image", "label")``.
        mask_key: where batches keep the masks: the index of tuple batches (``2`` for ``(image, label, mask)``) or
            the key of dict batches (the third key beside ``batch_keys``); ``None``: batches carry no masks (unless
            ``batch_transform`` returns them).

    Raises:
        TypeError: if ``batch_transform`` is not callable or ``mask_key`` is neither an index nor a key.
        ValueError: if ``batch_keys`` is not a pair.

    Example:
        >>> import torch
        >>> x, y, masks = torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), torch.ones(2, 4, 4)
        >>> BatchUnpacker()((x, y, "extra"))[1].tolist()
        [0, 1]
        >>> BatchUnpacker(batch_keys=("img", "cls"))({"img": x, "cls": y})[0].shape
        torch.Size([2, 1, 4, 4])
        >>> BatchUnpacker(mask_key=2).with_masks((x, y, masks))[2].shape
        torch.Size([2, 4, 4])
        >>> unpack = BatchUnpacker(batch_keys=("img", "cls"), mask_key="mask")
        >>> unpack.with_masks({"img": x, "cls": y, "mask": masks})[2].sum().item()
        32.0
    """

    def __init__(
        self,
        batch_transform: Optional[Callable[[Any], tuple[Tensor, ...]]] = None,
        batch_keys: Optional[Sequence[str]] = None,
        mask_key: Optional[MaskKey] = None,
    ) -> None:
        if batch_transform is not None and not callable(batch_transform):
            raise TypeError(
                f"`batch_transform` must be callable (batch -> (images, labels) or (images, labels, masks)), got "
                f"{batch_transform!r}."
            )
        if batch_keys is not None and (isinstance(batch_keys, str) or len(batch_keys) != 2):
            raise ValueError(f"`batch_keys` must be a pair (image_key, label_key), got {batch_keys!r}.")
        if mask_key is not None and (isinstance(mask_key, bool) or not isinstance(mask_key, (int, str))):
            raise TypeError(
                f"`mask_key` must be the index (tuple batches) or key (dict batches) of the masks, or None, got "
                f"{mask_key!r}."
            )
        self.batch_transform = batch_transform
        self.batch_keys = tuple(batch_keys) if batch_keys is not None else None
        self.mask_key = mask_key

    @property
    def reads_masks(self) -> bool:
        """Whether batches may give masks: a ``mask_key`` is set, or ``batch_transform`` may return them."""
        return self.mask_key is not None or self.batch_transform is not None

    def __call__(self, batch: Any) -> tuple[Tensor, Tensor]:
        """Return ``(images, labels)``; raise a ``TypeError`` that says what to pass when the batch is unreadable."""
        if self.batch_transform is not None:
            images, labels, *_ = self._transformed(batch)
            return images, labels
        if isinstance(batch, Mapping):
            if self.batch_keys is None or any(k not in batch for k in self.batch_keys):
                raise TypeError(
                    f"Cannot find images and labels in a dict batch with keys {sorted(map(str, batch))} (batch_keys="
                    f"{self.batch_keys}). Pass `batch_keys=(image_key, label_key)` or `batch_transform`."
                )
            pair = (batch[self.batch_keys[0]], batch[self.batch_keys[1]])
        elif isinstance(batch, Sequence) and len(batch) >= 2:
            pair = (batch[0], batch[1])
        else:
            raise TypeError(
                f"Cannot unpack a validation batch of type {type(batch).__name__} into (images, labels). The default "
                "reads (x, y, ...) tuples; pass `batch_keys=(image_key, label_key)` for dicts or `batch_transform`."
            )
        if not all(isinstance(t, Tensor) for t in pair):
            got = tuple(type(t).__name__ for t in pair)
            raise TypeError(f"The batch must unpack to a pair of tensors (images, labels), got {got}.")
        return pair

    def with_masks(self, batch: Any) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        """Return ``(images, labels, masks)``, ``masks`` ``[N, (C,) H, W]`` (one per image) or ``None`` when the batch
        carries none; raise a ``TypeError`` naming ``mask_key`` or ``batch_transform`` when they do not fit."""
        if self.batch_transform is not None:
            images, labels, *rest = self._transformed(batch)
            masks, source = (rest[0] if rest else None), "`batch_transform`"
        else:
            images, labels = self(batch)
            masks = None if self.mask_key is None else self._select_masks(batch)
            source = f"`mask_key={self.mask_key!r}`"
        if masks is not None and (
            not isinstance(masks, Tensor) or masks.ndim not in (3, 4) or masks.shape[0] != images.shape[0]
            or masks.shape[-2:] != images.shape[-2:]
        ):
            got = tuple(masks.shape) if isinstance(masks, Tensor) else type(masks).__name__
            raise TypeError(
                f"{source} must give one mask per image, [N, (C,) H, W] like the images {tuple(images.shape)}, got "
                f"{got}."
            )
        return images, labels, masks

    def _transformed(self, batch: Any) -> tuple[Tensor, ...]:
        """The tensors ``batch_transform`` returns, checked: ``(images, labels)`` or ``(images, labels, masks)``."""
        parts = self.batch_transform(batch)
        tensors = isinstance(parts, (tuple, list)) and all(isinstance(t, Tensor) for t in parts)
        if not tensors or len(parts) not in (2, 3):
            raise TypeError(
                "`batch_transform` must return tensors (images, labels) or (images, labels, masks), got "
                f"{type(parts).__name__}."
            )
        return tuple(parts)

    def _select_masks(self, batch: Any) -> Any:
        """``batch[mask_key]``; a ``TypeError`` naming ``mask_key`` when it selects nothing."""
        try:
            return batch[self.mask_key]
        except (KeyError, IndexError, TypeError) as err:
            raise TypeError(
                f"`mask_key={self.mask_key!r}` does not select the masks of a {type(batch).__name__} batch: pass the "
                "index (tuple batches) or key (dict batches) of the ground-truth masks, or `batch_transform`."
            ) from err
