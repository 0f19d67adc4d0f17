"""DiffROAR on 10-class MNIST-5k: do robust models' input gradients rank pixels better than standard models'?

Two-class BlockMNIST saturates DiffROAR (docs/blockmnist.md). Here ten digit classes make a few pixels far from
enough, so the top-k and bottom-k of a ranking can differ. Five pixel rankings are computed once, on the 4,000
training and 1,000 validation images of MNIST-5k, and frozen: the input gradients of a standard CNN and of an L-inf
PGD adversarially trained CNN (both from examples/_mnist_models.py) and of an L2 PGD adversarially trained CNN (the
paper's kind of robustness, trained here), BIG (boundary-based integrated gradients) of the standard CNN, and a random
ranking (the null control: its top and bottom are exchangeable). Before retraining the example prints how much of
each digit's strokes and non-black pixels the top-k and bottom-k pixels keep, and draws the rankings of four digits.

For each level k, side (top-k / bottom-k kept, removed pixels set to black background, or ``--fill mean``) and run, a
fresh CNN is retrained with Lightning on the masked training images and scored on the masked validation images
(:func:`iaside_lightning.evaluation.diffroar`); a reference retraining on the unmasked images (k = 1) gives the
ceiling. The tables give means with 95% t intervals over the runs, DiffROAR as paired differences, and paired
comparisons of the rankings run by run (run r of every ranking shares its seed). Results and reading:
docs/diffroar.md.

Run (about 50 minutes on 2 busy CPU cores)::

    OMP_NUM_THREADS=1 python examples/diffroar_mnist.py --figures-dir docs/figures --results diffroar.json

``--replot diffroar.json`` redraws the tables and figure without retraining. ``--quick`` (300 training and 100
validation digits, one-epoch models, two levels, two runs) only checks that everything runs.
"""

import argparse
import json
import time
from functools import partial
from pathlib import Path

import torch
from _mnist_models import BASE_CONFIG, MNIST_NORMALIZATION, ZooConfig, default_cache_dir, train_or_load
from _student_t import t_half_width, t_quantile
from torch import Tensor, nn

from iaside_lightning.datasets import MNIST5kDataModule
from iaside_lightning.evaluation import DiffROARResult, compute_attributions, diffroar
from iaside_lightning.evaluation.retraining import best_validation_metric, preserved_random_state, quiet_lightning
from iaside_lightning.functional import boundary_integrated_gradients, boundary_search, pgd_attack
from iaside_lightning.models import AdversarialCNNClassifier, SmallCNNClassifier
from iaside_lightning.functional.sanity.unmasking import unmasking_masks
from iaside_lightning.plotting import plot_attribution_grid, plot_diffroar

