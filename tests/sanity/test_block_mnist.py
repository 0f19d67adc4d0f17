"""BlockMNIST: images, masks and null blocks checked pixel by pixel against the source digits and slow references;
the digit sources, the data module and the synthetic digits' label signal."""

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from torch import Tensor
from torch.nn import functional as F  # noqa: N812

from iaside_lightning.datasets import (
    BlockMNIST,
    BlockMNISTDataModule,
    load_digits,
    load_mnist5k,
    make_block_mnist,
    make_synthetic_digits,
)
from iaside_lightning.models import SmallCNNClassifier

pytestmark = pytest.mark.usefixtures("single_thread")

Digits = tuple[Tensor, Tensor]


@pytest.fixture(scope="module")
def synthetic() -> Digits:
    return load_digits("synthetic", num_per_class=60)


@pytest.fixture(scope="module")
def mnist() -> Digits:
    return load_digits("mnist5k")


def _kept(digits: Tensor, digit_labels: Tensor, classes: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Slow reference: the digits of ``classes`` in order, and their labels as indices into ``classes``."""
    rows = [i for i in range(len(digit_labels)) if int(digit_labels[i]) in classes]
    return digits[rows], torch.tensor([classes.index(int(digit_labels[i])) for i in rows])


def _blocks(images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per image: the signal block, the null block and whether the signal is on top (read from the masks)."""
    size = images.shape[-1]
    top = masks[:, 0, 0, 0]
    upper, lower = images[:, :, :size], images[:, :, size:]
    where = top[:, None, None, None]
    return torch.where(where, upper, lower), torch.where(where, lower, upper), top


def _bilinear(image: Tensor, size: int) -> Tensor:
    """Slow reference of bilinear resizing with half-pixel centres (``align_corners=False``) of a 2-D image."""
    n = image.shape[0]
    out = torch.empty(size, size)
    for i in range(size):
        for j in range(size):
            y = min(max((i + 0.5) * n / size - 0.5, 0.0), n - 1.0)
            x = min(max((j + 0.5) * n / size - 0.5, 0.0), n - 1.0)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, n - 1), min(x0 + 1, n - 1)
            wy, wx = y - y0, x - x0
            out[i, j] = (
                (1 - wy) * ((1 - wx) * image[y0, x0] + wx * image[y0, x1])
                + wy * ((1 - wx) * image[y1, x0] + wx * image[y1, x1])
            )
    return out


@pytest.mark.parametrize("block_size", [28, 14, 40])
@pytest.mark.parametrize("variant", ["random", "top"])
def test_shapes_dtypes_and_masks(synthetic: Digits, block_size: int, variant: str) -> None:
    images, labels, masks = make_block_mnist(*synthetic, classes=(2, 5, 9), variant=variant, block_size=block_size)
    assert images.shape == (180, 1, 2 * block_size, block_size) and images.dtype == torch.float32
    assert labels.shape == (180,) and labels.dtype == torch.int64
    assert masks.shape == images.shape and masks.dtype == torch.bool
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    for mask in masks:  # exactly one whole block per image
        upper, lower = mask[0, :block_size], mask[0, block_size:]
        assert (bool(upper.all()) and not bool(lower.any())) or (bool(lower.all()) and not bool(upper.any()))


@pytest.mark.parametrize("source", ["synthetic", "mnist"])
def test_signal_block_is_the_digit_and_null_block_is_shared(request: pytest.FixtureRequest, source: str) -> None:
    digits, digit_labels = request.getfixturevalue(source)
    classes = (0, 1)
    images, labels, masks = make_block_mnist(digits, digit_labels, classes=classes)
    expected_digits, expected_labels = _kept(digits, digit_labels, classes)
    signal, null, top = _blocks(images, masks)
    assert torch.equal(labels, expected_labels)
    assert torch.equal(signal, expected_digits)  # the digit pixels, exactly, where the mask is True
    assert torch.equal(null, null[:1].expand_as(null))  # one null block for every image of either label
    assert 0 < int(top.sum()) < len(top)


