"""Shared by the MNIST-5k examples: train small CNNs that differ in robustness, cached in a temporary directory.

Not an example itself. ``train_or_load(config)`` trains a :class:`SmallCNNClassifier` on MNIST-5k (4,000 training
images, 1,000 validation images) with the config's width, epochs, label noise and training-time augmentation (the
corruption suite's Gaussian noise or blur, uniform noise or box blur outside the suite, or PGD), and caches the
weights under ``tempfile.gettempdir()/iaside_zoo`` keyed by the config, so a second run loads them in a second.
"""

import argparse
import dataclasses
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Literal, Optional

import torch
from torch import Tensor, nn

from iaside_lightning.corruptions import corrupt, pgd
from iaside_lightning.datasets import MNIST5kDataModule
from iaside_lightning.models import SmallCNNClassifier

__all__ = [
    "BASE_CONFIG",
    "MNIST_NORMALIZATION",
    "ZooConfig",
    "accuracy",
    "augment_batch",
    "default_cache_dir",
    "train_or_load",
    "validation_pixels",
]

MNIST_NORMALIZATION = MNIST5kDataModule.normalization
#: Bump when training code changes, so that cached weights of older code are not reused.
CACHE_VERSION = 3
BATCH_SIZE = 64
Augment = Literal["none", "noise", "blur", "pgd", "uniform_noise", "box_blur"]
#: Half-width of the ``"uniform_noise"`` augmentation at severities 1-5 (standard deviations 0.09 to 0.43, the range
#: of the suite's Gaussian noise, whose distribution it does not share).
UNIFORM_NOISE_HALF_WIDTH = (0.15, 0.3, 0.45, 0.6, 0.75)
#: Side of the ``"box_blur"`` augmentation's square mean filter, cycled through (1: a clean batch; 3 and 5: standard
#: deviations 0.8 and 1.4 pixels, within the range of the suite's Gaussian blur, whose kernel shape it does not share).
BOX_BLUR_SIZES = (1, 3, 5)


@dataclasses.dataclass(frozen=True)
class ZooConfig:
    """How one model is trained. ``augment`` is applied in pixel space to every training batch."""

    name: str
    width: int = 16
    epochs: int = 4
    augment: Augment = "none"
    label_noise: float = 0.0
    train_epsilon: float = 0.1  # PGD adversarial training radius (augment="pgd")
    num_train: Optional[int] = None  # first training images only (quick runs); None: all 4,000
    lr: float = 2e-2  # peak of the one-cycle schedule
    seed: int = 0

    def key(self) -> str:
        text = json.dumps({**dataclasses.asdict(self), "version": CACHE_VERSION}, sort_keys=True)
        return f"{self.name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


#: The zoo's reference model, also the model attacked in the spectral SNR example.
BASE_CONFIG = ZooConfig("base (width 8)", width=8)


def augment_batch(pixels: Tensor, labels: Tensor, model: nn.Module, config: ZooConfig, step: int) -> Tensor:
    """The config's training-time perturbation of a pixel-space batch (a new seed every step and model seed).

    ``"noise"``/``"blur"``: the suite's Gaussian noise / blur at a severity cycling through 1-5; ``"uniform_noise"``:
    uniform noise of half-width :data:`UNIFORM_NOISE_HALF_WIDTH` (severity cycling through 1-5), clipped to
    ``[0, 1]``; ``"box_blur"``: a square mean filter of side :data:`BOX_BLUR_SIZES` (cycled), reflecting edges; the
    last two are not in the corruption suite. ``"pgd"``: 2-step L-inf PGD of radius ``train_epsilon`` from a random
    start against the current model (Madry-style adversarial training, few steps to keep it cheap).
    """
    seed = config.seed * 1_000_003 + step
    if config.augment == "pgd":
        return pgd(model, pixels, labels, config.train_epsilon, steps=2, normalization=MNIST_NORMALIZATION, seed=seed)
    if config.augment == "uniform_noise":
        half_width = UNIFORM_NOISE_HALF_WIDTH[step % len(UNIFORM_NOISE_HALF_WIDTH)]
        noise = torch.rand(pixels.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        return (pixels + half_width * noise).clamp(0.0, 1.0)
    if config.augment == "box_blur":
        size = BOX_BLUR_SIZES[step % len(BOX_BLUR_SIZES)]
        padded = nn.functional.pad(pixels, [size // 2] * 4, mode="reflect")
        return nn.functional.avg_pool2d(padded, size, stride=1)
    corruption = {"noise": "gaussian_noise", "blur": "gaussian_blur"}[config.augment]
    return corrupt(pixels, corruption, severity=step % 5 + 1, seed=seed)


def add_run_arguments(parser: argparse.ArgumentParser, quick_help: str) -> None:
    """The options both MNIST examples share: threads, weight cache, figures folder and the ``--quick`` mode."""
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 was fastest on a busy CPU)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="trained weights")
    parser.add_argument("--figures-dir", type=Path, default=None, help="default docs/figures (quick: outputs/...)")
    parser.add_argument("--quick", action="store_true", help=quick_help)


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "iaside_zoo"


def _data(config: ZooConfig) -> MNIST5kDataModule:
    data = MNIST5kDataModule(batch_size=64, num_val=1000, label_noise=config.label_noise, seed=0, noise_seed=0)
    data.setup("fit")
    return data


def train_or_load(config: ZooConfig, cache_dir: Optional[Path] = None, verbose: bool = True) -> SmallCNNClassifier:
    """The trained model of ``config`` in eval mode, from the cache when there, else trained and cached.

    A plain PyTorch loop trains the :class:`SmallCNNClassifier` (the zoo needs no callback, and Lightning's per-step
    overhead doubled the training time of these tiny models on a small CPU), with Adam and a one-cycle learning-rate
    schedule peaking at ``config.lr``: without it these global-average-pooling CNNs stay below 90% validation
    accuracy after four epochs of 4,000 images.
    """
    path = (cache_dir or default_cache_dir()) / f"{config.key()}.pt"
    torch.manual_seed(config.seed)
    model = SmallCNNClassifier(in_channels=1, num_classes=10, width=config.width, lr=config.lr)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    images, labels = _data(config).train_set.tensors
    if config.num_train is not None:
        images, labels = images[: config.num_train], labels[: config.num_train]
    (mean,), (std,) = MNIST_NORMALIZATION
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = -(-len(labels) // BATCH_SIZE)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    start, step = time.perf_counter(), 0
    model.train()
    for _ in range(config.epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(BATCH_SIZE):
            x, y = images[batch], labels[batch]
            if config.augment != "none":
                x = (augment_batch((x * std + mean).clamp(0.0, 1.0), y, model, config, step) - mean) / std
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
    if verbose:
        print(f"  trained {config.name!r} in {time.perf_counter() - start:.0f} s")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval()


def accuracy(model: nn.Module, pixels: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` (which expects normalised inputs) on pixel-space images."""
    (mean,), (std,) = MNIST_NORMALIZATION
    with torch.inference_mode():
        hits = sum(int((model((x - mean) / std).argmax(1) == y).sum()) for x, y in zip(pixels.split(batch_size),
                                                                                     labels.split(batch_size)))
    return hits / len(labels)


def validation_pixels(num: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """The (first ``num``) MNIST-5k validation images in pixel space ``[0, 1]`` and their clean labels."""
    data = _data(ZooConfig(name="validation"))
    images, labels = data.val_set.tensors
    (mean,), (std,) = MNIST_NORMALIZATION
    pixels = (images * std + mean).clamp(0.0, 1.0)
    return (pixels, labels) if num is None else (pixels[:num], labels[:num])
