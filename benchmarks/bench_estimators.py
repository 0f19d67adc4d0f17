"""Error of the sampling Shapley estimators against the number of coalition evaluations per sample.

Two games with exactly known Shapley values, ``M`` players:

* synthetic: per sample, an additive game plus a random one-hidden-layer ReLU network of the band indicators
  (interactions of every order), solved by brute force over all ``2^M`` coalitions;
* cnn: a tiny CNN trained for a few seconds on planted-band images (classes live in bands 3 and 8), I-ASIDE values
  (``fill="permute"``, ``value="log_prob"``) of a few validation images enumerated exactly with
  :func:`~iaside_lightning.functional.coalition_values`. The samplers then read these cached values (the same
  numbers the model returns, checked once against a direct ``spectral_shapley(estimator="kernel")`` run), so many
  seeds cost no extra forward passes.

For every estimator, budget and seed it records the error of the batch-mean estimate relative to ``sum |phi|``
(``max_k |phi_hat_k - phi_k| / sum_k |phi_k|``), the same for single samples, and whether nominal 95% intervals
``phi_hat +- 1.96 estimator_stderr`` cover the exact values. Usage::

    python benchmarks/bench_estimators.py            # M = 16 (65536 exact coalitions), 50 seeds: ~70 s on 2 cores
    python benchmarks/bench_estimators.py --quick    # M = 10, 10 seeds: ~20 s

The CNN runs on CUDA when available (the samplers' own work stays on the CPU, on the cached table).
"""

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor, nn

from _common import machine_description, pick_device
from iaside_lightning.datasets.planted import make_planted_band_images
from iaside_lightning.functional import coalition_matrix, coalition_values, per_sample_shapley, spectral_shapley
from iaside_lightning.functional.spectral.estimators import ValueOracle, kernel_shapley, permutation_shapley

__all__ = ["cnn_game", "lookup_oracle", "main", "measure", "synthetic_game"]

SAMPLERS = {"permutation": permutation_shapley, "kernel": kernel_shapley}
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "estimator_error.png"
NORMALIZATION = ([0.5], [0.15])


def synthetic_game(num_bands: int, batch: int = 8, hidden: int = 32, seed: int = 0) -> ValueOracle:
    """``v_i(z) = a_i . z + r_i . relu(U z / sqrt(M) + c)``: additive plus interactions of all orders."""
    gen = torch.Generator().manual_seed(seed)
    additive = torch.randn(batch, num_bands, generator=gen, dtype=torch.float64)
    inner = torch.randn(hidden, num_bands, generator=gen, dtype=torch.float64) / num_bands**0.5
    offset = torch.randn(hidden, generator=gen, dtype=torch.float64)
    outer = torch.randn(batch, hidden, generator=gen, dtype=torch.float64) * 2 / hidden**0.5

    def oracle(coalitions: Tensor) -> Tensor:
        z = coalitions.to(torch.float64)
        return additive @ z.T + outer @ torch.relu(inner @ z.T + offset[:, None])

    return oracle


