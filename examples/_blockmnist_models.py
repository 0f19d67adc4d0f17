"""Shared by the BlockMNIST examples: the data, standard and PGD-adversarially-trained CNNs over training seeds, the
region-aware localization score and the across-seed summaries.

Not an example itself. Images are standardised with MNIST's statistics, so attack radii are in standardised units
(one pixel-space unit is 1 / 0.3081 = 3.25 of them); the attacks stay inside the box of valid pixels.

Trained weights are cached in the system's temporary folder, keyed by everything that determines them (kind, variant,
classes, epochs, seed, quick), so ``examples/blockmnist.py`` and ``examples/boundary_geometry.py`` score the very same
models; training is deterministic, so a fresh fit (``--fresh``) gives the same weights.
"""

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch
from lightning.pytorch import Callback, Trainer, seed_everything
from lightning.pytorch.loggers import Logger
from torch import Tensor

from iaside_lightning import AttributionLocalization
from iaside_lightning.datasets import BlockMNISTDataModule, null_pattern_masks
from iaside_lightning.models import AdversarialCNNClassifier, SmallCNNClassifier

from _student_t import t_half_width

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "REGIONS",
    "TRAIN_EPSILON",
    "add_run_arguments",
    "localization_scores",
    "make_data",
    "mean_interval",
    "pixel_bounds",
    "plot_seed_bars",
    "seeds_of",
    "train",
    "validation_tensors",
]

#: The four disjoint regions of a BlockMNIST image scored by :func:`localization_scores` (``"inside"``: the digit's
#: ink), with their labels; the digit block is the first two together.
REGIONS = {
    "inside": "digit ink",
    "digit_background": "digit block background",
    "null_pattern": "null pattern ink",
    "null_background": "null block background",
}

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
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 0 .. N-1 per model (2 with --quick)")
    parser.add_argument("--fresh", action="store_true", help="train even where cached weights exist")
    parser.add_argument("--quick", action="store_true", help="seconds: synthetic digits, tiny models (for tests)")


def seeds_of(args: argparse.Namespace) -> range:
    """The training seeds of a run: ``0 .. --seeds - 1`` (two with ``--quick``); at least two for an interval."""
    if args.seeds < 2:
        raise SystemExit(f"--seeds must be at least 2 (an interval over seeds needs two), got {args.seeds}.")
    return range(2 if args.quick else args.seeds)


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
    seed: int,
    callbacks: Optional[list[Callback]] = None,
    logger: Optional[Logger] = None,
) -> SmallCNNClassifier:
    """A ``"standard"`` or ``"robust"`` (L2 PGD, 7 steps) CNN trained with a Lightning Trainer from ``seed``.

    Loads the cached weights of the same configuration unless ``callbacks`` must watch the fit or ``--fresh`` is set;
    caches the weights after every fit. Eval mode on return.
    """
    variant = data.hparams.variant
    name = f"{kind}-{variant}-classes{''.join(map(str, args.classes))}-epochs{args.epochs}-seed{seed}"
    cache = Path(tempfile.gettempdir()) / "iaside_blockmnist_models" / f"{name}{'-quick' if args.quick else ''}.pt"
    seed_everything(seed, workers=True)  # the initial weights, the batch order and the attacks' random starts
    options = {"in_channels": 1, "num_classes": len(args.classes), "width": 4 if args.quick else 8, "lr": 3e-3}
    if kind == "robust":
        model: SmallCNNClassifier = AdversarialCNNClassifier(
            **options, attack_epsilon=TRAIN_EPSILON, attack_steps=7, attack_bounds=pixel_bounds(data)
        )
    else:
        model = SmallCNNClassifier(**options)
    if cache.exists() and not callbacks and not args.fresh:
        model.load_state_dict(torch.load(cache))
        print(f"  {kind:>8} model ({variant}, seed {seed}): cached weights {cache}", flush=True)
        return model.eval()
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
    print(f"  {kind:>8} model ({variant}, seed {seed}): val/acc {accuracy:.3f}, fit {time.perf_counter() - start:.1f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), cache)
    return model.eval()


def validation_tensors(data: BlockMNISTDataModule, count: Optional[int] = None) -> tuple[torch.Tensor, ...]:
    """The first ``count`` validation images, labels and masks."""
    images, labels, masks = data.val_set.tensors
    return images[:count], labels[:count], masks[:count]


def localization_scores(attributions: Tensor, images: Tensor, masks: Tensor, background: float) -> dict[str, float]:
    """Localization of attributions on BlockMNIST: mass on each region of :data:`REGIONS` against its baseline.

    Args:
        attributions: ``[N, 1, 2B, B]`` attributions.
        images: the images as the model sees them; pixels above ``background`` in the digit block are the digit's ink.
        masks: the digit-block masks.
        background: the value of blank pixels (``pixel_bounds(data)[0]``).

    Returns:
        Means and standard errors (``<key>_stderr``) over the images: per region ``mass/<region>``,
        ``baseline/<region>`` (its pixel share: the expected mass of the pixel-shuffled attribution) and
        ``excess/<region>``; the same for the whole digit block (``<kind>/digit_block``); ``top_k_outside``, the share
        of the top-10% pixels off the digit block.
    """
    block = masks.bool()
    ink = block & (images > background + 1e-6)
    pattern = null_pattern_masks(block)
    regions = {"digit_background": block & ~ink, "null_pattern": pattern, "null_background": ~block & ~pattern}
    by_region = AttributionLocalization(top_k=0.1, regions=tuple(regions))
    by_region.update(attributions, ink, regions=regions)
    by_block = AttributionLocalization(top_k=0.1, regions=())
    by_block.update(attributions, block, regions={})
    scores = {key: float(value) for key, value in by_region.compute().items() if "/" in key and not key.endswith("_count")}
    for key, value in by_block.compute().items():
        if key.startswith(("mass/", "baseline/", "excess/", "top_k_outside")) and not key.endswith("_count"):
            scores[key.replace("/inside", "/digit_block")] = float(value)
    return scores


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and 95% Student-t half-width over seeds (NaN half-width for a single value)."""
    return sum(values) / len(values), t_half_width(values)


def plot_seed_bars(ax: "Axes", groups: dict[str, list[dict[str, float]]], keys: Sequence[str], names: Sequence[str]) -> None:
    """Grouped bars on ``ax``: per key (x tick ``names``) one bar per group (its per-seed score dicts), the mean over
    seeds with its 95% t interval, and one dot per seed."""
    width = 0.8 / len(groups)
    for i, (group, rows) in enumerate(groups.items()):
        positions = [j + (i - (len(groups) - 1) / 2) * width for j in range(len(keys))]
        summaries = [mean_interval([row[key] for row in rows]) for key in keys]
        ax.bar(positions, [m for m, _ in summaries], width, yerr=[h for _, h in summaries], capsize=3, color=f"C{i}",
               alpha=0.6, label=group)
        for position, key in zip(positions, keys):
            values = [row[key] for row in rows]
            ax.plot([position] * len(values), values, ".", color="k", markersize=3)
    ax.set_xticks(range(len(keys)), names, fontsize=8)
