"""AdversarialCNNClassifier: the attack leaves BN statistics, modes, grads and the global RNG alone; the loss is
the documented mix (exactly the standard loss at clean_weight=1); hparams and logging; robust training helps."""

import copy
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.cli import LightningCLI
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning.functional import pgd_attack
from iaside_lightning.models import AdversarialCNNClassifier, SmallCNNClassifier

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`"),  # *_step called without a Trainer
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings("ignore:.*have no `val_dataloader`"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec"),
]

TINY = {"in_channels": 1, "num_classes": 3, "width": 4, "depth": 2}


def _batch(n: int = 8, size: int = 16, seed: int = 1) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=generator), torch.randint(0, 3, (n,), generator=generator)


def _buffers(model: nn.Module) -> dict[str, Tensor]:
    return {name: b.clone() for name, b in model.named_buffers()}


def _trainer(**kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )


def test_hyperparameters_are_saved_and_rebuild_the_model() -> None:
    options = {
        **TINY, "lr": 1e-2, "dropout": 0.1, "attack_epsilon": 0.3, "attack_norm": "linf", "attack_steps": 3,
        "attack_step_size": 0.2, "attack_bounds": (0.0, 1.0), "clean_weight": 0.25, "robust_validation": True,
        "attack_seed": 5,
    }
    model = AdversarialCNNClassifier(**options)
    assert dict(model.hparams) == options
    assert dict(AdversarialCNNClassifier(**model.hparams).hparams) == options
    defaults = dict(AdversarialCNNClassifier().hparams)
    assert defaults == {
        "in_channels": 1, "num_classes": 4, "width": 16, "depth": 3, "lr": 3e-3, "dropout": 0.0, "attack_epsilon": 1.5,
        "attack_norm": "l2", "attack_steps": 7, "attack_step_size": None, "attack_bounds": None, "clean_weight": 0.0,
        "robust_validation": False, "attack_seed": 0,
    }


@pytest.mark.filterwarnings("ignore::DeprecationWarning:lightning.pytorch.cli")  # Lightning's own use of jsonargparse
def test_lightning_cli_parses_the_typed_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["cli"])
    cli = LightningCLI(
        AdversarialCNNClassifier, run=False, save_config_callback=None, seed_everything_default=False,
        args=["--model.attack_norm=linf", "--model.attack_bounds=[-1, 2]", "--model.attack_step_size=0.1",
              "--model.robust_validation=true", "--trainer.logger=false", "--trainer.accelerator=cpu"],
    )
    hp = cli.model.hparams  # Lightning saves the parsed config here (the pair as a YAML list)
    parsed = (hp.attack_norm, tuple(hp.attack_bounds), hp.attack_step_size, hp.robust_validation)
    assert parsed == ("linf", (-1.0, 2.0), 0.1, True)
    with pytest.raises(SystemExit):  # a norm the Literal type does not allow is refused by the parser
        LightningCLI(
            AdversarialCNNClassifier, run=False, seed_everything_default=False, args=["--model.attack_norm=l1"]
        )


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"attack_epsilon": 0.0}, ValueError, "attack_epsilon"),
        ({"attack_epsilon": float("nan")}, ValueError, "attack_epsilon"),
        ({"attack_epsilon": True}, ValueError, "attack_epsilon"),
        ({"attack_norm": "l1"}, ValueError, "attack_norm"),
        ({"attack_steps": 0}, ValueError, "attack_steps"),
        ({"attack_steps": 2.0}, TypeError, "attack_steps"),
        ({"attack_step_size": -0.1}, ValueError, "attack_step_size"),
        ({"attack_bounds": (1.0, 0.0)}, ValueError, "attack_bounds"),
        ({"attack_bounds": (0.0, 1.0, 2.0)}, ValueError, "attack_bounds"),
        ({"attack_bounds": ("0", "1")}, ValueError, "attack_bounds"),
        ({"clean_weight": 1.5}, ValueError, "clean_weight"),
        ({"clean_weight": -0.1}, ValueError, "clean_weight"),
        ({"robust_validation": 1}, TypeError, "robust_validation"),
        ({"attack_seed": 1.0}, TypeError, "attack_seed"),
    ],
)
def test_bad_arguments_are_named(options: dict[str, Any], error: type[Exception], name: str) -> None:
    with pytest.raises(error, match=f"`{name}`"):
        AdversarialCNNClassifier(**TINY, **options)


def test_attack_keeps_batchnorm_statistics_modes_grads_and_global_rng() -> None:
    model = AdversarialCNNClassifier(**TINY, attack_epsilon=1.0, attack_steps=10, dropout=0.5).train()
    model.features[1].eval()  # a module the user froze must stay frozen
    modes = [m.training for m in model.modules()]
    buffers = _buffers(model)
    x, y = _batch()
    rng = torch.get_rng_state()
    adversarial, _ = model.attack(x, y)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(b, buffers[name]) for name, b in model.named_buffers())
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in model.parameters())
    assert not torch.equal(adversarial, x)
    assert ((adversarial - x).flatten(1).norm(dim=1) <= 1.0 + 1e-5).all()


def test_attack_matches_pgd_attack_with_the_madry_step_and_bounds() -> None:
    model = AdversarialCNNClassifier(
        **TINY, attack_epsilon=0.1, attack_norm="linf", attack_steps=4, attack_bounds=(0.0, 1.0)
    )
    x, y = _batch()
    adversarial, flipped = model.attack(x, y, seed=3)
    expected, expected_flipped = pgd_attack(
        model, x, y, 0.1, norm="linf", steps=4, step_size=2.5 * 0.1 / 4, bounds=(0, 1), seed=3
    )
    assert torch.equal(adversarial, expected) and torch.equal(flipped, expected_flipped)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert torch.equal(model.attack(x, y)[0], model.attack(x, y, seed=0)[0])  # the default seed is attack_seed
    assert not torch.equal(model.attack(x, y, seed=4)[0], adversarial)


@pytest.mark.parametrize("clean_weight", [0.0, 0.3])
def test_training_step_loss_batchnorm_update_and_grads_come_from_the_training_forward_only(clean_weight: float) -> None:
    """Reference: the attack on an untouched copy, then plain train-mode forwards of the inputs the loss uses."""
    model = AdversarialCNNClassifier(
        **TINY, attack_epsilon=2.0, attack_steps=25, clean_weight=clean_weight, attack_seed=7
    )
    reference = copy.deepcopy(model)
    x, y = _batch()
    adversarial, flipped = pgd_attack(reference, x, y, 2.0, steps=25, step_size=2.5 * 2.0 / 25, seed=7)  # global_step 0
    assert reference.training and all(torch.equal(b, c) for b, c in zip(reference.buffers(), model.buffers()))
    clean_loss = nn.functional.cross_entropy(reference(x), y) if clean_weight else 0.0  # clean forward first
    expected = clean_weight * clean_loss + (1 - clean_weight) * nn.functional.cross_entropy(reference(adversarial), y)
    expected.backward()

    rng = torch.get_rng_state()
    loss = model.training_step((x, y), 0)
    assert torch.equal(torch.get_rng_state(), rng)  # no dropout: nothing may draw from the global RNG
    assert all(p.grad is None for p in model.parameters())  # the attack left .grad alone
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=0.0)
    loss.backward()
    for (name, b), c in zip(model.named_buffers(), reference.buffers()):
        torch.testing.assert_close(b, c, rtol=1e-6, atol=1e-7, msg=name)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)
    assert model.features[1].num_batches_tracked.item() == (2 if clean_weight else 1)
    assert flipped.any()  # the attack is strong enough for the comparison to mean something


def test_clean_weight_one_is_exactly_standard_training() -> None:
    adversarial = AdversarialCNNClassifier(**TINY, clean_weight=1.0, dropout=0.2)
    standard = SmallCNNClassifier(**TINY, dropout=0.2)
    standard.load_state_dict(adversarial.state_dict())
    x, y = _batch()
    torch.manual_seed(3)  # same dropout masks: the attack (eval mode, own generator) draws nothing
    loss = adversarial.training_step((x, y), 0)
    torch.manual_seed(3)
    expected = standard.training_step((x, y), 0)
    assert torch.equal(loss, expected)
    assert all(torch.equal(b, c) for b, c in zip(adversarial.buffers(), standard.buffers()))


class _SeedRecorder(AdversarialCNNClassifier):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seeds: list[int] = []

    def attack(self, images: Tensor, labels: Tensor, seed: Any = None) -> tuple[Tensor, Tensor]:
        self.seeds.append(seed)
        return super().attack(images, labels, seed=seed)


def test_fit_seeds_each_step_with_attack_seed_plus_global_step_and_logs() -> None:
    x, y = _batch(n=12)
    model = _SeedRecorder(**TINY, attack_steps=2, attack_seed=10)
    trainer = _trainer(max_steps=3, limit_val_batches=0)
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=4))
    assert model.seeds == [10, 11, 12]
    assert {"train/loss", "train/adv_acc"} <= set(trainer.callback_metrics)
    assert 0 <= trainer.callback_metrics["train/adv_acc"] <= 1


def _squares(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """8x8 noisy images: a bright 3x3 square near the top-left corner (class 0) or the bottom-right one (class 1)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)
    images = 0.3 * torch.randn(n, 1, 8, 8, generator=generator)
    for image, label in zip(images, labels):
        corner = 1 if label == 0 else 4
        image[0, corner : corner + 3, corner : corner + 3] += 1.0
    return images, labels


@pytest.mark.parametrize("robust_validation", [False, True])
def test_validation_logs_robust_accuracy_when_asked(robust_validation: bool) -> None:
    model = AdversarialCNNClassifier(
        in_channels=1, num_classes=2, width=4, depth=2, lr=1e-2, attack_epsilon=1.5, attack_steps=5, clean_weight=1.0,
        robust_validation=robust_validation, attack_seed=2,
    )
    x, y = _squares(64, 1)
    trainer = _trainer(max_epochs=3)
    trainer.fit(model, DataLoader(TensorDataset(*_squares(128, 0)), batch_size=32))  # standard training: not robust
    (metrics,) = trainer.validate(model, DataLoader(TensorDataset(x, y), batch_size=64), verbose=False)
    assert metrics["val/acc"] == pytest.approx((model.eval()(x).argmax(1) == y).float().mean().item())
    if robust_validation:
        _, flipped = model.attack(x, y, seed=2)  # batch 0
        assert metrics["val/robust_acc"] == pytest.approx(1 - flipped.float().mean().item())
        assert metrics["val/robust_acc"] < metrics["val/acc"] - 0.1
    else:
        assert "val/robust_acc" not in metrics


def _clean_and_robust_accuracy(
    model: pl.LightningModule, data: tuple[Tensor, Tensor], epsilon: float
) -> tuple[float, float]:
    """Train 5 epochs on the squares task (fixed seeds), then accuracy and PGD accuracy at ``epsilon`` on ``data``."""
    torch.manual_seed(0)
    pl.seed_everything(0, verbose=False)
    _trainer(max_epochs=5).fit(model, DataLoader(TensorDataset(*_squares(256, 0)), batch_size=32, shuffle=True))
    x, y = data
    clean = (model.eval()(x).argmax(1) == y).float().mean().item()
    _, flipped = pgd_attack(model, x, y, epsilon, steps=20, step_size=2.5 * epsilon / 20, seed=1)
    return clean, 1 - flipped.float().mean().item()


def test_adversarial_training_is_more_robust_than_standard_training() -> None:
    test_data, epsilon = _squares(256, 1), 1.0
    torch.manual_seed(0)
    standard = SmallCNNClassifier(in_channels=1, num_classes=2, width=4, depth=2, lr=1e-2)
    torch.manual_seed(0)
    robust = AdversarialCNNClassifier(in_channels=1, num_classes=2, width=4, depth=2, lr=1e-2, attack_epsilon=epsilon)
    standard_clean, standard_robust = _clean_and_robust_accuracy(standard, test_data, epsilon)
    robust_clean, robust_robust = _clean_and_robust_accuracy(robust, test_data, epsilon)
    assert standard_clean > 0.95 and robust_clean > 0.95  # the task is easy for both
    assert robust_robust > 0.9 and robust_robust > standard_robust + 0.2
