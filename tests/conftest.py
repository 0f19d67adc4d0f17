"""Shared fixtures: deterministic seeding and a tiny non-linear CNN factory."""

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same global RNG state."""
    torch.manual_seed(0)


@pytest.fixture
def single_thread() -> Iterator[None]:
    """One intra-op thread for the duration of a test; opt in with ``pytest.mark.usefixtures("single_thread")``.

    The tiny tensors of the core tests run many times faster single-threaded on small, shared machines.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_cnn(channels: int = 1, classes: int = 3, dtype: torch.dtype = torch.float64, seed: int = 0) -> nn.Module:
    """A small non-linear classifier (conv, tanh, pooling, linear) with seeded, scaled-up weights.

    The default initialisation gives nearly constant outputs and Shapley values close to zero; larger weights make
    every band matter, so that comparisons between implementations are sensitive.
    """
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, classes),
    )
    with torch.no_grad():
        model[0].weight.mul_(4)
        model[-1].weight.mul_(10)
    return model.to(dtype).eval()


@pytest.fixture
def make_cnn() -> Callable[..., nn.Module]:
    """Factory ``make_cnn(channels=1, classes=3, dtype=torch.float64, seed=0)`` for a tiny seeded CNN."""
    return _tiny_cnn
