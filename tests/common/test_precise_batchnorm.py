"""PreciseBatchNorm recomputes BatchNorm statistics as a direct per-batch average and changes nothing else."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning.callbacks.precise_batchnorm import PreciseBatchNorm, recompute_batchnorm


def _model() -> nn.Sequential:
    # Dropout before BatchNorm: if dropout were active during the pass, the statistics would be off by its scaling.
    return nn.Sequential(nn.Dropout(0.5), nn.BatchNorm2d(2), nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3, momentum=0.3))


def _expected_stats(batches: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Average over batches of the per-channel batch mean and unbiased variance."""
    means = torch.stack([b.transpose(0, 1).flatten(1).mean(1) for b in batches])
    variances = torch.stack([b.transpose(0, 1).flatten(1).var(1, unbiased=True) for b in batches])
    return means.mean(0), variances.mean(0)


def test_recompute_matches_per_batch_average_and_restores_everything() -> None:
    model = _model().train()
    model[0].eval()  # mixed modes must come back as they were
    batches = [torch.randn(8, 2, 6, 6) * 3 + 1 for _ in range(3)]
    rng_before = torch.get_rng_state()
    recompute_batchnorm(model, batches + [torch.full((8, 2, 6, 6), 1e3)], num_batches=3)  # the 4th is not used
    mean, var = _expected_stats(batches)
    torch.testing.assert_close(model[1].running_mean, mean)
    torch.testing.assert_close(model[1].running_var, var)
    assert int(model[1].num_batches_tracked) == 3
    # The second layer sees the conv of the first layer's training-mode (batch-normalised) output.
    with torch.no_grad():
        inner = [model[2](nn.functional.batch_norm(b, None, None, training=True)) for b in batches]
    torch.testing.assert_close(model[3].running_mean, _expected_stats(inner)[0], atol=1e-5, rtol=1e-5)
    assert [m.training for m in model] == [False, True, True, True]
    assert model[1].momentum == 0.1 and model[3].momentum == 0.3
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_model_without_batchnorm_is_untouched() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    before = [p.clone() for p in model.parameters()]
    recompute_batchnorm(model, [torch.randn(2, 1, 5, 5)])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


class _Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(16, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val/loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("num_batches", [None, 2])
def test_callback_sets_training_statistics_before_validation(num_batches: int) -> None:
    images = torch.randn(40, 1, 4, 4) * 2 + 5
    data = TensorDataset(images, torch.randint(0, 2, (40,)))
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[PreciseBatchNorm(num_batches=num_batches)],
    )
    model = _Module()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        trainer.fit(model, DataLoader(data, batch_size=10), DataLoader(data, batch_size=20))
    used = list(images.split(10))[: num_batches or None]
    mean, var = _expected_stats(used)
    torch.testing.assert_close(model.net[0].running_mean, mean)
    torch.testing.assert_close(model.net[0].running_var, var)
    assert model.net[0].momentum == 0.1


def test_invalid_num_batches_is_named() -> None:
    with pytest.raises(ValueError, match="num_batches"):
        PreciseBatchNorm(num_batches=0)
    with pytest.raises(TypeError, match="`num_batches` must be a positive integer or None \\(a full pass\\): pass an int"):
        PreciseBatchNorm(num_batches=2.0)  # type: ignore[arg-type]