def test_null_square_is_a_hollow_square_with_digit_like_statistics(mnist: Digits) -> None:
    digits, digit_labels = mnist
    images, _, masks = make_block_mnist(digits, digit_labels, classes=(3, 8))
    null = _blocks(images, masks)[1][0, 0]
    assert torch.equal(null, null.T) and torch.equal(null, null.flip(0)) and torch.equal(null, null.flip(1))
    assert float(null[:3].abs().sum()) == 0.0 and float(null[10:18, 10:18].abs().sum()) == 0.0  # margin, hole
    assert (null[14] > 0).int().diff().abs().sum() == 4  # the middle row crosses two strokes
    ink = digits[(digit_labels == 3) | (digit_labels == 8)]
    ink = ink[ink > 0]
    torch.testing.assert_close(null[null > 0].mean(), ink.mean())  # the digits' mean stroke intensity
    digit_mean = float(digits[(digit_labels == 3) | (digit_labels == 8)].mean())
    assert 0.7 < float(null.mean()) / digit_mean < 1.4  # about as much ink as a digit


def test_null_pattern_tensor_is_used_as_given(synthetic: Digits) -> None:
    pattern = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(3))
    images, _, masks = make_block_mnist(*synthetic, null_pattern=pattern, block_size=16)
    null = _blocks(images, masks)[1]
    assert torch.equal(null, pattern.expand_as(null))


def test_random_variant_is_balanced_and_independent_of_the_label(mnist: Digits) -> None:
    _, labels, masks = make_block_mnist(*mnist, classes=(0, 1), variant="random", seed=5)
    top = masks[:, 0, 0, 0]
    for label in (0, 1):
        count, n = int(top[labels == label].sum()), int((labels == label).sum())
        assert n == 500 and abs(count - n / 2) < 5 * (n / 4) ** 0.5  # binomial(500, 1/2) within 5 sd
    _, _, masks_top = make_block_mnist(*mnist, classes=(0, 1), variant="top", seed=5)
    assert bool(masks_top[:, :, :28].all()) and not bool(masks_top[:, :, 28:].any())


def test_classes_map_to_their_index_and_others_are_dropped(synthetic: Digits) -> None:
    digits, digit_labels = synthetic
    images, labels, masks = make_block_mnist(digits, digit_labels, classes=(7, 3), variant="top")
    expected_digits, expected_labels = _kept(digits, digit_labels, (7, 3))
    assert torch.equal(labels, expected_labels) and labels.bincount().tolist() == [60, 60]
    assert torch.equal(images[:, :, :28], expected_digits)
    assert torch.equal(expected_labels[expected_labels == 0], torch.zeros(60, dtype=torch.long))


def test_block_size_resizes_digits_and_null_block(synthetic: Digits) -> None:
    digits, digit_labels = synthetic
    reference_images, _, reference_masks = make_block_mnist(digits, digit_labels, variant="top")
    reference_null = _blocks(reference_images, reference_masks)[1][:1]
    small, _, small_masks = make_block_mnist(digits, digit_labels, variant="top", block_size=14)
    signal, null, _ = _blocks(small, small_masks)
    kept = _kept(digits, digit_labels, (0, 1))[0]
    torch.testing.assert_close(signal, F.avg_pool2d(kept, 2))  # shrinking averages areas
    torch.testing.assert_close(null[:1], F.avg_pool2d(reference_null, 2))
    large, _, large_masks = make_block_mnist(digits, digit_labels, variant="top", block_size=42)
    signal, null, _ = _blocks(large, large_masks)
    for i in (0, 75):
        torch.testing.assert_close(signal[i, 0], _bilinear(kept[i, 0], 42))
    torch.testing.assert_close(null[0, 0], _bilinear(reference_null[0, 0], 42))


