"""One run of the label-noise study: train a small CNN on noisy MNIST-5k labels, snapshot it, score the snapshots.

Not an example itself (see ``label_noise.py``). A run is one (noise rate, seed): the seed sets the model's
initialisation, the batch order and the draw of the noisy labels. Training goes on until the model fits at least
``memorised_target`` of its flipped training labels (or ``max_epochs``); clean runs train ``clean_epochs``. At the
snapshot epochs the model, with BatchNorm statistics recomputed on the training digits (``PreciseBatchNorm``), is
scored on the first ``num_spectral`` validation digits: per-sample coalition values of every analysis setting are
kept, so every score (phi, its standard errors, SRS, the spectral balance) is computed afterwards from them.
"""

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import Tensor

from iaside_lightning.callbacks.precise_batchnorm import PreciseBatchNorm
from iaside_lightning.datasets import MNIST5kDataModule
from iaside_lightning.functional import coalition_values
from iaside_lightning.models import SmallCNNClassifier

__all__ = ["ANALYSES", "Analysis", "RunConfig", "run_study_job"]


@dataclasses.dataclass(frozen=True)
class Analysis:
    """One I-ASIDE setting the snapshots are scored with."""

    num_bands: int
    fill: str
    band_edges: str = "rings"
    final_only: bool = False  # only at the last snapshot of a run (a side comparison)

    @property
    def name(self) -> str:
        return f"M{self.num_bands}_{self.fill}_{self.band_edges}"


#: Both fills at M = 6 and 8 with the default ring-balanced bands; the paper's linear edges at the end of each run.
ANALYSES = (
    Analysis(8, "permute"),
    Analysis(8, "zero"),
    Analysis(6, "permute"),
    Analysis(6, "zero"),
    Analysis(8, "permute", "linear", final_only=True),
    Analysis(8, "zero", "linear", final_only=True),
)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Settings shared by every run of the study."""

    snapshot_epochs: tuple[int, ...] = (1, 3, 8, 20, 40, 70, 100, 130)
    clean_epochs: int = 60
    max_epochs: int = 150
    memorised_target: float = 0.99
    num_val: int = 4000  # the other 1,000 MNIST-5k digits train
    num_spectral: int = 256  # validation digits scored by I-ASIDE
    num_val_acc: int = 1000  # validation digits for the accuracy
    batch_size: int = 50
    width: int = 16
    lr: float = 1e-3
    train_batches: Optional[int] = None  # None: all (quick runs use fewer)
    analyses: tuple[Analysis, ...] = ANALYSES


class Snapshots(Callback):
    """Each epoch: accuracy on the training digits against their noisy and true labels and the fraction of flipped
    labels fitted; at snapshot epochs, a copy of the weights. Stops training once the flipped labels are fitted."""

    def __init__(self, noisy: Tensor, clean: Tensor, config: RunConfig, rate: float, report: Callable[[str], None]):
        self.noisy, self.clean, self.config, self.rate, self.report = noisy, clean, config, rate, report
        self.images: Optional[Tensor] = None
        self.rows: list[dict[str, float]] = []
        self.states: dict[int, dict[str, Tensor]] = {}

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Runs after this epoch's validation, i.e. after PreciseBatchNorm recomputed the statistics.
        was_training = pl_module.training
        pl_module.eval()
        with torch.inference_mode():
            predicted = torch.cat([pl_module(batch).argmax(1) for batch in self.images.split(500)])
        pl_module.train(was_training)
        flipped = self.noisy != self.clean
        epochs_done = trainer.current_epoch + 1
        row = {
            "epoch": epochs_done,
            "train_acc_noisy": float((predicted == self.noisy).float().mean()),
            "train_acc_clean": float((predicted == self.clean).float().mean()),
            "memorised": float((predicted[flipped] == self.noisy[flipped]).float().mean()) if flipped.any() else 0.0,
            "val_acc": float(trainer.callback_metrics["val/acc"]),
        }
        self.rows.append(row)
        done = self.rate > 0 and row["memorised"] >= self.config.memorised_target
        last = epochs_done >= (self.config.clean_epochs if self.rate == 0 else self.config.max_epochs)
        if epochs_done in self.config.snapshot_epochs or done or last:
            self.states[epochs_done] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        if epochs_done % 5 == 0 or done or last:
            self.report(
                f"epoch {epochs_done:3d}: flipped labels fitted {row['memorised']:.3f}, val acc {row['val_acc']:.3f}"
            )
        if done:
            trainer.should_stop = True


def run_study_job(rate: float, seed: int, config: RunConfig, out_dir: Path, log: Callable[[str], None]) -> Path:
    """Train, snapshot and score one (rate, seed); the result is saved to (and, when there, loaded from) a file."""
    path = out_dir / "runs" / f"rate_{rate:g}_seed_{seed}.pt"
    if path.exists():
        saved = torch.load(path, weights_only=False).get("config")
        if saved is not None and saved != dataclasses.asdict(config):
            raise ValueError(
                f"{path} was computed with other settings ({saved}); pass another --out-dir or delete the file."
            )
        log(f"rate {rate:g} seed {seed}: cached in {path}")
        return path

    def report(message: str) -> None:
        log(f"rate {rate:g} seed {seed}: {message}")

    start = time.perf_counter()
    seed_everything(seed, workers=True, verbose=False)
    data = MNIST5kDataModule(
        batch_size=config.batch_size, num_val=config.num_val, label_noise=rate, seed=0, noise_seed=seed
    )
    data.setup("fit")
    images, noisy = data.train_set.tensors
    snapshots = Snapshots(noisy, data.train_labels_clean, config, rate, report)
    snapshots.images = images
    model = SmallCNNClassifier(in_channels=1, num_classes=10, width=config.width, lr=config.lr)
    epochs = config.clean_epochs if rate == 0 else config.max_epochs
    trainer = Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        callbacks=[PreciseBatchNorm(num_batches=config.train_batches), snapshots],
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        deterministic=True,
        limit_train_batches=config.train_batches,
        limit_val_batches=config.num_val_acc // config.batch_size,
    )
    trainer.fit(model, datamodule=data)
    train_seconds = time.perf_counter() - start
    val_images, val_labels = data.val_set.tensors
    spectral_images, spectral_labels = val_images[: config.num_spectral], val_labels[: config.num_spectral]
    scored: dict[int, dict[str, Tensor]] = {}
    final = max(snapshots.states)
    for epoch, state in sorted(snapshots.states.items()):
        model.load_state_dict(state)
        scored[epoch] = {
            analysis.name: coalition_values(
                model,
                spectral_images,
                spectral_labels,
                num_bands=analysis.num_bands,
                fill=analysis.fill,
                band_edges=analysis.band_edges,
                normalization=MNIST5kDataModule.normalization,
                seed=seed,
            ).float()
            for analysis in config.analyses
            if epoch == final or not analysis.final_only
        }
        report(f"scored the snapshot after epoch {epoch}")
    result: dict[str, Any] = {
        "rate": rate,
        "seed": seed,
        "config": dataclasses.asdict(config),
        "rows": snapshots.rows,
        "values": scored,
        "train_seconds": train_seconds,
        "seconds": time.perf_counter() - start,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result, path)
    report(f"done in {result['seconds']:.0f} s ({train_seconds:.0f} s training)")
    return path
