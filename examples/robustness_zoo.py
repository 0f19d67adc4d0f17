"""Model zoo: does the spectral robustness score (SRS) rank models by robustness to corruptions they never saw?

Trains small CNNs on MNIST-5k that differ in robustness (8 recipes: width, training length, uniform-noise and
box-blur augmentation, PGD adversarial training, label noise; several seeds each), then measures for each model its
SRS and spectral balance (I-ASIDE, ``fill="permute"``, M = 8 bands, exact Shapley values) with their standard
errors, its clean accuracy, its accuracy under corruptions (the suite's noises and blur, and a held-out set that no
recipe trained on: contrast, JPEG, brightness, fog, elastic) and under L-inf PGD. The training augmentations are not
in the corruption suite, and each model is also scored on the corruptions outside its own training family. Prints
per-model and per-recipe tables, Spearman and partial Spearman (given clean accuracy) correlations of both scores
with each robustness measure and with the accuracy under each corruption, with bootstrap 95% intervals resampling
models and resampling recipes, the correlation of recipe means, and the seed-to-seed against recipe-to-recipe
spread of both scores. Draws the
scatter plots, the spread of the scores and the frequency responses. Results and their reading:
docs/robustness_zoo.md.

Trained weights are cached in ``tempfile.gettempdir()/iaside_zoo`` (never in the repository): a second run skips
training. Run (about 14 minutes on 2 busy CPU cores with cached weights, 35 from scratch)::

    python examples/robustness_zoo.py --figures-dir docs/figures

``--quick`` (3 recipes x 2 seeds of barely trained models, tiny evaluation sets, seconds) only checks that
everything runs.
"""

import argparse
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from _bootstrap import Estimate, bootstrap, partial_spearman, seed_spread, spearman
from _mnist_models import MNIST_NORMALIZATION, ZooConfig, accuracy, add_run_arguments, train_or_load, validation_pixels
from matplotlib.figure import Figure
from torch import Tensor, nn

from iaside_lightning.corruptions import CORRUPTIONS, EXTRA_CORRUPTIONS, SEVERITIES, corrupt, pgd
from iaside_lightning.functional import SpectralShapleyResult, spectral_shapley
from iaside_lightning.plotting import plot_frequency_response

EPOCHS = 8
ZOO = (
    ZooConfig("base (width 8)", width=8, epochs=EPOCHS),
    ZooConfig("width 16", width=16, epochs=EPOCHS),
    ZooConfig("width 4", width=4, epochs=EPOCHS),
    ZooConfig("1 epoch", width=8, epochs=1),
    ZooConfig("uniform-noise aug.", width=8, epochs=EPOCHS, augment="uniform_noise"),
    ZooConfig("box-blur aug.", width=8, epochs=EPOCHS, augment="box_blur"),
    ZooConfig("PGD training", width=8, epochs=EPOCHS, augment="pgd"),
    ZooConfig("label noise 0.4", width=8, epochs=EPOCHS, label_noise=0.4),
)
#: Corruption families of the suite, and the family each training augmentation belongs to.
FAMILIES = {"noise": ("gaussian_noise", "shot_noise"), "blur": ("gaussian_blur",)}
TRAINED_FAMILY = {"uniform_noise": "noise", "noise": "noise", "box_blur": "blur", "blur": "blur"}
#: Corruptions no recipe trained on, nor on their family.
HELD_OUT = ("contrast", "jpeg", *EXTRA_CORRUPTIONS)
SCORES = {"srs": "SRS", "balance": "balance"}


class Measure(NamedTuple):
    """A robustness measure (a row's column) over the models ``keep`` accepts."""

    column: str
    label: str
    keep: Callable[[dict], bool] = lambda row: True