def test_seeds_are_reproducible_and_matter(synthetic: Digits) -> None:
    first = make_block_mnist(*synthetic, seed=1)
    again = make_block_mnist(*synthetic, seed=1)
    other = make_block_mnist(*synthetic, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[2], other[2]) and torch.equal(first[1], other[1])
    top_a = make_block_mnist(*synthetic, variant="top", seed=1)
    top_b = make_block_mnist(*synthetic, variant="top", seed=2)
    assert all(torch.equal(a, b) for a, b in zip(top_a, top_b))  # nothing random left to seed
    assert torch.equal(make_synthetic_digits(4, seed=1)[0], make_synthetic_digits(4, seed=1)[0])
    assert not torch.equal(make_synthetic_digits(4, seed=1)[0], make_synthetic_digits(4, seed=2)[0])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"classes": (1,)}, "classes"),
        ({"classes": (1, 1)}, "classes"),
        ({"classes": (0, 10)}, "classes"),
        ({"classes": "01"}, "classes"),
        ({"classes": (0, True)}, "classes"),
        ({"variant": "bottom"}, "variant"),
        ({"block_size": 7}, "block_size"),
        ({"block_size": 28.0}, "block_size"),
        ({"null_pattern": "circle"}, "null_pattern"),
        ({"null_pattern": torch.zeros(1, 28, 27)}, "null_pattern"),
        ({"null_pattern": torch.full((1, 28, 28), 1.5)}, "null_pattern"),
        ({"null_pattern": torch.zeros(1, 28, 28, dtype=torch.long)}, "null_pattern"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_options_are_named(synthetic: Digits, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        make_block_mnist(*synthetic, **kwargs)
    with pytest.raises(ValueError, match=f"`{name}`"):
        BlockMNISTDataModule(source="synthetic", **kwargs)


def test_invalid_data_is_named(synthetic: Digits) -> None:
    digits, labels = synthetic
    with pytest.raises(ValueError, match="`classes`.*occur.*`digit_labels`"):
        make_block_mnist(digits[labels < 2], labels[labels < 2], classes=(0, 2))
    with pytest.raises(ValueError, match="`digits`.*28, 28"):
        make_block_mnist(digits[:, :, :27], labels)
    with pytest.raises(ValueError, match="`digits`.*0, 1"):
        make_block_mnist(digits * 2, labels)
    with pytest.raises(ValueError, match="`digit_labels`"):
        make_block_mnist(digits, labels.float())
    with pytest.raises(ValueError, match="`digit_labels`"):
        make_block_mnist(digits, labels[1:])
    with pytest.raises(ValueError, match="`digit_labels`.*0..9"):
        make_block_mnist(digits, labels + 1)
    with pytest.raises(ValueError, match="`digits`.*blank"):
        make_block_mnist(torch.zeros_like(digits), labels)
    images, block_labels, masks = make_block_mnist(digits, labels)
    with pytest.raises(ValueError, match="`images`"):
        BlockMNIST(images[:, :, :40], block_labels, masks)
    with pytest.raises(ValueError, match="`labels`"):
        BlockMNIST(images, block_labels + 1, masks)
    with pytest.raises(ValueError, match="`masks`"):
        BlockMNIST(images, block_labels, masks.float())
    with pytest.raises(ValueError, match="`classes`"):
        BlockMNIST(images, block_labels, masks, classes=(0,))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"source": "emnist"}, "source"),
        ({"source": "mnist5k", "root": "/data"}, "root"),
        ({"source": "torchvision"}, "root"),
        ({"source": "synthetic", "num_per_class": 0}, "num_per_class"),
        ({"source": "mnist5k", "num_per_class": 501}, "num_per_class"),
        ({"source": "synthetic", "train": False}, "train"),
    ],
)
def test_invalid_sources_are_named(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}"):
        load_digits(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"num_val": 0}, "num_val"), ({"batch_size": 0}, "batch_size"), ({"num_workers": -1}, "num_workers"),
     ({"root": "/data"}, "root")],
)
def test_invalid_data_module_arguments_are_named(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        BlockMNISTDataModule(source="synthetic", **kwargs)


def test_mnist5k_source_and_per_class_subsets(mnist: Digits) -> None:
    digits, labels = mnist
    reference_digits, reference_labels = load_mnist5k()
    assert torch.equal(digits, reference_digits) and torch.equal(labels, reference_labels)
    sub_digits, sub_labels = load_digits("mnist5k", num_per_class=20, seed=4)
    assert sub_labels.bincount().tolist() == [20] * 10
    flat = digits.flatten(1)
    for image, label in zip(sub_digits.flatten(1)[::7], sub_labels[::7]):  # every subset digit is a source digit
        assert bool(labels[(flat == image).all(1)].eq(label).any())
    assert torch.equal(sub_digits, load_digits("mnist5k", num_per_class=20, seed=4)[0])
    assert not torch.equal(sub_digits, load_digits("mnist5k", num_per_class=20, seed=5)[0])


def test_torchvision_source_reads_local_files_and_never_downloads(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path}.*MNIST.*raw.*never downloads"):
        load_digits("torchvision", root=tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (30, 28, 28), dtype=np.uint8)
    digit_labels = np.arange(30, dtype=np.uint8) % 10
    for split in ("train", "t10k"):  # torchvision's idx format: big-endian magic and sizes, then uint8 data
        (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">iiii", 2051, 30, 28, 28) + pixels.tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">ii", 2049, 30) + digit_labels.tobytes())
    digits, labels = load_digits("torchvision", root=str(tmp_path), train=False)
    np.testing.assert_allclose(digits[:, 0].numpy(), pixels / 255.0, rtol=1e-6)
    assert labels.tolist() == digit_labels.tolist() and labels.dtype == torch.int64
    _, subset_labels = load_digits("torchvision", root=tmp_path, num_per_class=2)
    assert subset_labels.bincount().tolist() == [2] * 10


