"""Spectral SNR: how much of each frequency band survives common corruptions and adversarial attacks?

For MNIST-5k validation images, computes the per-band signal-to-noise ratio ``SNR_k = ||m_k X||^2 /
||m_k (X' - X)||^2`` (I-ASIDE, method.md section 6) of the corruption suite at one severity and of FGSM and PGD
attacks on a briefly trained small CNN (the zoo's base model, cached in ``tempfile.gettempdir()/iaside_zoo``). The
paper's motivation is that this SNR decays with frequency: low bands survive perturbations, high bands do not.

Results and their reading: docs/spectral_snr.md. Run (about 15 seconds on 2 CPU cores, plus 5-15 seconds to train the
model the first time)::

    python examples/spectral_snr.py --figures-dir docs/figures

``--quick`` (a model trained for a second, 64 images) only checks that everything runs.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _mnist_models import (
    BASE_CONFIG,
    MNIST_NORMALIZATION,
    ZooConfig,
    accuracy,
    add_run_arguments,
    train_or_load,
    validation_pixels,
)
from matplotlib.figure import Figure
from torch import Tensor

from iaside_lightning.corruptions import CORRUPTIONS, corrupt, fgsm, pgd
from iaside_lightning.functional import band_edges, band_power, spectral_snr
from iaside_lightning.plotting import plot_spectral_snr

NUM_BANDS = 8
#: The paper's linear band edges: docs/spectral_snr.md's table and figure were computed with them (the package's
#: default, "rings", moves the 28x28 bands by up to one frequency ring; an SNR is a ratio of energies in one band,
#: so the uneven linear band 3 does not bias it).
BANDS = {"num_bands": NUM_BANDS, "band_edges": "linear"}
PRETTY = {"gaussian_noise": "Gaussian noise", "shot_noise": "shot noise", "gaussian_blur": "Gaussian blur",
          "contrast": "contrast", "jpeg": "JPEG"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=1000, help="validation images")
    parser.add_argument("--severity", type=int, default=3, help="severity of every corruption, 1 to 5")
    parser.add_argument("--epsilon", type=float, default=0.1, help="L-inf radius of FGSM and PGD (pixels)")
    add_run_arguments(parser, quick_help="seconds: a barely trained model, 64 images (tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = BASE_CONFIG
    if args.quick:
        config, args.num_images = ZooConfig(BASE_CONFIG.name, width=8, epochs=1, num_train=256), 64
    figures_dir = args.figures_dir or Path("outputs/spectral_snr_quick" if args.quick else "docs/figures")

    start = time.perf_counter()
    model = train_or_load(config, args.cache_dir)
    pixels, labels = validation_pixels(args.num_images)
    perturbed = {f"{PRETTY[name]} (severity {args.severity})": corrupt(pixels, name, args.severity)
                 for name in CORRUPTIONS}
    attack = {"model": model, "images": pixels, "labels": labels, "epsilon": args.epsilon,
              "normalization": MNIST_NORMALIZATION}
    perturbed[f"FGSM (eps {args.epsilon:g})"] = fgsm(**attack)
    perturbed[f"PGD-10 (eps {args.epsilon:g})"] = pgd(**attack, steps=10)
    snr = {name: spectral_snr(pixels, x, **BANDS) for name, x in perturbed.items()}
    edges = band_edges(NUM_BANDS, "linear") * 0.5

    print(f"clean accuracy of the model: {accuracy(model, pixels, labels):.3f} on {len(labels)} images\n")
    print(_table(snr, perturbed, model, pixels, labels, edges))
    figures_dir.mkdir(parents=True, exist_ok=True)
    path = figures_dir / "spectral_snr.png"
    _figure(snr, perturbed, pixels, edges).savefig(path, dpi=100)
    print(f"\nwrote {path}\ntotal {time.perf_counter() - start:.0f} s")


def decay_slope(snr_db: Tensor, edges: Tensor) -> float:
    """Least-squares slope of a per-band dB curve against log10 of the band centre frequency, over bands 1 to M - 1.

    Band 0 is left out: it reaches down to 0 cycles/pixel, so its centre says little about its frequencies.
    """
    centres = ((edges[1:] + edges[:-1]) / 2)[1:].numpy()
    values = snr_db[1:].numpy()
    finite = np.isfinite(values)
    return float(np.polyfit(np.log10(centres[finite]), values[finite], 1)[0]) if finite.sum() >= 2 else float("nan")


def _table(snr: dict[str, Tensor], perturbed: dict[str, Tensor], model: torch.nn.Module, pixels: Tensor,
           labels: Tensor, edges: Tensor) -> str:
    header = " | ".join(f"{lo:.3g}-{hi:.3g}" for lo, hi in zip(edges[:-1].tolist(), edges[1:].tolist()))
    lines = [f"| perturbation | acc. | L2 / image | {header} | SNR slope | ESD slope |", "|---" * (NUM_BANDS + 5) + "|"]
    for name, values in snr.items():
        difference = perturbed[name] - pixels
        size = float(difference.flatten(1).norm(dim=1).mean())
        cells = " | ".join(f"{v:.1f}" for v in values.tolist())
        lines.append(f"| {name} | {accuracy(model, perturbed[name], labels):.3f} | {size:.2f} | {cells} | "
                     f"{decay_slope(values, edges):+.1f} | {decay_slope(_density_db(difference), edges):+.1f} |")
    clean_slope = decay_slope(_density_db(pixels), edges)
    return ("SNR per band (dB; band frequencies in cycles/pixel; slopes in dB per decade of frequency over bands 1-7; "
            "ESD: the perturbation's energy spectral density):\n" + "\n".join(lines)
            + f"\nESD slope of the clean images: {clean_slope:+.1f} dB/decade")


def _figure(snr: dict[str, Tensor], perturbed: dict[str, Tensor], pixels: Tensor, edges: Tensor) -> Figure:
    fig = Figure(figsize=(13.0, 4.8), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    plot_spectral_snr(snr, edges, ax=left, title="SNR per band = clean energy / perturbation energy")
    density = {name: _density_db(x - pixels) for name, x in perturbed.items()}  # same colours as on the left
    plot_spectral_snr({**density, "clean images": _density_db(pixels)}, edges, ax=right,
                      title="The two terms: energy spectral density, per image")
    for ax in (left, right):
        ax.get_legend().remove()
    for line in right.get_lines():
        if line.get_label() == "clean images":
            line.set(color="black", linewidth=2.5)
        elif len(line.get_xdata()) == 2 and tuple(line.get_ydata()) == (0, 0):
            line.remove()  # 0 dB means nothing for an energy
    right.set_ylabel("Mean energy per frequency bin (dB)")
    fig.legend(handles=right.get_lines(), loc="outside right center", fontsize=8, frameon=False)
    fig.suptitle(f"Spectral SNR of perturbations of {len(pixels)} MNIST-5k validation digits")
    return fig


def _density_db(images: Tensor) -> Tensor:
    """Band energy per image divided by the band's number of frequency bins (flat for white noise), in dB."""
    height, width = images.shape[-2:]
    impulse = torch.zeros(1, 1, height, width)
    impulse[..., 0, 0] = 1.0  # flat spectrum: its band powers are the bands' shares of the spectrum
    bins = band_power(impulse, **BANDS)[0] * height * width
    return 10 * torch.log10(band_power(images, **BANDS).mean(0) / bins)


if __name__ == "__main__":
    main()
