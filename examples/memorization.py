"""Memorisation study: find the training samples a CNN memorised (its noisy labels) from band-limited coalition values.

For every noise rate and seed a SmallCNNClassifier (width 32, or ``--width``) is trained on the 4,000 training
digits of MNIST-5k whose labels were replaced, with that probability, by a different class (``--noise pair``: by the
next class), with a one-cycle schedule long enough to fit every noisy label. At snapshot epochs a fixed probe of
1,500 training samples is scored, with the labels the model was trained with, by the spectral detector
(:func:`iaside_lightning.functional.memorization_scores`: mean low-pass loss over the cut-offs most samples
survive) and by the baselines: loss, margin, loss under a Gaussian blur and under Gaussian pixel noise of
matched strength, area under the margin and mean loss over epochs. After the last epoch the top ``rate * 4000``
suspects of the spectral detector, the loss and the area under the margin are dropped and a fresh model retrained.

Run (about 65 minutes on one busy CPU core; needs ``pip install "iaside-lightning[mnist]"``)::

    python examples/memorization.py --figures-dir docs/figures

Every run is saved under ``--out-dir/runs`` as soon as it ends, so an interrupted study resumes where it stopped.
Then the audit's cost is measured in a real Lightning fit (``cost.json``: the same fit with and without
``MemorizationAudit()``). The report (``report.md``, ``summary.json``) and, with ``--figures-dir``, the figures are
written at the end.
"""

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _memorization_runs import StudyConfig, run_study_job  # noqa: E402


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.2, 0.4], help="label-noise rates")
    parser.add_argument("--seeds", type=int, default=5, help="runs per rate (seeds 0 .. n-1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="runs and report (default outputs/memorization[_quick])"
    )
    parser.add_argument("--figures-dir", type=Path, default=None, help="also save the figures as PNG files here")
    parser.add_argument("--stage", choices=("all", "runs", "cost", "report"), default="all", help="what to do")
    parser.add_argument("--noise", choices=("symmetric", "pair"), default="symmetric", help="label-noise type")
    parser.add_argument("--width", type=int, default=32, help="channels of the CNN's first block")
    parser.add_argument("--no-retrain", action="store_true", help="skip the drop-and-retrain comparison")
    parser.add_argument("--quick", action="store_true", help="under a minute: 1 rate, 2 seeds, a tiny model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    config = StudyConfig(noise=args.noise, width=args.width, retrain_seeds=0 if args.no_retrain else 3)
    if args.out_dir is None:  # quick runs never share a folder with the study's saved runs
        args.out_dir = Path("outputs/memorization_quick" if args.quick else "outputs/memorization")
    if args.quick:
        args.rates, args.seeds = [0.4], 2
        config = dataclasses.replace(
            config, epochs=4, snapshot_epochs=(2, 4), width=8, num_probe=200, num_train=600, retrain_epochs=1,
            retrain_seeds=1,
        )
    if args.stage in ("all", "runs"):
        start = time.perf_counter()
        _log(f"{len(args.rates) * args.seeds} runs ({len(args.rates)} rates x {args.seeds} seeds)")
        for seed in range(args.seeds):  # seeds outermost: an interrupted study has both rates for its first seeds
            for rate in args.rates:
                run_study_job(rate, seed, config, args.out_dir, _log)
        _log(f"all runs done in {time.perf_counter() - start:.0f} s")
    if args.stage in ("all", "cost"):
        from _memorization_cost import measure_cost

        measure_cost(args.out_dir, _log, **({"epochs": 5, "width": 4, "repeats": 1} if args.quick else {}))
    if args.stage in ("all", "report"):
        from _memorization_report import write_report

        write_report(args.out_dir, args.rates, args.seeds, args.figures_dir, _log)


if __name__ == "__main__":
    main()