def _fingerprints(images: Tensor) -> Tensor:
    """One number per image, for comparing sets of images irrespective of order."""
    weights = torch.rand(images[0].numel(), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return (images.flatten(1).double() @ weights).sort().values


def test_data_module_splits_all_images_and_yields_triples(tmp_path: Path) -> None:
    dm = BlockMNISTDataModule(source="synthetic", num_per_class=30, num_val=20, batch_size=16, normalize=False, seed=3)
    dm.setup("fit")
    train, val = dm.train_set, dm.val_set
    assert dm.normalization is None and (len(train), len(val)) == (40, 20)
    assert val.labels.bincount().tolist() == [10, 10] and train.labels.bincount().tolist() == [20, 20]
    assert train.classes == val.classes == (0, 1)
    images, _, _ = make_block_mnist(*load_digits("synthetic", num_per_class=30, seed=3), seed=3)
    torch.testing.assert_close(_fingerprints(torch.cat([train.images, val.images])), _fingerprints(images))
    x, y, mask = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 56, 28) and y.dtype == torch.int64 and mask.shape == x.shape
    assert len(next(iter(dm.val_dataloader()))) == 3
    dm.setup("validate")
    assert dm.train_set is train  # setup is idempotent
    trainer = Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(SmallCNNClassifier(num_classes=2, width=4, depth=2), datamodule=dm)  # reads batch[0], batch[1]
    assert torch.isfinite(trainer.callback_metrics["val/acc"])


def test_data_module_on_mnist5k_standardises_like_mnist() -> None:
    dm = BlockMNISTDataModule(classes=(0, 1))
    dm.setup("fit")
    assert dm.normalization == ((0.1307,), (0.3081,))
    assert len(dm.train_set) + len(dm.val_set) == 1000 and dm.val_set.labels.bincount().tolist() == [100, 100]
    images = dm.train_set.images
    assert abs(float(images.mean())) < 0.05 and abs(float(images.std()) - 1) < 0.06
    mean, std = dm.normalization
    assert float(images.min() * std[0] + mean[0]) > -1e-6 and float(images.max() * std[0] + mean[0]) < 1 + 1e-6
    with pytest.raises(ValueError, match="`num_val`"):
        BlockMNISTDataModule(num_val=1000).setup("fit")


def _accuracy_of_linear_model(train: Digits, test: Digits, num_classes: int, steps: int = 150) -> float:
    torch.manual_seed(0)
    model = torch.nn.Linear(train[0][0].numel(), num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(train[0].flatten(1)), train[1]).backward()
        optimizer.step()
    with torch.no_grad():
        return float((model(test[0].flatten(1)).argmax(1) == test[1]).float().mean())


def test_synthetic_digits_carry_the_label() -> None:
    train = make_block_mnist(*make_synthetic_digits(200, seed=0))[:2]
    test = make_block_mnist(*make_synthetic_digits(100, seed=1), seed=1)[:2]
    assert _accuracy_of_linear_model(train, test, 2) > 0.95  # 0 vs 1, either block position
    assert _accuracy_of_linear_model(make_synthetic_digits(100, seed=0), make_synthetic_digits(30, seed=1), 10) > 0.8
    shuffled = (train[0], train[1][torch.randperm(len(train[1]))])
    assert _accuracy_of_linear_model(shuffled, test, 2) < 0.7  # the model is not just memorising: labels matter


def test_synthetic_digits_look_like_mnist() -> None:
    digits, labels = make_synthetic_digits(50)
    real = load_mnist5k()[0]
    assert digits.shape == (500, 1, 28, 28) and labels.bincount().tolist() == [50] * 10
    assert float(digits.min()) == 0.0 and float(digits.max()) == 1.0
    assert 0.5 < float((digits > 0).float().mean()) / float((real > 0).float().mean()) < 1.5  # ink area
    border = torch.cat([digits[..., 0, :], digits[..., -1, :], digits[..., :, 0], digits[..., :, -1]])
    assert float(border.sum()) == 0.0  # the digit stays inside the frame
