"""Model zoo: does the spectral robustness score (SRS) rank models by their robustness, as the paper reports?

Trains small CNNs on MNIST-5k that differ in robustness (8 configurations: width, noise / blur augmentation, PGD
adversarial training, label noise, training length; 2 seeds each), then for each model measures its SRS (I-ASIDE,
``fill="permute"``, M = 8 bands) on validation images, its clean accuracy, its mean accuracy under the corruption
suite (5 corruptions x 5 severities) and its accuracy under L-inf PGD. Prints a Markdown table and the Spearman rank
correlation of SRS with each robustness measure, with bootstrap 95% intervals resampling models and resampling
configurations, over all models and over those not trained on perturbations, and draws the scatter plots and the
models' frequency responses. Results and their reading: docs/robustness_zoo.md.

Trained weights are cached in ``tempfile.gettempdir()/iaside_zoo`` (never in the repository): a second run skips
training. Run (about 6 minutes on 2 busy CPU cores the first time, 4 minutes with cached weights)::

    python examples/robustness_zoo.py --figures-dir docs/figures

``--quick`` (a few seconds of training, tiny evaluation sets, three models) only checks that everything runs.
"""

import argparse
import dataclasses
import time
from collections.abc import Callable
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
from scipy.stats import spearmanr
from torch import Tensor, nn

from iaside_lightning.corruptions import CORRUPTIONS, SEVERITIES, corrupt, pgd
from iaside_lightning.functional import (
    SpectralOptions,
    SpectralShapleyResult,
    band_edges,
    compute_result,
    spectral_shapley_statistics,
    sum_statistics,
)
from iaside_lightning.plotting import plot_frequency_response

