"""Shared by the BlockMNIST examples: the data, and a standard and a PGD-adversarially-trained CNN trained on it.

Not an example itself. Images are standardised with MNIST's statistics, so attack radii are in standardised units
(one pixel-space unit is 1 / 0.3081 = 3.25 of them); the attacks stay inside the box of valid pixels.
"""

import argparse
import time
from pathlib import Path
from typing import Optional

import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.loggers import Logger

from iaside_lightning.datasets import BlockMNISTDataModule
from iaside_lightning.models import AdversarialCNNClassifier, SmallCNNClassifier

__all__ = ["TRAIN_EPSILON", "add_run_arguments", "make_data", "pixel_bounds", "train", "validation_tensors"]

#: L2 radius of adversarial training, in standardised units (1.5 in pixel units).
TRAIN_EPSILON = 1.5 / 0.3081


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Options both BlockMNIST examples share."""
    parser.add_argument("--classes", type=int, nargs="+", default=[0, 1], help="digit classes (default: 0 vs 1)")
    parser.add_argument("--variant", choices=["random", "top"], default="random", help="where the digit block goes")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 was fastest on a busy CPU)")
    parser.add_argument("--out-dir", type=Path, default=None, help="TensorBoard logs and figures")
    parser.add_argument("--figures-dir", type=Path, default=None, help="also write the figures here (docs/figures)")
    parser.add_argument("--quick", action="store_true", help="seconds: synthetic digits, tiny models (for tests)")


def make_data(args: argparse.Namespace, variant: Optional[str] = None) -> BlockMNISTDataModule:
    """Real MNIST-5k digits (synthetic digits with ``--quick``), split 80/20, set up."""
    data = BlockMNISTDataModule(
        classes=tuple(args.classes),
        variant=variant or args.variant,
        source="synthetic" if args.quick else "mnist5k",
        num_per_class=100 if args.quick else None,
        num_val=32 if args.quick else 200,
        batch_size=32 if args.quick else 64,
        seed=0,
    )
    data.setup("fit")
    return data


def pixel_bounds(data: BlockMNISTDataModule) -> tuple[float, float]:
    """The box of valid pixels [0, 1] in the data's standardised units."""
    (mean,), (std,) = data.normalization
    return (-mean / std, (1 - mean) / std)


def train(
    kind: str,
    data: BlockMNISTDataModule,
    args: argparse.Namespace,
    callbacks: Optional[list[Callback]] = None,
    logger: Optional[Logger] = None,
) -> SmallCNNClassifier:
    """Train a ``"standard"`` or ``"robust"`` (L2 PGD, 7 steps) CNN with a Lightning Trainer; eval mode on return."""
    seed_everything(0, workers=True)
    options = {"in_channels": 1, "num_classes": len(args.classes), "width": 4 if args.quick else 8, "lr": 3e-3}
    if kind == "robust":
        model: SmallCNNClassifier = AdversarialCNNClassifier(
            **options, attack_epsilon=TRAIN_EPSILON, attack_steps=7, attack_bounds=pixel_bounds(data)
        )
    else:
        model = SmallCNNClassifier(**options)
    trainer = Trainer(
        max_epochs=3 if args.quick else args.epochs,
        accelerator="cpu",
        logger=logger if logger is not None else False,
        callbacks=callbacks or [],
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        deterministic=True,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    accuracy = float(trainer.callback_metrics["val/acc"])
    print(f"  {kind:>8} model: val/acc {accuracy:.3f}, fit {time.perf_counter() - start:.1f} s")
    return model.eval()


def validation_tensors(data: BlockMNISTDataModule, count: Optional[int] = None) -> tuple[torch.Tensor, ...]:
    """The first ``count`` validation images, labels and masks."""
    images, labels, masks = data.val_set.tensors
    return images[:count], labels[:count], masks[:count]
