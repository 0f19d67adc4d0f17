"""Do input gradients highlight discriminative features? BlockMNIST feature leakage and DiffROAR.

BlockMNIST puts the label's evidence (a real MNIST digit) in one 28 x 28 block and a label-independent square in
the other, at random top or bottom. Shah et al. (NeurIPS 2021) found that standard models' input gradients also
light up the uninformative block ("feature leakage"), robust models' gradients do not, and that DiffROAR (accuracy
of models retrained on the top-k vs the bottom-k attributed pixels) is higher for robust models' gradients.

This example trains a standard and an L2-PGD adversarially trained CNN, plus a standard CNN on the "Top" variant
(digit always on top), and measures:

* localization of input gradients (and BIG) on the digit block: attribution mass there, top-10% pixels outside it;
* DiffROAR of the input gradients of the standard and robust model and of a random attribution, retraining fresh
  CNNs with Lightning on the unmasked images (levels k = 5% ... 80%, 3 runs of 8 epochs each), plus the cheap proxy that
  evaluates the model itself on the unmasked images without retraining.

Run (about 10 minutes on 2 CPU cores)::

    python examples/blockmnist.py --figures-dir docs/figures
"""

import argparse
import time
from pathlib import Path

import torch

from iaside_lightning import AttributionLocalization
from iaside_lightning.evaluation import compute_attributions, diffroar, diffroar_proxy
from iaside_lightning.functional import boundary_geometry
from iaside_lightning.models import SmallCNNClassifier
from iaside_lightning.plotting import plot_attribution_grid, plot_diffroar

from _blockmnist_models import add_run_arguments, make_data, pixel_bounds, train, validation_tensors

LEVELS = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3, help="retraining runs per DiffROAR level")
    parser.add_argument("--retrain-epochs", type=int, default=8, help="epochs of each DiffROAR retraining")
    parser.add_argument(
        "--fill", choices=["background", "mean"], default="background",
        help="value of removed pixels: black background (default) or the data set's mean (the paper's choice)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    figures_dir = args.figures_dir or args.out_dir or Path("outputs/blockmnist_quick" if args.quick else "outputs/blockmnist")
    figures_dir.mkdir(parents=True, exist_ok=True)

    data, top_data = make_data(args), make_data(args, variant="top")
    print(f"BlockMNIST, classes {args.classes}: {len(data.train_set)} training, {len(data.val_set)} validation images")
    models = {"standard": train("standard", data, args), "robust": train("robust", data, args)}
    top_model = train("standard", top_data, args)

    images, labels, masks = validation_tensors(data)
    schemes = {  # the model whose attributions rank the pixels, and the attribution method
        "gradient, standard": (models["standard"], "gradient"),
        "gradient, robust": (models["robust"], "gradient"),
        "random": (models["standard"], "random"),
    }
    # Each scheme's attributions of the validation images, computed once: localization, DiffROAR and its proxy.
    test_scores = {
        name: compute_attributions(model, images, labels, method, seed=len(images)) for name, (model, method) in schemes.items()
    }
    top_images, top_labels, top_masks = validation_tensors(top_data)
    top_gradient = compute_attributions(top_model, top_images, top_labels, "gradient")
    big = boundary_geometry(
        models["standard"], images, labels, epsilons=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0), steps=20, bounds=pixel_bounds(data)
    ).big
    print("\nLocalization on the digit block (validation images; 0.5 = no preference between the blocks)")
    print(f"{'attribution':34}{'mass on digit':>16}{'top-10% off digit':>20}")
    for name, attribution, mask in [
        ("gradient, standard model", test_scores["gradient, standard"], masks),
        ("gradient, robust model", test_scores["gradient, robust"], masks),
        ("gradient, standard model (Top)", top_gradient, top_masks),
        ("BIG, standard model", big, masks),
    ]:
        metric = AttributionLocalization(top_k=0.1)
        metric.update(attribution, mask)
        scores = metric.compute()
        print(
            f"{name:34}{float(scores['mass_inside']):>9.3f} ± {float(scores['mass_inside_stderr']):.3f}"
            f"{float(scores['top_k_outside']):>13.3f} ± {float(scores['top_k_outside_stderr']):.3f}"
        )
    grid, _ = plot_attribution_grid(
        images[:4],
        {"gradient\nstandard": test_scores["gradient, standard"][:4], "gradient\nrobust": test_scores["gradient, robust"][:4],
         "BIG\nstandard": big[:4]},
        masks[:4], labels[:4].tolist(),
        title="BlockMNIST: input gradients (digit block outlined)",
    )
    grid.savefig(figures_dir / "blockmnist_gradients.png", dpi=100)

    train_images, train_labels, _ = data.train_set.tensors
    width = 4 if args.quick else 8
    # With the mean as fill, removed pixels (0 in standardised units) differ from black background (-0.42): the
    # retrained model can read the mask's shape, which follows the digit (docs/blockmnist.md).
    fill = pixel_bounds(data)[0] if args.fill == "background" else "mean"
    trainer_kwargs = {"max_epochs": 1 if args.quick else args.retrain_epochs}
    results, proxies = {}, {}
    repeats = 1 if args.quick else args.repeats
    for name, (model, method) in schemes.items():
        print(f"\nDiffROAR of {name}: {2 * len(LEVELS) * repeats} retrainings")
        results[name] = diffroar(
            lambda: SmallCNNClassifier(in_channels=1, num_classes=len(args.classes), width=width, lr=3e-3),
            (train_images, train_labels), (images, labels),
            compute_attributions(model, train_images, train_labels, method, seed=len(train_images)), test_scores[name],
            levels=LEVELS, repeats=repeats, per="pixel", fill=fill, trainer_kwargs=trainer_kwargs,
            batch_size=64,
        )
        proxies[name] = diffroar_proxy(model, images, labels, test_scores[name], levels=LEVELS, per="pixel", fill=fill)

    print(f"\n{'DiffROAR(k)':22}" + "".join(f"{k:>14.2f}" for k in LEVELS))
    for name, result in results.items():
        cells = [f"{row['diff']:+.3f}±{row['std']:.3f}" for row in result.rows()]
        print(f"{name:22}" + "".join(f"{c:>14}" for c in cells))
    print(f"\n{'proxy (no retraining)':22}" + "".join(f"{k:>14.2f}" for k in LEVELS))
    for name, result in proxies.items():
        print(f"{name:22}" + "".join(f"{row['diff']:>+14.3f}" for row in result.rows()))

    fig, axes = None, None
    for name, result in results.items():
        fig, axes = plot_diffroar(result, axes, label=name, title=f"DiffROAR on BlockMNIST (pixels ranked by |attribution|, fill: {args.fill})")
    fig.savefig(figures_dir / f"blockmnist_diffroar_{args.fill}.png", dpi=100)
    print(f"\nFigures in {figures_dir}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
