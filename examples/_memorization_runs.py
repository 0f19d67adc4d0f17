"""One run of the memorisation study: train on noisy MNIST-5k labels until memorised, score snapshots, retrain.

Not an example itself (see ``memorization.py``). A run is one (noise rate, seed): the seed sets the label noise, the
model's initialisation and the batch order. A plain PyTorch loop (Lightning's per-step overhead doubles the time of
these tiny models on a CPU) trains a :class:`SmallCNNClassifier` with Adam and a one-cycle schedule, recording each
sample's training-mode margin and loss every epoch (for the area under the margin and the mean loss). At the
snapshot epochs a copy with exact BatchNorm statistics is scored on a fixed probe of training samples; after the last
epoch every training sample is scored and the top suspects of each detector are dropped and a fresh model retrained.
"""

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor, nn

from _memorization_baselines import PixelSpace, margins, matched_sigmas, precise_copy, snapshot_scores
from iaside_lightning.datasets import MNIST5kDataModule
from iaside_lightning.functional import memorization_scores
from iaside_lightning.models import SmallCNNClassifier

__all__ = ["DROP_METHODS", "StudyConfig", "noisy_training_set", "run_study_job"]

#: Detectors whose top suspects are dropped before retraining ("none" drops nothing; "oracle", the flipped labels,
#: is available but left out of the default study for time).
DROP_METHODS = ("none", "spectral", "loss", "aum")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Settings shared by every run."""

    epochs: int = 45
    snapshot_epochs: tuple[int, ...] = (5, 10, 20, 25, 30, 35, 40, 45)
    width: int = 32
    lr: float = 3e-3  # peak of the one-cycle schedule
    batch_size: int = 32
    num_probe: int = 1500  # training samples scored at every snapshot
    num_train: Optional[int] = None  # first training samples only (quick runs); None: all 4,000
    retrain_epochs: int = 8
    retrain_seeds: int = 3  # seeds 0 .. n-1 of each rate are also retrained
    drop_methods: tuple[str, ...] = DROP_METHODS
    noise: str = "symmetric"  # or "pair": each flipped label becomes the next class, (y + 1) mod 10


def _train(
    images: Tensor, labels: Tensor, config: StudyConfig, epochs: int, seed: int,
    on_epoch: Optional[Callable[[int, nn.Module, Tensor, Tensor], None]] = None,
) -> nn.Module:
    """Train a fresh model; ``on_epoch(epoch, model, margin_sum, loss_sum)`` after every epoch (1-based)."""
    torch.manual_seed(seed)
    model = SmallCNNClassifier(in_channels=1, num_classes=10, width=config.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps = epochs * -(-len(labels) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=steps, pct_start=0.15)
    generator = torch.Generator().manual_seed(seed)
    margin_sum, loss_sum = torch.zeros(len(labels), dtype=torch.float64), torch.zeros(len(labels), dtype=torch.float64)
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in torch.randperm(len(labels), generator=generator).split(config.batch_size):
            logits = model(images[batch])
            losses = nn.functional.cross_entropy(logits, labels[batch], reduction="none")
            margin_sum[batch] += margins(logits.detach().double(), labels[batch])
            loss_sum[batch] += losses.detach().double()
            optimizer.zero_grad()
            losses.mean().backward()
            optimizer.step()
            schedule.step()
        if on_epoch is not None:
            on_epoch(epoch, model, margin_sum, loss_sum)
    return model


def _accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    with torch.inference_mode():
        return float(torch.cat([model(b).argmax(1) for b in images.split(1000)]).eq(labels).double().mean())


def _drop_order(method: str, scores: dict[str, Tensor], flipped: Tensor) -> Tensor:
    """Training indices, most suspect first, by ``method``."""
    if method == "oracle":
        return torch.cat([flipped.nonzero().squeeze(1), (~flipped).nonzero().squeeze(1)])
    return scores[method].argsort(descending=True)


def noisy_training_set(
    rate: float, seed: int, config: StudyConfig
) -> tuple[MNIST5kDataModule, Tensor, Tensor, Tensor]:
    """The data module, the training images, their noisy labels and which labels were flipped, of one run."""
    data = MNIST5kDataModule(num_val=1000, label_noise=rate if config.noise == "symmetric" else 0.0, noise_seed=seed)
    data.setup("fit")
    images, labels = data.train_set.tensors
    if config.noise == "pair":
        labels = torch.where(
            torch.rand(len(labels), generator=torch.Generator().manual_seed(seed)) < rate, (labels + 1) % 10, labels
        )
    flipped = labels != data.train_labels_clean
    end = config.num_train
    return data, images[:end], labels[:end], flipped[:end]


def run_study_job(rate: float, seed: int, config: StudyConfig, out_dir: Path, log: Callable[[str], None]) -> Path:
    """Train, snapshot, score and retrain one (rate, seed); saved to (and, when there, loaded from) a file."""
    path = out_dir / "runs" / f"rate_{rate:g}_seed_{seed}.pt"
    if path.exists():
        if torch.load(path, weights_only=False)["config"] != dataclasses.asdict(config):
            raise ValueError(f"{path} was computed with other settings; pass another --out-dir or delete the file.")
        log(f"rate {rate:g} seed {seed}: cached in {path}")
        return path
    start = time.perf_counter()
    data, images, labels, flipped = noisy_training_set(rate, seed, config)
    test_images, test_labels = data.val_set.tensors
    space = PixelSpace(data.normalization)
    probe = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1000 + seed))[: config.num_probe]
    sigmas = matched_sigmas(space.pixels(images[probe]), tuple(range(1, 8)), 8)
    rows: list[dict[str, float]] = []
    snapshots: dict[int, dict[str, Tensor]] = {}
    audit_seconds: list[float] = []
    train_seconds: list[float] = []
    epoch_start = [time.perf_counter()]

    def on_epoch(epoch: int, model: nn.Module, margin_sum: Tensor, loss_sum: Tensor) -> None:
        train_seconds.append(time.perf_counter() - epoch_start[0])
        if epoch % 5 and epoch not in config.snapshot_epochs and epoch != config.epochs:
            epoch_start[0] = time.perf_counter()
            return
        evaluated = precise_copy(model, images)
        with torch.inference_mode():
            predicted = torch.cat([evaluated(b).argmax(1) for b in images.split(1000)])
        fitted = float((predicted[flipped] == labels[flipped]).double().mean()) if flipped.any() else 1.0
        row = {"epoch": epoch, "fitted_noisy": fitted, "test_acc": _accuracy(evaluated, test_images, test_labels)}
        if epoch % 10 == 0 or epoch == config.epochs:
            tick = time.perf_counter()  # the audit's cost at the callback's defaults: 512 probes, 7 cut-offs
            memorization_scores(evaluated, images[:512], labels[:512], normalization=data.normalization)
            audit_seconds.append(time.perf_counter() - tick)
        rows.append(row)
        if epoch in config.snapshot_epochs or epoch == config.epochs:
            last = epoch == config.epochs
            scores = snapshot_scores(evaluated, images[probe], labels[probe], space, sigmas, seed, ablations=last)
            history = {"aum": -margin_sum[probe] / epoch, "mean_loss": loss_sum[probe] / epoch}
            snapshots[epoch] = scores | {k: v.float() for k, v in history.items()}
            log(f"rate {rate:g} seed {seed}: epoch {epoch}: noisy labels fitted {fitted:.3f}, test acc "
                f"{row['test_acc']:.3f}")
        if epoch == config.epochs:
            final["model"], final["aum"], final["loss_sum"] = evaluated, -margin_sum / epoch, loss_sum / epoch
        epoch_start[0] = time.perf_counter()

    final: dict[str, Any] = {}
    _train(images, labels, config, config.epochs, seed, on_epoch)
    result: dict[str, Any] = {
        "rate": rate, "seed": seed, "config": dataclasses.asdict(config), "rows": rows, "flipped": flipped[probe],
        "probe": probe, "snapshots": snapshots, "sigmas": sigmas, "audit_seconds": audit_seconds,
        "train_seconds": train_seconds,
        "retrained": _retrain(final, images, labels, flipped, data, config, rate, seed, log)
        if seed < config.retrain_seeds else {},
    }
    result["seconds"] = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result, path)
    log(f"rate {rate:g} seed {seed}: done in {result['seconds']:.0f} s")
    return path


def _retrain(
    final: dict[str, Any], images: Tensor, labels: Tensor, flipped: Tensor, data: MNIST5kDataModule,
    config: StudyConfig, rate: float, seed: int, log: Callable[[str], None],
) -> dict[str, dict[str, float]]:
    """Drop each detector's top ``rate * N`` suspects (all training samples scored), retrain, test."""
    model = final["model"]
    scores = {
        "spectral": memorization_scores(model, images, labels, normalization=data.normalization).cpu(),
        "loss": torch.cat([nn.functional.cross_entropy(model(b), y, reduction="none").detach()
                           for b, y in zip(images.split(1000), labels.split(1000))]).double(),
        "aum": final["aum"],
    }
    drop = round(rate * len(labels))
    test_images, test_labels = data.val_set.tensors
    out = {}
    for method in config.drop_methods:
        dropped = _drop_order(method, scores, flipped)[:drop] if method != "none" else torch.zeros(0, dtype=torch.int64)
        keep = torch.ones(len(labels), dtype=torch.bool)
        keep[dropped] = False
        model = _train(images[keep], labels[keep], config, config.retrain_epochs, seed)
        evaluated = precise_copy(model, images[keep])
        out[method] = {
            "test_acc": _accuracy(evaluated, test_images, test_labels),
            "dropped": int(drop if method != "none" else 0),
            "precision": float(flipped[dropped].double().mean()) if len(dropped) else float("nan"),
            "noisy_left": float(flipped[keep].double().mean()),
        }
        log(f"rate {rate:g} seed {seed}: retrained without the top {out[method]['dropped']} by {method}: test acc "
            f"{out[method]['test_acc']:.3f} (precision {out[method]['precision']:.3f})")
    return out