MEASURES = {
    "clean": Measure("clean", "clean accuracy"),
    "held_out": Measure("held_out", "held-out corruption accuracy"),
    "out_of_family": Measure("out_of_family", "accuracy on corruptions outside own training family"),
    "held_out_plain": Measure("held_out", "held-out corruption accuracy, recipes without augmentation",
                              lambda row: row["augment"] == "none"),
    "pgd": Measure("pgd", "PGD accuracy, recipes not PGD-trained", lambda row: row["augment"] != "pgd"),
}
#: One measure per corruption, over the models not trained on its family.
PER_CORRUPTION = {
    f"acc_{name}": Measure(f"acc_{name}", name, lambda row, name=name: name not in _trained_family(row["augment"]))
    for name in CORRUPTIONS + HELD_OUT[2:]
}
MARKERS = "osD^vPX*"
NUM_BANDS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8, help="models trained per recipe (seeds 0, 1, ...)")
    parser.add_argument("--num-srs", type=int, default=256, help="validation images behind each score")
    parser.add_argument("--num-eval", type=int, default=1000, help="validation images for the accuracies")
    parser.add_argument("--epsilon", type=float, default=0.05, help="L-inf radius of the PGD evaluation (pixels)")
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples per interval")
    add_run_arguments(parser, quick_help="seconds: 3 recipes x 2 seeds of tiny models, tiny sets (for tests)")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2: the study compares seeds with recipes")
    torch.set_num_threads(args.threads)
    zoo = ZOO
    if args.quick:
        zoo = tuple(dataclasses.replace(c, epochs=1, num_train=256) for c in ZOO[0:5:2])
        args.seeds, args.num_srs, args.num_eval, args.pgd_steps, args.resamples = 2, 16, 100, 2, 100
    figures_dir = args.figures_dir or Path("outputs/robustness_zoo_quick" if args.quick else "docs/figures")

    start = time.perf_counter()
    pixels, labels = validation_pixels(args.num_eval)
    corrupted = {(name, s): corrupt(pixels, name, s, seed=s) for name in CORRUPTIONS + HELD_OUT[2:] for s in SEVERITIES}
    rows, responses = [], {}
    for config in (dataclasses.replace(c, seed=seed) for seed in range(args.seeds) for c in zoo):
        model = train_or_load(config, args.cache_dir)
        result = _spectral(model, pixels[: args.num_srs], labels[: args.num_srs])
        responses.setdefault(config.name, result)
        rows.append(_evaluate(model, config, result, pixels, labels, corrupted, args))
        r = rows[-1]
        print(f"  {config.name}, seed {config.seed}: SRS {r['srs']:.3f}, balance {r['balance']:+.3f}, accuracies "
              f"clean {r['clean']:.3f}, held-out {r['held_out']:.3f}, PGD {r['pgd']:.3f}  "
              f"({time.perf_counter() - start:.0f} s so far)", flush=True)

    rows.sort(key=lambda r: ([c.name for c in zoo].index(r["model"]), r["seed"]))
    print(f"\nEvery model:\n\n{_model_table(rows)}\n\nRecipe means (standard deviation over {args.seeds} seeds):\n\n"
          f"{_recipe_table(rows)}\n")
    correlations = _correlations(rows, MEASURES, args.resamples)
    print(f"Correlations over {len(rows)} models ({len(zoo)} recipes x {args.seeds} seeds); percentile bootstrap 95% "
          f"intervals from {args.resamples} resamples of models / of recipes (all seeds of a recipe together):\n\n"
          f"{_correlation_table(correlations, MEASURES)}\n")
    print("Per corruption (accuracy averaged over severities 1-5; models trained on its family left out):\n\n"
          f"{_correlation_table(_correlations(rows, PER_CORRUPTION, args.resamples), PER_CORRUPTION)}\n")
    print(f"Seed spread against recipe spread:\n\n{_spread_table(rows)}\n")
    figures_dir.mkdir(parents=True, exist_ok=True)
    _save(_scatter(rows, correlations), figures_dir / "robustness_zoo.png")
    _save(_spread_figure(rows), figures_dir / "robustness_zoo_spread.png")
    _save(_responses(responses), figures_dir / "robustness_zoo_phi.png")
    print(f"total {time.perf_counter() - start:.0f} s")


def _spectral(model: nn.Module, pixels: Tensor, labels: Tensor) -> SpectralShapleyResult:
    """I-ASIDE with the paper's linear band edges (the study's set-up since its first version), exact Shapley."""
    (mean,), (std,) = MNIST_NORMALIZATION
    return spectral_shapley(model, (pixels - mean) / std, labels, num_bands=NUM_BANDS, band_edges="linear",
                            fill="permute", normalization=MNIST_NORMALIZATION)


def _evaluate(
    model: nn.Module,
    config: ZooConfig,
    result: SpectralShapleyResult,
    pixels: Tensor,
    labels: Tensor,
    corrupted: dict[tuple[str, int], Tensor],
    args: argparse.Namespace,
) -> dict:
    """One model's row: its scores with standard errors and its accuracies."""
    by_name: dict[str, list[float]] = {}
    for (name, _), images in corrupted.items():
        by_name.setdefault(name, []).append(accuracy(model, images, labels))
    family = _trained_family(config.augment)
    attack = torch.cat([pgd(model, x, y, args.epsilon, steps=args.pgd_steps, normalization=MNIST_NORMALIZATION)
                        for x, y in zip(pixels.split(250), labels.split(250))])
    return {
        "model": config.name,
        "seed": config.seed,
        "augment": config.augment,
        "num_srs": result.num_samples,
        "srs": float(result.srs),
        "srs_se": float(result.srs_stderr),
        "balance": float(result.balance),
        "balance_se": float(result.balance_stderr),
        "clean": accuracy(model, pixels, labels),
        "noise": float(np.mean([by_name[n] for n in FAMILIES["noise"]])),
        "blur": float(np.mean(by_name["gaussian_blur"])),
        "held_out": float(np.mean([by_name[n] for n in HELD_OUT])),
        "out_of_family": float(np.mean([v for n, v in by_name.items() if n not in family])),
        "pgd": accuracy(model, attack, labels),
        **{f"acc_{name}": float(np.mean(values)) for name, values in by_name.items()},
    }