ZOO = (
    BASE_CONFIG,
    ZooConfig("width 16", width=16),
    ZooConfig("width 4", width=4),
    ZooConfig("1 epoch", width=8, epochs=1),
    ZooConfig("noise aug.", width=8, augment="noise"),
    ZooConfig("blur aug.", width=8, augment="blur"),
    ZooConfig("PGD training", width=8, augment="pgd"),
    ZooConfig("label noise 0.4", width=8, label_noise=0.4),
)
MEASURES = {
    "clean": "clean accuracy",
    "corruption": "mean corruption accuracy",
    "relative": "corruption accuracy / clean accuracy",
    "pgd": "PGD accuracy",
}
MARKERS = "osD^vPX*"
#: Spearman's rho, its 95% interval resampling models, and resampling configurations.
Correlation = tuple[float, tuple[float, float], tuple[float, float]]
NUM_BANDS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="models trained per configuration (seeds 0, 1, ...)")
    parser.add_argument("--num-srs", type=int, default=256, help="validation images behind each SRS")
    parser.add_argument("--num-eval", type=int, default=1000, help="validation images for the accuracies")
    parser.add_argument("--epsilon", type=float, default=0.05, help="L-inf radius of the PGD evaluation (pixels)")
    parser.add_argument("--pgd-steps", type=int, default=10)
    add_run_arguments(parser, quick_help="seconds: 3 tiny models, tiny sets (for tests)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    zoo = ZOO
    if args.quick:
        zoo = tuple(ZooConfig(c.name, width=c.width, epochs=1, augment=c.augment, num_train=256) for c in ZOO[0:5:2])
        args.seeds, args.num_srs, args.num_eval, args.pgd_steps = 1, 16, 100, 2
    figures_dir = args.figures_dir or Path("outputs/robustness_zoo_quick" if args.quick else "docs/figures")

    torch.manual_seed(0)
    start = time.perf_counter()
    pixels, labels = validation_pixels(args.num_eval)
    corrupted = {(name, s): corrupt(pixels, name, s, seed=s) for name in CORRUPTIONS for s in SEVERITIES}
    rows, responses = [], {}
    for config in (dataclasses.replace(c, seed=seed) for c in zoo for seed in range(args.seeds)):
        model = train_or_load(config, args.cache_dir)
        result, halves = _srs(model, pixels[: args.num_srs], labels[: args.num_srs])
        if config.seed == 0:
            responses[config.name] = result
        row = {
            "model": config.name,
            "seed": config.seed,
            "augment": config.augment,
            "srs": float(result.srs),
            "srs_halves": halves,
            "srs_signed": float(result.srs_signed),
            "clean": accuracy(model, pixels, labels),
            "corruption": float(np.mean([accuracy(model, x, labels) for x in corrupted.values()])),
            "pgd": accuracy(model, _attack(model, pixels, labels, args.epsilon, args.pgd_steps), labels),
        }
        row["relative"] = row["corruption"] / row["clean"]
        rows.append(row)
        print(f"  {config.name}, seed {config.seed}: SRS {row['srs']:.3f}, accuracies clean {row['clean']:.3f}, "
              f"corrupted {row['corruption']:.3f}, PGD {row['pgd']:.3f}  ({time.perf_counter() - start:.0f} s so far)")

    print(f"\n{_table(rows)}\n")
    correlations = _correlations(rows)
    print(f"over all {len(rows)} models:\n{_format(correlations)}")
    plain = [r for r in rows if r["augment"] == "none"]  # not trained on any of the test perturbations
    if len({r["model"] for r in plain}) >= 3:
        print(f"over the {len(plain)} models not trained on perturbations (no noise, blur or PGD training):\n"
              f"{_format(_correlations(plain))}")
    if args.seeds > 1:
        print(_seed_spread(rows))
    figures_dir.mkdir(parents=True, exist_ok=True)
    _save(_scatter(rows, correlations, args.epsilon), figures_dir / "robustness_zoo.png")
    _save(_responses(responses), figures_dir / "robustness_zoo_phi.png")
    print(f"total {time.perf_counter() - start:.0f} s")


def _correlations(rows: list[dict]) -> dict[str, Correlation]:
    srs, groups = [r["srs"] for r in rows], [r["model"] for r in rows]
    return {key: bootstrap_spearman(srs, [r[key] for r in rows], groups) for key in MEASURES}


def _format(correlations: dict[str, Correlation]) -> str:
    return "\n".join(
        f"  Spearman(SRS, {MEASURES[key]}) = {rho:+.2f}, bootstrap 95% interval [{low:+.2f}, {high:+.2f}] over "
        f"models, [{config_low:+.2f}, {config_high:+.2f}] over configurations"
        for key, (rho, (low, high), (config_low, config_high)) in correlations.items()
    )


def _seed_spread(rows: list[dict]) -> str:
    """How much SRS moves between seeds of one configuration, against how much it moves between configurations."""
    by_config: dict[str, list[float]] = {}
    for r in rows:
        by_config.setdefault(r["model"], []).append(r["srs"])
    within = np.mean([np.ptp(v) for v in by_config.values()])
    between = np.std([np.mean(v) for v in by_config.values()], ddof=1)
    return (f"SRS range between seeds of a configuration, mean over configurations: {within:.3f}; standard deviation "
            f"of the configurations' mean SRS: {between:.3f}")


def _srs(model: nn.Module, pixels: Tensor, labels: Tensor) -> tuple[SpectralShapleyResult, tuple[float, float]]:
    """I-ASIDE result on all images, and the SRS of each half of them (a sampling-noise check at no extra cost)."""
    (mean,), (std,) = MNIST_NORMALIZATION
    # The paper's linear edges: the figures and tables of docs/robustness_zoo.md were computed with them.
    options = SpectralOptions(NUM_BANDS, band_edges="linear", fill="permute", normalization=MNIST_NORMALIZATION)
    halves = [spectral_shapley_statistics(model, (x - mean) / std, y, options)
              for x, y in zip(pixels.chunk(2), labels.chunk(2))]
    edges = band_edges(NUM_BANDS, "linear")
    split = tuple(float(compute_result(stats, edges).srs) for stats in halves)
    return compute_result(sum_statistics(*halves), edges), split


def _attack(model: nn.Module, pixels: Tensor, labels: Tensor, epsilon: float, steps: int) -> Tensor:
    batches = zip(pixels.split(250), labels.split(250))
    return torch.cat([pgd(model, x, y, epsilon, steps=steps, normalization=MNIST_NORMALIZATION) for x, y in batches])


def bootstrap_spearman(
    x: list[float], y: list[float], groups: list[str], num_resamples: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float], tuple[float, float]]:
    """Spearman's rho with two percentile bootstrap 95% intervals.

    The first resamples models with replacement; the second resamples configurations (``groups``, all seeds of a
    drawn configuration together), which respects that seeds of one configuration are not independent models.
    Resamples in which either variable is constant (rho undefined) are dropped.
    """
    x_arr, y_arr, group_arr = np.asarray(x), np.asarray(y), np.asarray(groups)
    rho = float(spearmanr(x_arr, y_arr).statistic)
    members = [np.flatnonzero(group_arr == g) for g in dict.fromkeys(groups)]
    rng = np.random.default_rng(seed)

    def interval(draw_indices: Callable[[], np.ndarray]) -> tuple[float, float]:
        draws = []
        for _ in range(num_resamples):
            pick = draw_indices()
            if np.ptp(x_arr[pick]) > 0 and np.ptp(y_arr[pick]) > 0:
                draws.append(spearmanr(x_arr[pick], y_arr[pick]).statistic)
        low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
        return float(low), float(high)

    by_model = interval(lambda: rng.integers(0, x_arr.size, x_arr.size))
    by_config = interval(lambda: np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))]))
    return rho, by_model, by_config


