"""MemorizationAudit in a real Trainer: no side effects, logs to CSV and TensorBoard offline, AUROC with noisy flags."""

import csv
from pathlib import Path
from typing import Any, Optional

import pytest
import torch
from lightning.pytorch import LightningDataModule, seed_everything
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import IMAGES, SCALARS, EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning import MemorizationAudit
from iaside_lightning.models import SmallCNNClassifier
from side_effects import BatchGuard, Recorder, assert_training_unchanged, quiet_trainer, training_record

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


class NoisyData(LightningDataModule):
    """40 random 16x16 training images with 4 classes; ``train_noisy`` flags every third label (when ``flags``)."""

    def __init__(self, flags: bool = True) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.train_set = TensorDataset(torch.rand(40, 1, 16, 16, generator=generator), torch.arange(40) % 4)
        self.val_set = TensorDataset(torch.rand(8, 1, 16, 16, generator=generator), torch.arange(8) % 4)
        self.flags = flags

    @property
    def train_noisy(self) -> Optional[torch.Tensor]:
        return torch.arange(40) % 3 == 0 if self.flags else None

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=8, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=4)


def _audit(**kwargs: Any) -> MemorizationAudit:
    return MemorizationAudit(**{"num_probes": 24, "every_n_epochs": 1, "num_bands": 4, "num_suspects": 5, **kwargs})


def _fit(tmp_path: Path, with_audit: bool) -> dict[str, Any]:
    seed_everything(3)
    model, guard, audit = Recorder(lr=3e-2), BatchGuard(), _audit(fill="permute")
    trainer = quiet_trainer(tmp_path, [audit, guard] if with_audit else [guard], max_epochs=2)
    trainer.fit(model, datamodule=NoisyData())
    return training_record(trainer, model, guard, "memorization/") | {"history": audit.history}


def test_the_audit_does_not_change_training(tmp_path: Path) -> None:
    without, with_ = _fit(tmp_path, with_audit=False), _fit(tmp_path, with_audit=True)
    assert [r["epoch"] for r in with_["history"]] == [0, 1] and not without["history"]  # the audit did run
    assert_training_unchanged(with_, without)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_it_logs_scores_auroc_suspects_and_figures_to_csv_and_tensorboard(tmp_path: Path) -> None:
    seed_everything(0)
    model = SmallCNNClassifier(in_channels=1, num_classes=4, width=4, depth=2)
    csv_logger, tb_logger = CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")
    audit = _audit(every_n_epochs=2)
    trainer = quiet_trainer(tmp_path, [audit], max_epochs=2, logger=[csv_logger, tb_logger], log_every_n_steps=1)
    trainer.fit(model, datamodule=NoisyData())

    (record,) = audit.history
    assert record["epoch"] == 1 and 0.0 <= record["auroc"] <= 1.0 and 0.0 <= record["auroc_loss"] <= 1.0
    assert record["audit_seconds"] > 0 and record["score_p90"] >= record["score_p50"]
    indices = audit.probe[0]
    assert len(indices) == 24 and len(set(indices.tolist())) == 24
    log_dir = Path(csv_logger.log_dir)
    metrics = _csv_rows(log_dir / "metrics.csv")
    assert any(row.get("memorization/auroc") for row in metrics)
    suspects = _csv_rows(log_dir / "memorization_suspects.csv")
    assert len(suspects) == 5 and [int(r["rank"]) for r in suspects] == list(range(5))
    scores = [float(r["score"]) for r in suspects]
    assert scores == sorted(scores, reverse=True) and all(r["noisy"] in ("0", "1") for r in suspects)
    assert all(int(r["index"]) in indices.tolist() for r in suspects)
    assert (log_dir / "memorization_history.csv").is_file()
    for tag in ("scores", "suspects"):
        assert (log_dir / "figures" / "memorization" / tag / "epoch_0001.png").is_file()
    events = EventAccumulator(str(tb_logger.log_dir), size_guidance={SCALARS: 0, IMAGES: 0})
    events.Reload()
    assert "memorization/auroc" in events.Tags()["scalars"]
    assert {"memorization/scores", "memorization/suspects"} <= set(events.Tags()["images"])


def test_without_noisy_flags_there_is_no_auroc(tmp_path: Path) -> None:
    audit = _audit(log_figures=False)
    trainer = quiet_trainer(tmp_path, [audit], max_epochs=1)
    trainer.fit(SmallCNNClassifier(in_channels=1, num_classes=4, width=4, depth=2), datamodule=NoisyData(flags=False))
    (record,) = audit.history
    assert "auroc" not in record and record["score_mean"] > 0 and audit.probe[3] is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_probes": 0}, "num_probes"),
        ({"cutoffs": [4]}, "cutoffs"),
        ({"fill": "blur"}, "fill"),
        ({"every_n_epochs": 0}, "every_n_epochs"),
        ({"noisy_attribute": "not a name"}, "noisy_attribute"),
    ],
)
def test_bad_options_fail_at_construction(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _audit(**kwargs)


def test_the_running_mean_loss_and_history_survive_a_checkpoint(tmp_path: Path) -> None:
    audit = _audit(log_figures=False)
    trainer = quiet_trainer(tmp_path, [audit], max_epochs=2)
    trainer.fit(SmallCNNClassifier(in_channels=1, num_classes=4, width=4, depth=2), datamodule=NoisyData())
    restored = _audit(log_figures=False)
    restored.load_state_dict(audit.state_dict())
    assert restored.history == audit.history and restored._audits == 2
    assert torch.equal(restored._loss_sum, audit._loss_sum)