def _trained_family(augment: str) -> tuple[str, ...]:
    """The suite's corruptions in the family of a training augmentation (none for PGD or no augmentation)."""
    return FAMILIES.get(TRAINED_FAMILY.get(augment, ""), ())


def _correlations(
    rows: list[dict], measures: dict[str, Measure], resamples: int
) -> dict[tuple[str, str], dict[str, Estimate]]:
    """Per (score, measure): Spearman rho, partial rho given clean accuracy, and rho of recipe means."""
    out = {}
    for measure, (column, _, keep) in measures.items():
        subset = [r for r in rows if keep(r)]
        groups = [r["model"] for r in subset]
        recipes = list(dict.fromkeys(groups))
        y, clean = np.array([r[column] for r in subset]), np.array([r["clean"] for r in subset])
        for score in SCORES:
            x = np.array([r[score] for r in subset])
            means = np.array([[np.mean([v for v, g in zip(a, groups) if g == name]) for name in recipes]
                              for a in (x, y)])
            estimates = {"rho": bootstrap(lambda i: spearman(x[i], y[i]), groups, resamples)}
            if measure != "clean":
                estimates["partial"] = bootstrap(lambda i: partial_spearman(x[i], y[i], clean[i]), groups, resamples)
            # recipe means: one point per recipe, resampled as recipes (both intervals coincide)
            estimates["means"] = bootstrap(lambda i: spearman(means[0][i], means[1][i]), recipes, resamples)
            out[score, measure] = estimates
    return out


def _interval(estimate: Estimate, which: str) -> str:
    low, high = getattr(estimate, which)
    return f"{low:+.2f} to {high:+.2f}"


