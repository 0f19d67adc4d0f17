"""Robust models are more interpretable because their gradients point at the nearest decision boundary.

Trains a standard and an L2-PGD adversarially trained CNN on BlockMNIST (a real MNIST digit in one 28 x 28 block, a
label-independent square in the other), each with a ``BoundaryMonitor`` logging to TensorBoard, then evaluates both
offline on 200 validation images with a thorough search (40 PGD steps per epsilon from the input, bisection):

* distance to the nearest boundary and the attack success rate,
* alignment of the input gradient with the boundary direction ``x - x'``, and of IG (zero baseline) with BIG,
* localization of gradient, IG and BIG on the digit block (the ground-truth mask).

Run (about 4 minutes on 2 CPU cores)::

    python examples/boundary_geometry.py --figures-dir docs/figures
    tensorboard --logdir outputs/boundary_geometry
"""

import argparse
import time
from pathlib import Path

import torch
from lightning.pytorch.loggers import TensorBoardLogger

from iaside_lightning import AttributionLocalization, BoundaryGeometry, BoundaryMonitor
from iaside_lightning.functional import boundary_geometry
from iaside_lightning.plotting import plot_attribution_grid

from _blockmnist_models import add_run_arguments, make_data, pixel_bounds, train, validation_tensors

#: Ascending L2 radii in standardised units (0.3 to 10 in pixel units): the standard model's boundary is ~0.7 pixel
#: units away, the robust model's ~4, beyond its training radius of 1.5.
LADDER = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
METHODS = {"gradient": "gradient", "integrated_gradients": "IG (zero baseline)", "big": "BIG"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--num-eval", type=int, default=200, help="validation images of the offline evaluation")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out_dir = args.out_dir or Path("outputs/boundary_geometry_quick" if args.quick else "outputs/boundary_geometry")
    data = make_data(args)
    bounds = pixel_bounds(data)
    print(f"BlockMNIST {args.variant}, classes {args.classes}: {len(data.train_set)} training images")

    models, monitors = {}, {}
    for kind in ("standard", "robust"):
        monitors[kind] = BoundaryMonitor(num_probes=32, epsilons=LADDER, bounds=bounds, mask_key=2, num_images=4)
        logger = TensorBoardLogger(out_dir, name=kind, version="")
        models[kind] = train(kind, data, args, callbacks=[monitors[kind]], logger=logger)

    images, labels, masks = validation_tensors(data, 16 if args.quick else args.num_eval)
    results = {}
    for kind, model in models.items():
        start = time.perf_counter()
        geometry = boundary_geometry(
            model, images, labels, preset="paper", epsilons=LADDER, steps=10 if args.quick else 40, random_start=False,
            bisection_steps=10, bounds=bounds,
        )
        metric = BoundaryGeometry()
        metric.update_from_result(geometry)
        scores = {key: float(value) for key, value in metric.compute().items()}
        for name in METHODS:
            localization = AttributionLocalization(top_k=0.1)
            localization.update(getattr(geometry, name), masks)
            scores |= {f"{name}/{k}": float(v) for k, v in localization.compute().items()}
        results[kind] = (geometry, scores)
        print(f"  {kind}: offline evaluation of {len(images)} images took {time.perf_counter() - start:.1f} s")

    print_table(results)
    figures_dir = args.figures_dir or out_dir
    figures_dir.mkdir(parents=True, exist_ok=True)
    save_figures(results, monitors, images, labels, masks, figures_dir)
    print(f"\nFigures in {figures_dir}; training curves: tensorboard --logdir {out_dir}")


def print_table(results: dict) -> None:
    rows = [
        ("accuracy", "accuracy"),
        ("attack success rate", "attack_success_rate"),
        ("distance to boundary (L2, std. units)", "distance"),
        ("cos(gradient, x - x')", "cos_gradient_boundary"),
        ("cos(IG, BIG)", "cos_ig_big"),
        ("|completeness error| of BIG", "abs_completeness_error"),
    ] + [(f"{label}: mass on the digit", f"{key}/mass_inside") for key, label in METHODS.items()] + [
        (f"{label}: top-10% pixels off the digit", f"{key}/top_k_outside") for key, label in METHODS.items()
    ]
    print(f"\n{'':42}{'standard':>18}{'robust':>18}")
    for label, key in rows:
        cells = []
        for _, scores in results.values():
            stderr = scores.get(f"{key}_stderr")
            cells.append(f"{scores[key]:.3f}" + (f" ± {stderr:.3f}" if stderr is not None and key != "accuracy" else ""))
        print(f"{label:42}" + "".join(f"{c:>18}" for c in cells))


def save_figures(results: dict, monitors: dict, images, labels, masks, folder: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), layout="constrained")
    distance_ax, alignment_ax, localization_ax = fig.subplots(1, 3)
    for kind, monitor in monitors.items():
        epochs = [r["epoch"] for r in monitor.history]
        style = {"marker": "o" if kind == "standard" else "s", "color": "C0" if kind == "standard" else "C1"}
        distance_ax.plot(epochs, [r["distance"] for r in monitor.history], **style, label=kind)
        alignment_ax.plot(epochs, [r["cos_gradient_boundary"] for r in monitor.history], **style, label=f"{kind}: cos(grad, x - x')")
        alignment_ax.plot(
            epochs, [r["cos_ig_big"] for r in monitor.history], **style, linestyle="--", alpha=0.5, label=f"{kind}: cos(IG, BIG)"
        )
    distance_ax.set(xlabel="epoch", ylabel="L2 distance to boundary (std. units)", title="Distance to the boundary (probe set)")
    alignment_ax.set(xlabel="epoch", ylabel="cosine", title="Alignment (probe set)")
    for ax in (distance_ax, alignment_ax):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    width = 0.38
    for i, (kind, (_, scores)) in enumerate(results.items()):
        values = [scores[f"{m}/mass_inside"] for m in METHODS]
        errors = [1.96 * scores[f"{m}/mass_inside_stderr"] for m in METHODS]
        positions = [j + (i - 0.5) * width for j in range(len(METHODS))]
        localization_ax.bar(positions, values, width, yerr=errors, capsize=3, label=kind)
    localization_ax.axhline(0.5, color="0.4", linewidth=0.8, linestyle="--", label="uniform (0.5)")
    localization_ax.set_xticks(range(len(METHODS)), list(METHODS.values()), fontsize=8)
    localization_ax.set(ylabel="attribution mass on the digit block", ylim=(0, 1), title="Localization (offline, 95% CI)")
    localization_ax.legend(fontsize=7)
    fig.savefig(folder / "boundary_geometry.png", dpi=100)
    for kind, (geometry, _) in results.items():
        n = 4
        grid, _ = plot_attribution_grid(
            images[:n], {label: getattr(geometry, key)[:n] for key, label in METHODS.items()}, masks[:n],
            labels[:n].tolist(), title=f"{kind} model (digit block outlined)",
        )
        grid.savefig(folder / f"boundary_attributions_{kind}.png", dpi=100)


if __name__ == "__main__":
    main()