def _table(rows: list[dict]) -> str:
    lines = ["| model | seed | SRS | SRS of each half | signed SRS | clean acc. | mean corruption acc. | "
             "corruption / clean | PGD acc. |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        halves = " / ".join(f"{v:.3f}" for v in r["srs_halves"])
        lines.append(f"| {r['model']} | {r['seed']} | {r['srs']:.3f} | {halves} | {r['srs_signed']:+.3f} | "
                     f"{r['clean']:.3f} | {r['corruption']:.3f} | {r['relative']:.3f} | {r['pgd']:.3f} |")
    return "\n".join(lines)


def _scatter(rows: list[dict], correlations: dict[str, Correlation], epsilon: float) -> Figure:
    fig = Figure(figsize=(11.5, 8.0), dpi=100, layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).flatten()
    configs = list(dict.fromkeys(r["model"] for r in rows))
    for ax, (key, label) in zip(axes, MEASURES.items()):
        for r in rows:
            i = configs.index(r["model"])
            colour = f"C{i}"
            ax.scatter(r["srs"], r[key], s=50, marker=MARKERS[i % len(MARKERS)], zorder=3, edgecolors=colour,
                       facecolors=colour if r["seed"] == 0 else "none", linewidths=1.5,
                       label=r["model"] if r["seed"] == 0 else None)
        rho, (low, high), (config_low, config_high) = correlations[key]
        ax.set_title(f"Spearman $\\rho$ = {rho:+.2f}, 95% CI {low:+.2f} to {high:+.2f} over models,\n"
                     f"{config_low:+.2f} to {config_high:+.2f} over configurations", fontsize=9.5)
        ax.set_xlabel("Spectral robustness score (SRS)")
        ax.set_ylabel(label.capitalize() if key != "pgd" else f"{label} ($\\epsilon$ = {epsilon:g})")
        ax.grid(True, color="0.92")
        ax.margins(x=0.12, y=0.12)
    seeds = "filled: seed 0, hollow: seed 1" if any(r["seed"] for r in rows) else "one seed each"
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", frameon=False, fontsize=8.5,
               title=seeds, title_fontsize=8)
    fig.suptitle(f"SRS against robustness of {len(rows)} small CNNs on MNIST-5k (percentile bootstrap intervals)")
    return fig


def _responses(results: dict[str, SpectralShapleyResult]) -> Figure:
    fig = Figure(figsize=(13.0, 4.6), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    for name, result in results.items():
        plot_frequency_response(result.phi, result.stderr, result.band_frequencies, ax=left)
        label = f"{name}: SRS {float(result.srs):.2f}"
        plot_frequency_response(result.psi, None, result.band_frequencies, ax=right, label=label)
    left.set_title("Shapley value of each band, seed 0 (95% intervals)")
    right.set_title("Spectral importance distribution $\\psi$ (what SRS scores)")
    right.set_ylabel("$\\psi$ = (phi - min phi) / sum(phi - min phi)")
    right.get_legend().remove()
    fig.legend(*right.get_legend_handles_labels(), loc="outside right center", frameon=False, fontsize=8.5)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