def _correlation_table(
    correlations: dict[tuple[str, str], dict[str, Estimate]], measures: dict[str, Measure]
) -> str:
    lines = ["| score | against | Spearman rho | 95% CI, models | 95% CI, recipes | partial rho given clean acc. | "
             "95% CI, models | 95% CI, recipes | rho of recipe means | 95% CI, recipes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (score, measure), e in correlations.items():
        rho, means = e["rho"], e["means"]
        partial = (f"{e['partial'].value:+.2f} | {_interval(e['partial'], 'by_model')} | "
                   f"{_interval(e['partial'], 'by_group')}") if "partial" in e else "- | - | -"
        lines.append(f"| {SCORES[score]} | {measures[measure].label} | {rho.value:+.2f} | "
                     f"{_interval(rho, 'by_model')} | {_interval(rho, 'by_group')} | {partial} | "
                     f"{means.value:+.2f} | {_interval(means, 'by_group')} |")
    return "\n".join(lines)


def _model_table(rows: list[dict]) -> str:
    lines = ["| recipe | seed | SRS (s.e.) | balance (s.e.) | clean acc. | noise acc. | blur acc. | held-out acc. | "
             "out-of-family acc. | PGD acc. |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['seed']} | {r['srs']:.3f} ({r['srs_se']:.3f}) | {r['balance']:+.3f} "
                     f"({r['balance_se']:.3f}) | {r['clean']:.3f} | {r['noise']:.3f} | {r['blur']:.3f} | "
                     f"{r['held_out']:.3f} | {r['out_of_family']:.3f} | {r['pgd']:.3f} |")
    return "\n".join(lines)


def _recipe_table(rows: list[dict]) -> str:
    keys = ("srs", "balance", "clean", "noise", "blur", "held_out", "out_of_family", "pgd")
    lines = ["| recipe | trained on | SRS | balance | mean s.e. of SRS / balance | clean acc. | noise acc. | "
             "blur acc. | held-out acc. | out-of-family acc. | PGD acc. |", "|---" * 11 + "|"]
    for name in dict.fromkeys(r["model"] for r in rows):
        group = [r for r in rows if r["model"] == name]
        cells = [f"{np.mean([r[k] for r in group]):{'+' if k == 'balance' else ''}.3f} "
                 f"({np.std([r[k] for r in group], ddof=1):.3f})" for k in keys]
        errors = f"{np.mean([r['srs_se'] for r in group]):.3f} / {np.mean([r['balance_se'] for r in group]):.3f}"
        lines.append(f"| {name} | {group[0]['augment']} | {' | '.join(cells[:2])} | {errors} | "
                     f"{' | '.join(cells[2:])} |")
    return "\n".join(lines)


def _spread_table(rows: list[dict]) -> str:
    groups = [r["model"] for r in rows]
    lines = ["| score | SD between seeds of a recipe (pooled) | SD of recipe means | SD of means from seed noise alone "
             "| ANOVA F | p | mean standard error of one model's score |", "|---|---|---|---|---|---|---|"]
    for score, label in SCORES.items():
        s = seed_spread([r[score] for r in rows], groups)
        se = np.mean([r[f"{score}_se"] for r in rows])
        lines.append(f"| {label} | {s.within:.3f} | {s.between:.3f} | {s.noise_floor:.3f} | {s.f_statistic:.1f} | "
                     f"{s.p_value:.1g} | {se:.3f} |")
    return "\n".join(lines)


def _scatter(rows: list[dict], correlations: dict[tuple[str, str], dict[str, Estimate]]) -> Figure:
    measures = ("clean", "held_out", "out_of_family")
    fig = Figure(figsize=(14.0, 8.4), dpi=100, layout="constrained")
    axes = fig.subplots(len(SCORES), len(measures), sharex="row", sharey="col")
    recipes = list(dict.fromkeys(r["model"] for r in rows))
    for row_axes, (score, score_label) in zip(axes, SCORES.items()):
        for ax, measure in zip(row_axes, measures):
            for i, name in enumerate(recipes):
                group = [r for r in rows if r["model"] == name]
                x, y = [r[score] for r in group], [r[measure] for r in group]
                ax.scatter(x, y, s=16, marker=MARKERS[i % len(MARKERS)], color=f"C{i}", alpha=0.45, linewidths=0)
                ax.errorbar(np.mean(x), np.mean(y), xerr=np.std(x, ddof=1), yerr=np.std(y, ddof=1), color=f"C{i}",
                            marker=MARKERS[i % len(MARKERS)], markersize=8, markeredgecolor="black", capsize=2,
                            label=name if score == "srs" and measure == "clean" else None)
            e = correlations[score, measure]
            title = f"rho {e['rho'].value:+.2f} [{_interval(e['rho'], 'by_group')}]"
            if "partial" in e:
                title += f"\npartial given clean {e['partial'].value:+.2f} [{_interval(e['partial'], 'by_group')}]"
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(score_label)
            ax.set_ylabel(MEASURES[measure].label.capitalize(), fontsize=9)
            ax.grid(True, color="0.92")
    fig.legend(loc="outside right center", frameon=False, fontsize=8.5,
               title="recipe: mean +- SD over seeds;\nsmall markers: single models", title_fontsize=8)
    fig.suptitle(f"SRS (top) and spectral balance (bottom) against robustness of {len(rows)} small CNNs on MNIST-5k "
                 "(Spearman; 95% intervals resampling recipes)")
    return fig


def _spread_figure(rows: list[dict]) -> Figure:
    fig = Figure(figsize=(12.0, 4.2), dpi=100, layout="constrained")
    recipes = list(dict.fromkeys(r["model"] for r in rows))
    for ax, (score, label) in zip(fig.subplots(1, len(SCORES)), SCORES.items()):
        for i, name in enumerate(recipes):
            group = [r for r in rows if r["model"] == name]
            ax.errorbar([r[score] for r in group], np.full(len(group), i) + np.linspace(-0.25, 0.25, len(group)),
                        xerr=[1.96 * r[f"{score}_se"] for r in group], fmt=MARKERS[i % len(MARKERS)], color=f"C{i}",
                        markersize=4, elinewidth=0.8)
        ax.set_yticks(range(len(recipes)), recipes)
        ax.invert_yaxis()
        ax.set_xlabel(f"{label} (each model, 95% interval from its {rows[0]['num_srs']} digits)")
        ax.set_title(f"{label}: seeds of one recipe (one row) against recipes", fontsize=10)
        ax.grid(True, axis="x", color="0.92")
    return fig


def _responses(results: dict[str, SpectralShapleyResult]) -> Figure:
    fig = Figure(figsize=(13.0, 4.6), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    for name, result in results.items():
        plot_frequency_response(result.phi, result.stderr, result.band_frequencies, ax=left)
        label = f"{name}: SRS {float(result.srs):.2f}, balance {float(result.balance):+.2f}"
        plot_frequency_response(result.psi, None, result.band_frequencies, ax=right, label=label)
    left.set_title("Shapley value of each band, seed 0 (95% intervals)")
    right.set_title("Spectral importance distribution $\\psi$ (what SRS scores), seed 0")
    right.set_ylabel("$\\psi$ = (phi - min phi) / sum(phi - min phi)")
    right.get_legend().remove()
    fig.legend(*right.get_legend_handles_labels(), loc="outside right center", frameon=False, fontsize=8.5)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