def cnn_game(num_bands: int, steps: int, device: torch.device, batch: int = 4) -> tuple[ValueOracle, Tensor]:
    """Train the tiny CNN; return a lookup oracle over its exact coalition values ``[batch, 2^M]`` and the values."""
    options = dict(num_bands=num_bands, num_classes=4, image_size=32, planted_bands=[3, 8], signal_strength=1.0)
    images, labels = (t.to(device) for t in make_planted_band_images(1024, seed=0, **options))
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        index = torch.randint(0, images.shape[0], (32,)).to(device)
        loss = nn.functional.cross_entropy(model((images[index] - 0.5) / 0.15), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    val_images, val_labels = (t.to(device) for t in make_planted_band_images(256, seed=1, **options))
    val_images = (val_images - 0.5) / 0.15
    with torch.no_grad():
        accuracy = float((model(val_images).argmax(1) == val_labels).float().mean())
    engine = dict(num_bands=num_bands, fill="permute", normalization=NORMALIZATION, seed=0)
    batch_images, batch_labels = val_images[:batch], val_labels[:batch]
    start = time.perf_counter()
    values = coalition_values(model, batch_images, batch_labels, max_coalitions=2**num_bands, **engine)
    values, seconds = values.cpu(), time.perf_counter() - start
    print(f"cnn: validation accuracy {accuracy:.3f}; exact pass over {2**num_bands} coalitions x {batch} images "
          f"took {seconds:.1f} s")
    oracle = lookup_oracle(values)
    budget = max(int(0.02 * 2**num_bands), 64)  # 2% of 2^M (1310 at M = 16), within the estimator's minimum
    direct = spectral_shapley(model, batch_images, batch_labels, estimator="kernel", max_coalitions=budget, **engine)
    cached = kernel_shapley(oracle, num_bands, budget, seed=0).phi.mean(0)
    scale = float(cached.abs().sum())
    assert torch.allclose(direct.phi, cached, atol=1e-5 * scale, rtol=0), "cached values differ from the model"
    return oracle, values


def lookup_oracle(values: Tensor) -> ValueOracle:
    """An oracle answering from a table ``[B, 2^M]`` indexed as :func:`coalition_matrix`.

    Example:
        >>> lookup_oracle(torch.tensor([[0.0, 1.0, 2.0, 3.0]]))(torch.tensor([[1, 1], [0, 1]]))
        tensor([[3., 2.]])
    """
    num_bands = values.shape[1].bit_length() - 1

    def oracle(coalitions: Tensor) -> Tensor:
        return values[:, (coalitions.to(torch.int64) << torch.arange(num_bands)).sum(1)]

    return oracle


def measure(oracle: ValueOracle, truth: Tensor, num_bands: int, budgets: list[int], seeds: int) -> list[dict]:
    """One row per (estimator, budget): error quantiles over seeds, coverage, evaluations, seconds per call."""
    mean, scale = truth.mean(0), truth.mean(0).abs().sum()
    per_sample_scale = truth.abs().sum(1, keepdim=True)
    rows = []
    for name, sampler in SAMPLERS.items():
        for budget in budgets:
            errors, sample_errors, covered, used = [], [], [], []
            start = time.perf_counter()
            for seed in range(seeds):
                est = sampler(oracle, num_bands, budget, seed=seed)
                stderr = est.sum_variance.sqrt() / truth.shape[0]
                errors.append(float((est.phi.mean(0) - mean).abs().max() / scale))
                sample_errors.append(float(((est.phi - truth).abs() / per_sample_scale).max()))
                covered.append((est.phi.mean(0) - mean).abs() <= 1.959964 * stderr + 1e-12 * scale)
                used.append(est.num_evaluations)
            seconds = (time.perf_counter() - start) / seeds
            err = torch.tensor(errors)
            rows.append(dict(
                estimator=name, budget=budget, evaluations=sum(used) / seeds, median=float(err.median()),
                p10=float(err.quantile(0.1)), p90=float(err.quantile(0.9)), worst=float(err.max()),
                sample_median=float(torch.tensor(sample_errors).median()),
                coverage=float(torch.stack(covered).double().mean()), seconds=seconds,
            ))
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    """Print the rows of :func:`measure` as a Markdown table."""
    print(f"\n{title}")
    print("| estimator | budget | evaluations used | median error | p90 error | worst error | per-sample median "
          "| 95% coverage | s/call |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['estimator']} | {r['budget']} | {r['evaluations']:.0f} | {r['median']:.2%} | {r['p90']:.2%} | "
              f"{r['worst']:.2%} | {r['sample_median']:.2%} | {r['coverage']:.1%} | {r['seconds']:.3f} |")


def plot(panels: dict[str, list[dict]], num_bands: int, path: Path) -> None:
    """Error against evaluations per sample, one panel per game, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4), sharey=True, constrained_layout=True)
    for ax, (title, rows) in zip(axes, panels.items()):
        for name, color in (("permutation", "tab:orange"), ("kernel", "tab:blue")):
            mine = [r for r in rows if r["estimator"] == name]
            x = [r["evaluations"] for r in mine]
            ax.plot(x, [r["median"] for r in mine], "o-", color=color, label=f"{name} (median)")
            ax.fill_between(x, [r["p10"] for r in mine], [r["p90"] for r in mine], color=color, alpha=0.2)
        ax.axhline(0.02, color="gray", ls="--", lw=1, label="2% target")
        ax.axvline(0.02 * 2**num_bands, color="gray", ls=":", lw=1, label=f"2% of 2^{num_bands} evaluations")
        ax.set(xscale="log", yscale="log", title=title, xlabel="distinct coalitions evaluated per sample")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("max |phi_hat - phi| / sum |phi|  (batch mean)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Shapley estimators, M = {num_bands} (exact: {2**num_bands} evaluations); band: 10-90% over seeds")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; ``argv`` as on the command line (``None``: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="M = 10, 10 seeds, a short training: < 1 min")
    parser.add_argument("--out", type=Path, default=None, help=f"PNG path (default {FIGURE}; --quick: a temp dir)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device()
    print(machine_description(device))
    num_bands, seeds, steps = (10, 10, 300) if args.quick else (16, 50, 1000)
    budgets = [150, 300, 600] if args.quick else [250, 500, 1000, 1310, 2000, 4000, 8000]
    out = args.out or (Path(tempfile.gettempdir()) / "estimator_error_quick.png" if args.quick else FIGURE)
    start = time.perf_counter()
    synthetic = synthetic_game(num_bands)
    panels = {}
    for title, (oracle, values) in {
        "synthetic game": (synthetic, synthetic(coalition_matrix(num_bands))),
        "tiny CNN on planted bands": cnn_game(num_bands, steps, device),
    }.items():
        truth = per_sample_shapley(values)
        print(f"{title}: exact phi (batch mean) = {[round(p, 4) for p in truth.mean(0).tolist()]}")
        panels[title] = measure(oracle, truth, num_bands, budgets, seeds)
        print_table(f"{title}, M = {num_bands}, {seeds} seeds, {values.shape[0]} samples", panels[title])
    plot(panels, num_bands, out)
    print(f"\nfigure: {out}\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