LEVELS = (0.02, 0.05, 0.1, 0.2)
QUICK_LEVELS = (0.05, 0.2)
#: L2 radii (standardised units; one pixel unit is 3.25 of them) of the boundary search behind BIG.
BIG_EPSILONS = (1.0, 2.0, 4.0, 8.0, 16.0)
(MEAN,), (STD,) = MNIST_NORMALIZATION
#: Black background in standardised units: the fill of removed pixels, and the low end of the pixel box.
BLACK = -MEAN / STD
PIXEL_BOUNDS = (BLACK, (1 - MEAN) / STD)
#: L2 radius of the L2 adversarial training: 1.5 pixel units, as examples/_blockmnist_models.py.
L2_EPSILON = 1.5 / STD
#: Radii (pixel units) of the attacks that measure the models' robustness.
ATTACKS = {"l2": 1.0, "linf": 0.05}
STANDARD_NAME = "gradient, standard"
ROBUST_NAME = "gradient, robust L-inf"
L2_NAME = "gradient, robust L2"
BIG_NAME = "BIG, standard"
RANDOM_NAME = "random"
RANKINGS = (STANDARD_NAME, ROBUST_NAME, L2_NAME, RANDOM_NAME, BIG_NAME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 was fastest on a busy CPU)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="trained weights of the zoo")
    parser.add_argument("--figures-dir", type=Path, default=None, help="default outputs/diffroar_mnist[_quick]")
    parser.add_argument("--results", type=Path, default=None, help="also write the raw accuracies here (JSON)")
    parser.add_argument("--levels", type=float, nargs="+", default=None, help=f"fractions kept (default {LEVELS})")
    parser.add_argument("--repeats", type=int, default=5, help="retraining runs per level and side")
    parser.add_argument("--retrain-epochs", type=int, default=5, help="epochs of each retraining")
    parser.add_argument("--model-seed", type=int, default=0, help="seed of the three models under test")
    parser.add_argument(
        "--fill", choices=["background", "mean"], default="background",
        help="removed pixels: black background (default) or the training images' mean (the paper's)",
    )  # fmt: skip
    parser.add_argument(
        "--rankings", nargs="+", choices=RANKINGS, default=list(RANKINGS), metavar="NAME",
        help=f"rankings to evaluate (default: all of {', '.join(map(repr, RANKINGS))})",
    )  # fmt: skip
    parser.add_argument(
        "--no-retraining", action="store_true",
        help="stop before retraining: models' accuracies, rankings, the ink they keep and the rankings figure",
    )  # fmt: skip
    parser.add_argument(
        "--replot", type=Path, default=None, help="no training: the tables and figure of a --results file"
    )
    parser.add_argument("--quick", action="store_true", help="seconds: few digits, tiny models (for tests)")
    args = parser.parse_args()
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the intervals need two runs)")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    figures_dir = args.figures_dir or Path("outputs/diffroar_mnist_quick" if args.quick else "outputs/diffroar_mnist")
    figures_dir.mkdir(parents=True, exist_ok=True)
    if args.replot is not None:
        raw = json.loads(args.replot.read_text())
        ceiling = torch.tensor(raw.pop("unmasked"), dtype=torch.float64)
        setup = raw.pop("setup", {"fill": "background", "model_seed": 0})  # the first files did not record it
        _report({name: _from_json(entry) for name, entry in raw.items()}, ceiling, figures_dir, **setup)
        return
    levels = tuple(args.levels or (QUICK_LEVELS if args.quick else LEVELS))
    repeats = 2 if args.quick else args.repeats

    (train_x, train_y), (test_x, test_y) = _data(args.quick)
    print(f"MNIST-5k, 10 classes: {len(train_y)} training, {len(test_y)} validation images")
    quick = {"epochs": 1, "num_train": len(train_y)} if args.quick else {}
    seed = args.model_seed
    configs = {"standard": ZooConfig(BASE_CONFIG.name, width=8, seed=seed, **quick),
               "robust": ZooConfig("PGD training", width=8, augment="pgd", seed=seed, **quick)}
    models = {kind: train_or_load(config, args.cache_dir) for kind, config in configs.items()}
    models["robust L2"] = _train_l2_robust((train_x, train_y), (test_x, test_y), 1 if args.quick else 6, seed)
    print(f"  validation accuracy, clean / under 10-step PGD of L2 radius {ATTACKS['l2']} or L-inf radius "
          f"{ATTACKS['linf']} (pixel units):")
    for kind, model in models.items():
        robust = " / ".join(f"{_robust_accuracy(model, test_x, test_y, norm):.3f}" for norm in ATTACKS)
        print(f"  {kind:>9} model: {_accuracy(model, test_x, test_y):.3f} / {robust}")

    big = partial(_big, steps=3 if args.quick else 10)
    schemes = {  # the model whose attributions rank the pixels, and the attribution method
        STANDARD_NAME: (models["standard"], "gradient"),
        ROBUST_NAME: (models["robust"], "gradient"),
        L2_NAME: (models["robust L2"], "gradient"),
        RANDOM_NAME: (models["standard"], "random"),
        BIG_NAME: (models["standard"], big),
    }
    schemes = {name: scheme for name, scheme in schemes.items() if name in args.rankings}
    rankings = {}
    for name, (model, method) in schemes.items():
        tick = time.perf_counter()
        rankings[name] = tuple(
            compute_attributions(model, x, y, method, batch_size=250, seed=seed)
            for x, y, seed in ((train_x, train_y, 1), (test_x, test_y, 2))
        )
        print(f"  ranking {name!r}: {time.perf_counter() - tick:.0f} s")
    for split, index in (("training", 0), ("validation", 1)) if BIG_NAME in rankings else ():
        unranked = (rankings[BIG_NAME][index].flatten(1).abs().sum(1) == 0).float().mean()
        print(f"  BIG: no boundary point found (zero map, ranked by position) for {unranked:.1%} of {split} images")
    _print_ink_kept({name: scores for name, (_, scores) in rankings.items()}, test_x, levels)
    suffix = _suffix(args.fill, seed)
    grid, _ = plot_attribution_grid(
        test_x[:4], {name.replace(", ", "\n"): scores[:4] for name, (_, scores) in rankings.items()},
        labels=test_y[:4].tolist(), title="Rankings of four validation digits: |attribution| per pixel",
    )  # fmt: skip
    grid.savefig(figures_dir / f"diffroar_mnist_rankings{suffix}.png", dpi=100)
    if args.no_retraining:
        return

    width = 4 if args.quick else 8
    run = partial(
        diffroar, lambda: SmallCNNClassifier(in_channels=1, num_classes=10, width=width, lr=3e-3),
        (train_x, train_y), (test_x, test_y), repeats=repeats, per="pixel",
        fill=BLACK if args.fill == "background" else "mean",
        trainer_kwargs={"max_epochs": 1 if args.quick else args.retrain_epochs}, batch_size=64,
    )  # fmt: skip
    print(f"\nReference: {repeats} retrainings on the unmasked images (k = 1)", flush=True)
    ceiling = run(*next(iter(rankings.values())), levels=(1.0,)).top[0]  # k = 1 keeps everything: any ranking
    print(f"Unmasked images (k = 1): test accuracy of the retrained models {_interval(ceiling)}")
    results: dict[str, DiffROARResult] = {}
    for name, (train_scores, test_scores) in rankings.items():
        print(f"\nDiffROAR of {name}: {2 * len(levels) * repeats} retrainings", flush=True)
        results[name] = run(train_scores, test_scores, levels=levels)
        if args.results is not None:  # after each ranking, so that a cut run keeps what it finished
            raw = {name: {"levels": r.levels.tolist(), "top": r.top.tolist(), "bottom": r.bottom.tolist()}
                   for name, r in results.items()}
            setup = {"fill": args.fill, "model_seed": seed}
            args.results.write_text(json.dumps({"setup": setup, "unmasked": ceiling.tolist(), **raw}, indent=1))
    _report(results, ceiling, figures_dir, args.fill, seed)
    print(f"Total {time.perf_counter() - start:.0f} s")


