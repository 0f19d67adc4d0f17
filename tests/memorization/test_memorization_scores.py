"""``memorization_scores``: shape, determinism, label-free signature, a planted memorised sample, bad options."""

import dataclasses
import inspect
import math

import pytest
import torch
from torch import Tensor, nn

from iaside_lightning.functional import (
    MemorizationOptions,
    lowpass_coalitions,
    memorization_audit,
    memorization_scores,
)

pytestmark = pytest.mark.usefixtures("single_thread")

SIZE = 16


class PlantedModel(nn.Module):
    """Class 0 <- brightness on the left half, class 1 <- on the right (low frequencies), plus a "memorising"
    pathway: the Nyquist checkerboard (the highest band only) votes strongly for class 1."""

    def __init__(self) -> None:
        super().__init__()
        index = torch.arange(SIZE)
        self.register_buffer("checker", ((-1.0) ** (index[:, None] + index[None, :])))

    def forward(self, x: Tensor) -> Tensor:
        left, right = x[..., : SIZE // 2].mean((1, 2, 3)), x[..., SIZE // 2 :].mean((1, 2, 3))
        memorised = (x[:, 0] * self.checker).mean((1, 2))
        return torch.stack([8 * (left - right), 8 * (right - left) + 60 * memorised], 1)


def _blobs(sides: list[int]) -> Tensor:
    """Smooth Gaussian blobs on the left (0) or right (1) half."""
    grid = torch.arange(SIZE, dtype=torch.float32)
    images = []
    for side in sides:
        cx = 4.0 if side == 0 else 11.0
        images.append(torch.exp(-((grid[:, None] - 7.5) ** 2 + (grid[None, :] - cx) ** 2) / 8.0))
    return torch.stack(images)[:, None]


def test_a_planted_memorised_sample_scores_highest_though_its_loss_is_low():
    sides = [0, 1, 0, 1, 0, 1, 0]
    images, labels = _blobs(sides), torch.tensor(sides)
    images[-1, 0] += 0.5 * PlantedModel().checker  # a left blob (class 0) fitted as class 1 through high frequency
    labels[-1] = 1
    model = PlantedModel()
    audit = memorization_audit(model, images, labels, MemorizationOptions(num_bands=4))
    assert int(audit.scores.argmax()) == len(sides) - 1
    assert audit.scores[-1] > audit.scores[:-1].max() + 1.0
    assert -audit.full_values[-1] < 1e-3  # memorised: the full image's loss does not flag it
    torch.testing.assert_close(memorization_scores(model, images, labels, num_bands=4), audit.scores)


def test_scores_have_one_value_per_sample_and_are_deterministic(make_cnn):
    model = make_cnn(channels=1, classes=3)
    images, labels = torch.rand(6, 1, 16, 16, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    first = memorization_scores(model, images, labels, num_bands=4, fill="permute", seed=2)
    again = memorization_scores(model, images, labels, num_bands=4, fill="permute", seed=2)
    assert first.shape == (6,) and first.dtype == torch.float64 and torch.equal(first, again)
    options = MemorizationOptions(num_bands=4, cutoffs=[1, 3], fill="permute", seed=2)
    audit = memorization_audit(model, images, labels, options)
    assert audit.cutoffs == (1, 3) and audit.lowpass_values.shape == (6, 2) and audit.kept.shape == (2,)


def test_the_score_averages_the_cut_offs_where_most_labels_keep_a_majority(make_cnn):
    model = make_cnn(channels=1, classes=3)
    images, labels = torch.rand(8, 1, 16, 16, dtype=torch.float64), torch.arange(8) % 3
    audit = memorization_audit(model, images, labels, MemorizationOptions(num_bands=4))
    torch.testing.assert_close(audit.kept, (audit.lowpass_values >= math.log(0.5)).double().mean(0))
    majority = tuple(k for k, share in zip(audit.cutoffs, audit.kept.tolist()) if share >= 0.5)
    best = tuple(k for k, share in zip(audit.cutoffs, audit.kept.tolist()) if share == audit.kept.max())
    assert audit.selected == (majority or best)
    columns = [audit.cutoffs.index(k) for k in audit.selected]
    torch.testing.assert_close(audit.scores, -audit.lowpass_values[:, columns].mean(1))


def test_without_a_majority_anywhere_the_best_cut_off_is_used():
    images, labels = _blobs([0, 0, 0, 0]), torch.tensor([1, 1, 1, 0])  # three labels the model never fits
    audit = memorization_audit(PlantedModel(), images, labels, MemorizationOptions(num_bands=4))
    assert float(audit.kept.max()) < 0.5 and len(audit.selected) >= 1
    assert all(float(audit.kept[audit.cutoffs.index(k)]) == float(audit.kept.max()) for k in audit.selected)


def test_the_audit_is_label_free():
    """It takes the model, images and training labels and options about bands only: no noisy-label flags, no clean
    labels, nothing about which samples are wrong."""
    options = {"num_bands", "cutoffs", "band_shape", "band_edges", "fill", "normalization", "output_transform", "seed"}
    assert set(inspect.signature(memorization_scores).parameters) == {"model", "images", "labels"} | options
    assert set(inspect.signature(memorization_audit).parameters) == {"model", "images", "labels", "options"}
    assert {field.name for field in dataclasses.fields(MemorizationOptions)} == options


def test_lowpass_coalitions_keep_the_lowest_bands():
    assert lowpass_coalitions(3, [1, 2]).tolist() == [[1, 0, 0], [1, 1, 0]]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cutoffs": [0]}, "cutoffs"),
        ({"cutoffs": [4]}, "cutoffs"),
        ({"cutoffs": []}, "cutoffs"),
        ({"cutoffs": [1, 1]}, "repeat"),
        ({"num_bands": 1}, "num_bands"),
        ({"fill": "blur"}, "fill"),
    ],
)
def test_bad_options_name_the_argument(make_cnn, kwargs, match):
    options = {"num_bands": 4} | kwargs
    with pytest.raises(ValueError, match=match):
        memorization_scores(make_cnn(), torch.rand(2, 1, 16, 16, dtype=torch.float64), torch.tensor([0, 1]), **options)
