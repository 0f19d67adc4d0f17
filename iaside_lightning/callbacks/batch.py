"""Getting ``(images, labels)`` out of whatever a validation dataloader yields."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

from torch import Tensor

__all__ = ["BatchUnpacker"]


class BatchUnpacker:
    """Extract ``(images, labels)`` from a batch: ``(x, y, ...)`` tuples/lists, dicts by key, or a user callable.

    Args:
        batch_transform: callable mapping a batch to ``(images, labels)``; takes precedence.
        batch_keys: ``(image_key, label_key)`` for dict batches, e.g. ``("image", "label")``.

    Example:
        >>> import torch
        >>> x, y = torch.zeros(2, 1, 4, 4), torch.tensor([0, 1])
        >>> BatchUnpacker()((x, y, "extra"))[1].tolist()
        [0, 1]
        >>> BatchUnpacker(batch_keys=("img", "cls"))({"img": x, "cls": y})[0].shape
        torch.Size([2, 1, 4, 4])
    """

    def __init__(
        self,
        batch_transform: Optional[Callable[[Any], tuple[Tensor, Tensor]]] = None,
        batch_keys: Optional[Sequence[str]] = None,
    ) -> None:
        if batch_transform is not None and not callable(batch_transform):
            raise TypeError(f"`batch_transform` must be callable (batch -> (images, labels)), got {batch_transform!r}.")
        if batch_keys is not None and (isinstance(batch_keys, str) or len(batch_keys) != 2):
            raise ValueError(f"`batch_keys` must be a pair (image_key, label_key), got {batch_keys!r}.")
        self.batch_transform = batch_transform
        self.batch_keys = tuple(batch_keys) if batch_keys is not None else None

    def __call__(self, batch: Any) -> tuple[Tensor, Tensor]:
        """Return ``(images, labels)``; raise a ``TypeError`` that says what to pass when the batch is unreadable."""
        if self.batch_transform is not None:
            pair = self.batch_transform(batch)
        elif isinstance(batch, Mapping):
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
        if not isinstance(pair, Sequence) or len(pair) != 2 or not all(isinstance(t, Tensor) for t in pair):
            raise TypeError(f"The batch must unpack to a pair of tensors (images, labels), got {type(pair).__name__}.")
        return pair[0], pair[1]