def _from_json(entry: dict) -> DiffROARResult:
    """A retrained, per-pixel result from its ``--results`` entry."""
    levels, top, bottom = (torch.tensor(entry[key], dtype=torch.float64) for key in ("levels", "top", "bottom"))
    return DiffROARResult(levels, top, bottom, retrained=True, per="pixel")


def _report(
    results: dict[str, DiffROARResult], ceiling: Tensor, figures_dir: Path, fill: str, model_seed: int
) -> None:
    """Print the tables and draw the figure: accuracies (chance and unmasked ceiling marked) and DiffROAR vs k.

    The figure is ``diffroar_mnist.png``, suffixed ``_mean`` for the mean fill and ``_seed<s>`` for model seed ``s``.
    """
    levels, repeats = next(iter(results.values())).levels.tolist(), len(ceiling)
    _print_tables(results, levels)
    fig, axes = None, None
    shifts = torch.linspace(0.93, 1.07, len(results)).tolist()
    for (name, result), shift in zip(results.items(), shifts):
        fig, axes = plot_diffroar(
            result, axes, label=name, interval=t_quantile(repeats - 1), shift=shift,
            title=f"DiffROAR on 10-class MNIST-5k: pixels kept by |attribution|, {fill} fill, model seed {model_seed}"
                  f"\nmean and 95% t interval over {repeats} retrainings",
        )  # fmt: skip
    acc_ax, diff_ax = axes
    references = [  # colours are named in the DiffROAR panel's legend
        acc_ax.axhline(float(ceiling.mean()), color="black", linestyle=":", linewidth=1, label="unmasked (k = 1)"),
        acc_ax.axhline(0.1, color="grey", linestyle="-.", linewidth=1, label="chance"),
    ]
    acc_ax.legend(handles=references, fontsize=8, loc="upper left")
    diff_ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))  # outside: the curves fill the panel
    acc_ax.set_title("solid: top-k kept, dashed: bottom-k kept", fontsize=9)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(levels, [f"{k:g}" for k in levels])
        ax.minorticks_off()
    path = figures_dir / f"diffroar_mnist{_suffix(fill, model_seed)}.png"
    fig.savefig(path, dpi=100)
    print(f"\nFigure {path}")


