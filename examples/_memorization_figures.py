"""Figures of the memorisation study, from its summary and one saved run (see ``_memorization_report.py``).

Not an example itself. Drawn with the object-oriented Matplotlib API (no ``pyplot``).
"""

from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from _memorization_runs import StudyConfig, noisy_training_set
from iaside_lightning.plotting.memorization import plot_suspects

__all__ = ["write_figures"]

DPI = 110
COLORS = {
    "spectral": "tab:red", "loss": "tab:blue", "margin": "tab:cyan", "blur (matched)": "tab:green",
    "noise (matched)": "tab:olive", "AUM": "tab:purple", "mean loss": "tab:gray",
}


def write_figures(summary: dict[str, Any], out_dir: Path, figures_dir: Path) -> list[Path]:
    """Write ``memorization_auroc.png``, ``memorization_cutoffs.png`` and ``memorization_suspects.png``."""
    figures_dir.mkdir(parents=True, exist_ok=True)
    rates = list(summary["by_rate"])
    figures = {
        "memorization_auroc.png": _auroc_figure(summary, rates),
        "memorization_cutoffs.png": _cutoff_figure(summary, rates),
        "memorization_suspects.png": _suspects_figure(out_dir, rates[-1]),
    }
    for name, fig in figures.items():
        fig.savefig(figures_dir / name, dpi=DPI)
    return [figures_dir / name for name in figures]


def _auroc_figure(summary: dict[str, Any], rates: list[str]) -> Figure:
    fig = Figure(figsize=(5.2 * len(rates), 4.2))
    axes = fig.subplots(1, len(rates), squeeze=False)[0]
    for ax, rate in zip(axes, rates):
        snapshots = summary["by_rate"][rate]["snapshots"]
        epochs = [s["epoch"] for s in snapshots]
        for name, color in COLORS.items():
            mean = [s["scores"][name]["auroc"] for s in snapshots]
            low, high = zip(*(s["scores"][name]["ci"] for s in snapshots))
            ax.plot(epochs, mean, color=color, marker="o", markersize=3, label=name,
                    linewidth=2.2 if name == "spectral" else 1.2)
            ax.fill_between(epochs, low, high, color=color, alpha=0.12)
        fitted = [sum(s["fitted_noisy"]) / len(s["fitted_noisy"]) for s in snapshots]
        twin = ax.twinx()
        twin.plot(epochs, fitted, color="black", linestyle=":", label="noisy labels fitted")
        twin.set_ylim(0, 1.02)
        twin.set_ylabel("share of noisy labels fitted (dotted)")
        ax.set_title(f"noise rate {rate}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("AUROC, flipped vs clean (95% CI)")
        ax.set_ylim(0.45, 1.0)
        ax.axhline(0.5, color="0.6", linewidth=0.8)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Finding memorised noisy labels on MNIST-5k ({summary['seeds']} seeds)")
    fig.tight_layout()
    return fig


def _cutoff_figure(summary: dict[str, Any], rates: list[str]) -> Figure:
    fig = Figure(figsize=(5.2 * len(rates), 4.0))
    axes = fig.subplots(1, len(rates), squeeze=False)[0]
    for ax, rate in zip(axes, rates):
        last = summary["by_rate"][rate]["snapshots"][-1]
        scores = last["scores"]
        cutoffs = sorted(int(name.split("=")[1]) for name in scores if name.startswith("low-pass k="))
        for prefix, color, label in (("low-pass", "tab:red", "low-pass (keep k lowest bands)"),
                                     ("blur", "tab:green", "Gaussian blur of matched MSE")):
            mean = [scores[f"{prefix} k={k}"]["auroc"] for k in cutoffs]
            low, high = zip(*(scores[f"{prefix} k={k}"]["ci"] for k in cutoffs))
            ax.plot(cutoffs, mean, color=color, marker="o", label=label)
            ax.fill_between(cutoffs, low, high, color=color, alpha=0.15)
        for name, style in (("spectral", "-"), ("loss", "--")):
            ax.axhline(scores[name]["auroc"], color=COLORS[name], linestyle=style, linewidth=1,
                       label=f"{name} ({scores[name]['auroc']:.3f})")
        ax.set_title(f"noise rate {rate}, epoch {last['epoch']}")
        ax.set_xlabel("cut-off k (bands kept, of 8)")
        ax.set_ylabel("AUROC (95% CI)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _suspects_figure(out_dir: Path, rate: str) -> Figure:
    """The 24 top suspects of seed 0's probe at its last snapshot (images re-read from MNIST-5k)."""
    run = torch.load(out_dir / "runs" / f"rate_{rate}_seed_0.pt", weights_only=False)
    last = run["snapshots"][max(run["snapshots"])]
    _, images, labels, _ = noisy_training_set(float(rate), 0, StudyConfig(**run["config"]))
    scores = last["score_zero8"]
    top = scores.argsort(descending=True)[:24]
    probe = run["probe"][top]
    title = f"Top 24 suspects of {len(run['probe'])} probes (noise {rate}, seed 0, epoch {max(run['snapshots'])})"
    fig, _ = plot_suspects(images[probe], labels[probe], scores[top], run["flipped"][top], columns=8, title=title)
    return fig
