"""BatchUnpacker: (images, labels) from tuple, dict and transformed batches, and optional per-image masks read from a
tuple index, a third dict key or the transform's third tensor, with errors that name the option to fix."""

from typing import Any

import pytest
import torch

from iaside_lightning.callbacks.batch import BatchUnpacker

X, Y, MASKS = torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 0]), torch.rand(3, 4, 4) > 0.5


def test_masks_from_a_tuple_index_a_dict_key_or_the_transform() -> None:
    for unpack, batch in (
        (BatchUnpacker(mask_key=2), (X, Y, MASKS)),
        (BatchUnpacker(batch_keys=("image", "label"), mask_key="mask"), {"image": X, "label": Y, "mask": MASKS}),
        (BatchUnpacker(lambda b: (b["x"], b["y"], b["m"])), {"x": X, "y": Y, "m": MASKS}),
    ):
        images, labels, masks = unpack.with_masks(batch)
        assert images is X and labels is Y and masks is MASKS and unpack.reads_masks
        assert unpack(batch) == (X, Y)  # the plain call ignores the masks


def test_batches_without_masks_give_none() -> None:
    assert BatchUnpacker().with_masks((X, Y, MASKS))[2] is None  # no mask_key: a third element is not a mask
    assert BatchUnpacker(lambda b: b[:2]).with_masks((X, Y))[2] is None
    assert not BatchUnpacker().reads_masks


@pytest.mark.parametrize(
    ("unpack", "batch", "match"),
    [
        (BatchUnpacker(mask_key=3), (X, Y, MASKS), "`mask_key=3` does not select the masks of a tuple batch"),
        (BatchUnpacker(mask_key="mask"), (X, Y, MASKS), "`mask_key='mask'` does not select"),
        (BatchUnpacker(mask_key=1), (X, Y, MASKS), r"`mask_key=1` must give one mask per image, \[N, \(C,\) H, W\]"),
        (BatchUnpacker(batch_keys=("x", "y"), mask_key="m"), {"x": X, "y": Y}, "`mask_key='m'` does not select"),
        (BatchUnpacker(lambda b: (b[0], b[1], b[1])), (X, Y), "`batch_transform` must give one mask per image"),
        (BatchUnpacker(lambda b: (X,)), (X, Y), r"`batch_transform` must return tensors \(images, labels\) or"),
        (BatchUnpacker(mask_key=2), (X, Y, MASKS[:2]), "one mask per image"),
    ],
)
def test_unreadable_masks_name_the_option(unpack: BatchUnpacker, batch: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        unpack.with_masks(batch)


def test_bad_options_fail_at_construction() -> None:
    with pytest.raises(TypeError, match="`mask_key` must be the index"):
        BatchUnpacker(mask_key=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`mask_key` must be the index"):
        BatchUnpacker(mask_key=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`batch_transform` must be callable"):
        BatchUnpacker("not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`batch_keys` must be a pair"):
        BatchUnpacker(batch_keys=("x", "y", "m"))