def _suffix(fill: str, model_seed: int) -> str:
    """Figure name suffix: ``_mean`` for the mean fill, ``_seed<s>`` for model seed ``s``."""
    return ("_mean" if fill == "mean" else "") + (f"_seed{model_seed}" if model_seed else "")


def _print_ink_kept(rankings: dict[str, Tensor], images: Tensor, levels: tuple[float, ...]) -> None:
    """Share of each image's stroke pixels (brighter than 0.5) and of its non-black pixels that its top-k / bottom-k
    pixels keep, mean over images: with a black fill, non-black pixels are all that a kept pixel can show."""
    pixels = images * STD + MEAN
    for what, ink in (("Stroke pixels (> 0.5)", pixels > 0.5), ("Non-black pixels (> 0)", pixels > 1e-3)):
        print(f"\n{what} kept: share of each validation digit's ones that are kept, top-k / bottom-k (they are "
              f"{float(ink.float().mean()):.1%} of all pixels)")
        print("| ranking | " + " | ".join(f"k = {k:g}" for k in levels) + " |\n|---|" + "---|" * len(levels))
        for name, scores in rankings.items():
            cells = []
            for k in levels:
                kept = (float(((unmasking_masks(scores, k, keep=keep, per="pixel") & ink).flatten(1).sum(1)
                               / ink.flatten(1).sum(1).clamp_min(1)).mean()) for keep in ("top", "bottom"))
                cells.append(" / ".join(f"{share:.3f}" for share in kept))
            print(f"| {name} | " + " | ".join(cells) + " |")


def _data(quick: bool) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """MNIST-5k's training and validation split (standardised), as the zoo models were trained on it."""
    data = MNIST5kDataModule(batch_size=64, num_val=1000, seed=0)
    data.setup("fit")
    (train_x, train_y), (test_x, test_y) = data.train_set.tensors, data.val_set.tensors
    if quick:
        return (train_x[:300], train_y[:300]), (test_x[:100], test_y[:100])
    return (train_x, train_y), (test_x, test_y)


def _accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    with torch.inference_mode():
        return float((model(images).argmax(1) == labels).float().mean())


def _robust_accuracy(model: nn.Module, images: Tensor, labels: Tensor, norm: str) -> float:
    """Accuracy under a 10-step PGD attack of radius ``ATTACKS[norm]`` pixel units, inside the pixel box."""
    _, flipped = pgd_attack(model, images, labels, ATTACKS[norm] / STD, norm=norm, steps=10, bounds=PIXEL_BOUNDS)
    return 1.0 - float(flipped.float().mean())


