"""Do input gradients highlight discriminative features? Feature leakage on BlockMNIST, against a shuffled baseline.

BlockMNIST puts the label's evidence (a real MNIST digit) in one 28 x 28 block and a label-independent square outline
in the other, at random top or bottom. Shah et al. (NeurIPS 2021) found that standard models' input gradients also
light up the uninformative block ("feature leakage"), robust models' gradients do not, and that with the digit
always on top ("Top" variant) even standard models' gradients stay on it.

For each of ``--seeds`` training seeds this example trains (or loads, from the cache shared with
``examples/boundary_geometry.py``: the same models) a standard and an L2-PGD adversarially trained CNN, plus a
standard CNN on the Top variant, and splits the input gradients' magnitude over three regions: the digit block, the
null pattern's ink (the square's outline) and the null block's blank background. Each share is set against the share
a pixel-shuffled gradient has (the region's pixel share), so that diffuse noise spread evenly over the background is
not counted as leakage; the shuffled gradients themselves are scored as a check. Means over seeds with 95% t
intervals, per-seed values and paired differences are printed.

Run (about a minute after examples/boundary_geometry.py, which caches the standard and robust models)::

    python examples/blockmnist.py --figures-dir docs/figures
"""

import argparse
import time
from pathlib import Path

import torch

from iaside_lightning.evaluation import compute_attributions
from iaside_lightning.functional import shuffle_pixels
from iaside_lightning.plotting import plot_attribution_grid

from _blockmnist_models import (
    REGIONS,
    add_run_arguments,
    localization_scores,
    make_data,
    mean_interval,
    pixel_bounds,
    plot_seed_bars,
    seeds_of,
    train,
    validation_tensors,
)

#: The scored gradients: (model kind, data variant, shuffled?) per row of the table.
ROWS = {
    "gradient, standard model": ("standard", "random", False),
    "gradient, robust model": ("robust", "random", False),
    "gradient, standard model (Top)": ("standard", "top", False),
    "shuffled gradient, standard model": ("standard", "random", True),
}
#: The differences of rows reported per seed, paired by seed.
CONTRASTS = (("gradient, robust model", "gradient, standard model"), ("gradient, standard model (Top)", "gradient, standard model"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    figures_dir = args.figures_dir or args.out_dir or Path("outputs/blockmnist_quick" if args.quick else "outputs/blockmnist")
    figures_dir.mkdir(parents=True, exist_ok=True)
    data = {"random": make_data(args), "top": make_data(args, variant="top")}
    validation = {variant: validation_tensors(module) for variant, module in data.items()}
    seeds = seeds_of(args)
    background = pixel_bounds(data["random"])[0]
    print(f"BlockMNIST, classes {args.classes}: {len(data['random'].train_set)} training, {len(validation['random'][0])} "
          f"validation images, seeds {list(seeds)}")

    scores: dict[str, list[dict[str, float]]] = {row: [] for row in ROWS}
    first_maps = {}
    for seed in seeds:
        configurations = dict.fromkeys((kind, variant) for kind, variant, _ in ROWS.values())  # each model once
        models = {(kind, variant): train(kind, data[variant], args, seed) for kind, variant in configurations}
        for row, (kind, variant, shuffled) in ROWS.items():
            images, labels, masks = validation[variant]
            gradient = compute_attributions(models[kind, variant], images, labels, "gradient")
            if shuffled:
                gradient = shuffle_pixels(gradient, seed=seed)
            scores[row].append(localization_scores(gradient, images, masks, background))
            if seed == seeds[0] and variant == "random":
                first_maps[row] = gradient
        print(f"  seed {seed} scored (elapsed {time.perf_counter() - start:.0f} s)", flush=True)

    print_tables(scores, len(validation["random"][0]))
    save_figures(scores, first_maps, validation["random"], figures_dir)
    print(f"\nFigures in {figures_dir}; total {time.perf_counter() - start:.0f} s")


def print_tables(scores: dict[str, list[dict[str, float]]], num_images: int) -> None:
    """Per row and region: mass and excess over the shuffled baseline (mean over seeds ± 95% t), then contrasts."""
    first = next(iter(scores.values()))[0]
    regions = {"digit_block": "digit block", **REGIONS}
    baselines = ", ".join(f"{label} {first[f'baseline/{region}']:.4f}" for region, label in regions.items())
    print(f"\nShuffled baseline (pixel share of each region): {baselines}")
    seeds = len(next(iter(scores.values())))
    print(f"\nInput-gradient mass per region, mean over {seeds} training seeds ± 95% t interval ({num_images} validation images each)")
    columns = [("mass/digit_block", "mass: digit block")]
    columns += [(f"excess/{region}", f"excess: {label}") for region, label in REGIONS.items()]
    columns.append(("top_k_outside", "top-10% off digit block"))
    print(f"{'attribution':36}" + "".join(f"{name:>33}" for _, name in columns))
    for row, rows in scores.items():
        cells = [_cell(*mean_interval([r[key] for r in rows])) for key, _ in columns]
        print(f"{row:36}" + "".join(f"{c:>33}" for c in cells))
    print("\nPaired differences per seed (mean ± 95% t interval)")
    for a, b in CONTRASTS:
        cells = [_cell(*mean_interval([x[key] - y[key] for x, y in zip(scores[a], scores[b])]), sign=True) for key, _ in columns]
        print(f"{a.split(', ')[1] + ' - ' + b.split(', ')[1]:36}" + "".join(f"{c:>33}" for c in cells))
    print("\nPattern ink: mass / shuffled mass (mean over seeds)")
    for row, rows in scores.items():
        ratio = mean_interval([r["mass/null_pattern"] / r["baseline/null_pattern"] for r in rows])
        print(f"{row:36}{_cell(*ratio):>24}")
    print("\nPer seed")
    for key, name in columns:
        for row, rows in scores.items():
            print(f"{name + ' | ' + row:70}" + " ".join(f"{r[key]:.3f}" for r in rows))


def _cell(mean: float, half: float, sign: bool = False) -> str:
    return f"{mean:{'+' if sign else ''}.3f} ± {half:.3f}"


def save_figures(scores: dict, first_maps: dict, validation: tuple, folder: Path) -> None:
    """blockmnist_leakage.png (excess mass per region over seeds) and blockmnist_gradients.png (the first seed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 3.8), layout="constrained")
    groups = {row.replace("gradient, ", ""): rows for row, rows in scores.items()}
    first = next(iter(scores.values()))
    for ax, (region, label) in zip(fig.subplots(1, len(REGIONS)), REGIONS.items()):
        plot_seed_bars(ax, groups, [f"excess/{region}"], ["input gradient"])
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set(ylabel=f"mass share - shuffled ({first[0][f'baseline/{region}']:.3f})", title=label)
        ax.grid(alpha=0.3, axis="y")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=len(groups), fontsize=8)
    fig.suptitle(
        f"Input-gradient mass in excess of a pixel-shuffled gradient (> 0: preferred), {len(first)} seeds, 95% CI",
        fontsize=10,
    )
    fig.savefig(folder / "blockmnist_leakage.png", dpi=100)
    images, labels, masks = validation
    grid, _ = plot_attribution_grid(
        images[:4],
        {row.replace("shuffled gradient", "shuffled").replace(", ", "\n").replace(" model", ""): maps[:4]
         for row, maps in first_maps.items()},
        masks[:4], labels[:4].tolist(), title="Input gradients, seed 0",
    )
    grid.savefig(folder / "blockmnist_gradients.png", dpi=100)


if __name__ == "__main__":
    main()
