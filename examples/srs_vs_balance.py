"""When the paper's SRS and the spectral balance disagree: high bands that turn harmful.

Two frequency responses that differ only in the five high bands: first they help a little (phi >= 0), then they hurt
a little (phi = -0.05 nats each, e.g. a model that memorised noisy labels, analysed with ``fill="zero"``). psi shifts
every phi by the smallest one, so in the second response the harmful bands become psi = 0 and the low bands' share
grows: signed SRS *rises*. The spectral balance counts harm against robustness and falls. Run::

    python examples/srs_vs_balance.py --figures-dir docs/figures
"""

import argparse
from pathlib import Path

import torch
from matplotlib.figure import Figure

from iaside_lightning.functional import (
    band_layout,
    spectral_balance,
    spectral_importance_distribution,
    spectral_robustness_score,
)
from iaside_lightning.plotting import plot_frequency_response

HELPFUL = (0.6, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.0)
HARMFUL = (0.6, 0.3, 0.2, -0.05, -0.05, -0.05, -0.05, -0.05)


def scores(phi: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    """``(psi, signed SRS, spectral balance)`` of a frequency response."""
    psi, _ = spectral_importance_distribution(phi)
    return psi, float(spectral_robustness_score(psi, signed=True)), float(spectral_balance(phi))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures-dir", type=Path, default=Path("outputs/srs_vs_balance"))
    args = parser.parse_args()
    edges = band_layout(28, 28, len(HELPFUL)).edges * 0.5  # MNIST-sized bands, for the frequency axis
    fig = Figure(figsize=(11, 4), layout="constrained")
    phi_ax, psi_ax = fig.subplots(1, 2)
    for values, name, style in ((HELPFUL, "high bands help a little", "-"), (HARMFUL, "high bands hurt", "--")):
        phi = torch.tensor(values, dtype=torch.float64)
        psi, signed, balance = scores(phi)
        label = f"{name}: signed SRS {signed:+.3f}, balance {balance:+.3f}"
        print(label)
        plot_frequency_response(phi, None, edges, ax=phi_ax, label=label)
        plot_frequency_response(psi, None, edges, ax=psi_ax, label=name, unit="share")
        for ax in (phi_ax, psi_ax):
            ax.get_lines()[-1].set_linestyle(style)
    phi_ax.set_title("Shapley values: the low bands are identical", fontsize=10)
    psi_ax.set_title("psi = (phi - min phi) / sum: harm becomes 0, low bands gain", fontsize=10)
    psi_ax.set_ylabel("psi (share of the shifted total)")
    fig.suptitle("Signed SRS rises when high bands turn harmful; the spectral balance falls", fontsize=11)
    args.figures_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figures_dir / "srs_vs_balance.png", dpi=110)
    print(f"wrote {args.figures_dir / 'srs_vs_balance.png'}")


if __name__ == "__main__":
    main()