def _train_l2_robust(train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], epochs: int, seed: int) -> nn.Module:
    """A width-8 CNN trained with Lightning on 7-step L2 PGD examples of radius :data:`L2_EPSILON`; eval mode."""
    tick, built = time.perf_counter(), []

    def build() -> AdversarialCNNClassifier:  # called by the harness after seeding, so the run is reproducible
        built.append(AdversarialCNNClassifier(
            in_channels=1, num_classes=10, width=8, lr=3e-3, attack_epsilon=L2_EPSILON, attack_steps=7,
            attack_bounds=PIXEL_BOUNDS,
        ))  # fmt: skip
        return built[-1]

    with preserved_random_state(), quiet_lightning():
        best_validation_metric(build, train, test, metric="val/acc", trainer_kwargs={"max_epochs": epochs},
                               batch_size=64, seed=seed)  # fmt: skip
    print(f"  trained the L2-robust model ({epochs} epochs) in {time.perf_counter() - tick:.0f} s")
    return built[-1].eval()


def _big(model: nn.Module, images: Tensor, labels: Tensor, steps: int) -> Tensor:
    """BIG of one batch: an L2 boundary search inside the pixel box, then integrated gradients from its points."""
    search = boundary_search(
        model, images, labels, epsilons=BIG_EPSILONS, steps=steps, random_start=False, bisection_steps=6,
        bounds=PIXEL_BOUNDS,
    )  # fmt: skip
    return boundary_integrated_gradients(model, images, labels, search.points, steps=10)


def _interval(values: Tensor) -> str:
    """``mean ± half-width`` of a 95% t interval over the runs (the last dimension)."""
    return f"{float(values.mean()):.3f} ± {t_half_width(values.flatten().tolist()):.3f}"


def _print_tables(results: dict[str, DiffROARResult], levels: list[float]) -> None:
    """Markdown tables: accuracies, DiffROAR, and paired differences between rankings, with 95% t intervals."""
    header = "| ranking | " + " | ".join(f"k = {k:g}" for k in levels) + " |\n|---|" + "---|" * len(levels)
    for title, values in (
        ("Top-k kept: test accuracy of the retrained models", lambda r: r.top),
        ("Bottom-k kept: test accuracy of the retrained models", lambda r: r.bottom),
        ("DiffROAR(k) = top-k - bottom-k (paired by run)", lambda r: r.diff),
    ):
        print(f"\n{title} (mean ± 95% t interval over runs)\n{header}")
        for name, result in results.items():
            print(f"| {name} | " + " | ".join(_interval(row) for row in values(result)) + " |")
    print(f"\nPaired differences between rankings, run by run (mean ± 95% t interval)\n{header}")
    comparisons = (
        ("DiffROAR: robust L-inf - standard gradient", ROBUST_NAME, STANDARD_NAME, lambda r: r.diff),
        ("top-k: robust L-inf - standard gradient", ROBUST_NAME, STANDARD_NAME, lambda r: r.top),
        ("bottom-k: robust L-inf - standard gradient", ROBUST_NAME, STANDARD_NAME, lambda r: r.bottom),
        ("DiffROAR: robust L2 - standard gradient", L2_NAME, STANDARD_NAME, lambda r: r.diff),
        ("top-k: robust L2 - standard gradient", L2_NAME, STANDARD_NAME, lambda r: r.top),
        ("bottom-k: robust L2 - standard gradient", L2_NAME, STANDARD_NAME, lambda r: r.bottom),
        ("DiffROAR: BIG - standard gradient", BIG_NAME, STANDARD_NAME, lambda r: r.diff),
        ("DiffROAR: standard gradient - random", STANDARD_NAME, RANDOM_NAME, lambda r: r.diff),
    )
    for title, first, second, values in comparisons:
        if first not in results or second not in results:
            continue
        cells = (_interval(a - b) for a, b in zip(values(results[first]), values(results[second])))
        print(f"| {title} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
