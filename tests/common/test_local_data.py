"""Local data loaders read a tiny ImageFolder and a tiny CIFAR-10 folder that the tests write themselves."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from PIL import Image

from iaside_lightning.datasets import CIFAR10_NORMALIZATION, LocalImageDataModule, load_cifar10, load_image_folder

CLASSES = ["cat", "dog", "fox"]


def _write_image_folder(root: Path, per_class: int = 5, size: tuple[int, int] = (12, 10)) -> dict[str, np.ndarray]:
    """``root/<class>/<i>.png`` RGB images with random pixels; returns ``{relative path: HxWx3 uint8 array}``."""
    rng = np.random.default_rng(0)
    pixels = {}
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(array).save(root / name / f"{i}.png")
            pixels[f"{name}/{i}.png"] = array
    return pixels


def _write_cifar10(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[np.ndarray, list[int]]]:
    """A tiny ``cifar-10-batches-py`` folder in the python pickle format (5 train batches of 4, a test batch of 6).

    Its files cannot match torchvision's MD5 checksums of the real ones, so the checksum test is switched off.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    batches = {}
    for name, size in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 6)]:
        data, labels = rng.integers(0, 256, (size, 3072), dtype=np.uint8), rng.integers(0, 10, size).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{k}" for k in range(10)]}, f)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    return batches


def test_image_folder_pixels_labels_and_normalisation(tmp_path: Path) -> None:
    pixels = _write_image_folder(tmp_path)
    plain = load_image_folder(tmp_path)
    assert plain.classes == CLASSES and len(plain) == 15
    for (path, label), (image, target) in zip(plain.samples, plain):
        relative = Path(path).relative_to(tmp_path).as_posix()
        assert target == label == CLASSES.index(relative.split("/")[0])
        expected = torch.from_numpy(pixels[relative]).permute(2, 0, 1).float() / 255
        torch.testing.assert_close(image, expected)
    mean, std = (0.2, 0.4, 0.6), (0.5, 0.25, 0.1)
    normalised = load_image_folder(tmp_path, normalization=(mean, std))
    torch.testing.assert_close(
        normalised[3][0], (plain[3][0] - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    )
    small_grey = load_image_folder(tmp_path, image_size=(8, 6), grayscale=True)
    assert small_grey[0][0].shape == (1, 8, 6)


def test_image_folder_datamodule_split_and_batches(tmp_path: Path) -> None:
    _write_image_folder(tmp_path / "train", per_class=5)
    dm = LocalImageDataModule(str(tmp_path / "train"), val_fraction=0.4, batch_size=4, seed=3)
    dm.setup("fit")
    assert len(dm.train_set) == 9 and len(dm.val_set) == 6
    assert set(dm.train_set.indices).isdisjoint(dm.val_set.indices)
    val_labels = [dm.val_set.dataset.targets[i] for i in dm.val_set.indices]
    assert sorted(val_labels) == [0, 0, 1, 1, 2, 2]  # stratified
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 12, 10) and y.dtype == torch.int64
    assert dm.normalization is None

    _write_image_folder(tmp_path / "val", per_class=2)
    dm = LocalImageDataModule(str(tmp_path / "train"), val_root=str(tmp_path / "val"), image_size=16, batch_size=6)
    dm.setup("fit")
    assert len(dm.train_set) == 15 and len(dm.val_set) == 6
    assert next(iter(dm.val_dataloader()))[0].shape == (6, 3, 16, 16)


def test_cifar10_reads_the_python_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = _write_cifar10(tmp_path, monkeypatch)
    train = load_cifar10(tmp_path, train=True, normalization=None)
    test = load_cifar10(tmp_path, train=False, normalization=None)
    assert len(train) == 20 and len(test) == 6
    data, labels = batches["data_batch_2"]
    image, label = train[4 + 1]  # second image of the second batch
    assert label == labels[1]
    torch.testing.assert_close(image, torch.from_numpy(data[1].reshape(3, 32, 32)).float() / 255)

    dm = LocalImageDataModule(str(tmp_path), kind="cifar10", batch_size=6)
    assert dm.normalization == CIFAR10_NORMALIZATION
    dm.setup("fit")
    x, y = next(iter(dm.val_dataloader()))
    mean, std = (torch.tensor(v)[:, None, None] for v in CIFAR10_NORMALIZATION)
    raw = torch.from_numpy(batches["test_batch"][0].reshape(6, 3, 32, 32)).float() / 255
    torch.testing.assert_close(x, (raw - mean) / std)
    assert y.tolist() == batches["test_batch"][1]


def test_missing_files_say_where_they_were_expected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py.*never downloads"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="No image folder"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(FileNotFoundError, match="one sub-folder per class"):
        load_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        LocalImageDataModule(str(tmp_path / "missing")).setup("fit")


@pytest.mark.parametrize(("kwargs", "match"), [({"kind": "imagenet"}, "kind"), ({"val_fraction": 1.0}, "val_fraction")])
def test_invalid_options_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LocalImageDataModule("/data", **kwargs)
