"""``fit`` time with vs without a monitor (targets: spectral <= 1.15, boundary <= 1.20), on two examples.

- ``--example quickstart`` (default): ``examples/quickstart.py`` with ``--monitor none`` and ``--monitor spectral``
  (the SpectralRobustnessMonitor with its defaults) or ``--monitor boundary`` (the BoundaryMonitor, fast preset);
  same data, model, logger and seed. It also reports the time inside the monitor's hooks (Lightning's
  ``SimpleProfiler``) as a share of the fit without it, which machine noise affects least.
- ``--example label_noise``: ``configs/label_noise.yaml`` through the LightningCLI (MNIST-5k, 40 % label noise, the
  monitor every 5 epochs), with its monitor's ``max_samples`` (64 in the config) set to the monitor's default (or
  ``--max-samples``), against the same config without the monitor; ``--epochs`` (default 10) cuts the run. Times are
  the whole command's (start-up included) in wall-clock and child-process CPU seconds.

Runs alternate (without, with, without, with ...) so that drifting machine load hits both alike; it prints the ratio
of medians in wall-clock and CPU seconds (run with ``OMP_NUM_THREADS=1`` so that CPU time is one thread's).

    python benchmarks/bench_callback_overhead.py                         # quick-start, 2 repeats (~5 min)
    python benchmarks/bench_callback_overhead.py --example label_noise   # 10 epochs, 2 repeats (~6 min)
    python benchmarks/bench_callback_overhead.py --quick                 # tiny settings, under a minute
    python benchmarks/bench_callback_overhead.py --monitor boundary
"""

import argparse
import inspect
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "quickstart.py"
LABEL_NOISE = ROOT / "configs" / "label_noise.yaml"
#: The label-noise config's monitor, reduced to the options that describe the data and the schedule.
LABEL_NOISE_MONITOR = """
trainer:
  callbacks:
    - class_path: iaside_lightning.callbacks.precise_batchnorm.PreciseBatchNorm
{monitor}"""
MONITOR = """    - class_path: iaside_lightning.SpectralRobustnessMonitor
      init_args:
        fill: permute
        normalization: [[0.1307], [0.3081]]
        every_n_epochs: 5
        log_prefix: spectral/
"""


def quickstart_seconds(extra: list[str]) -> tuple[float, float, float]:
    """Run the quick-start once and return what it prints: fit (wall-clock, CPU) seconds and the monitor hooks'."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE), "--out-dir", out, "--profile", *extra], capture_output=True, text=True, check=True
        )
    match = re.search(r"fit took ([0-9.]+) s \(([0-9.]+) s CPU\)", done.stdout)
    hooks = re.search(r"monitor hooks took ([0-9.]+) s", done.stdout)
    srs = re.search(r"SRS = [0-9.]+ \+- ([0-9.]+)", done.stdout)
    if srs is not None:  # the spectral monitor's last epoch: what its budget buys
        print(f"  SRS standard error at the last epoch: {srs.group(1)}", flush=True)
    return float(match.group(1)), float(match.group(2)), float(hooks.group(1))


def default_max_samples() -> int:
    """The spectral monitor's default ``max_samples`` (read from its signature, so that this script follows it)."""
    from iaside_lightning import SpectralRobustnessMonitor

    return inspect.signature(SpectralRobustnessMonitor).parameters["max_samples"].default


def label_noise_seconds(with_monitor: bool, epochs: int, max_samples: Optional[int]) -> tuple[float, float, float]:
    """Run the label-noise config once (CLI) and return its wall-clock and CPU seconds (no hook time: 0)."""
    with tempfile.TemporaryDirectory() as out:
        override = Path(out) / "callbacks.yaml"
        # Stated explicitly: LightningCLI merges a later config's callback arguments into the earlier config's.
        monitor = MONITOR + f"        max_samples: {default_max_samples() if max_samples is None else max_samples}\n"
        override.write_text(LABEL_NOISE_MONITOR.format(monitor=monitor if with_monitor else ""))
        command = [
            sys.executable, "-m", "iaside_lightning.cli", "fit", "--config", str(LABEL_NOISE), "--config", str(override),
            f"--trainer.max_epochs={epochs}", f"--trainer.logger.init_args.save_dir={out}",
            "--trainer.enable_progress_bar=false",
        ]
        before, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return time.perf_counter() - wall, cpu, 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (quick-start: 2 epochs, 1024 images)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--example", choices=["quickstart", "label_noise"], default="quickstart")
    parser.add_argument("--epochs", type=int, default=10, help="label_noise: epochs of each fit")
    parser.add_argument("--monitor", choices=["spectral", "boundary"], default="spectral")
    parser.add_argument("--max-samples", type=int, default=None, help="the spectral monitor's (default: its default)")
    args = parser.parse_args()
    if args.example == "label_noise" and args.monitor != "spectral":
        parser.error("--example label_noise measures the spectral monitor only")
    extra = ["--epochs", "2", "--num-train", "1024"] if args.quick else []
    extra += [] if args.max_samples is None else ["--max-samples", str(args.max_samples)]
    times: dict[str, list[tuple[float, float, float]]] = {"without": [], "with": []}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        if args.example == "quickstart":
            times["without"].append(quickstart_seconds([*extra, "--monitor", "none"]))
            times["with"].append(quickstart_seconds([*extra, "--monitor", args.monitor]))
        else:
            epochs = 5 if args.quick else args.epochs
            times["without"].append(label_noise_seconds(False, epochs, None))
            times["with"].append(label_noise_seconds(True, epochs, args.max_samples))
    for clock, column in (("wall", 0), ("CPU", 1)):
        medians = {}
        for name, runs in times.items():
            values = [run[column] for run in runs]
            medians[name] = statistics.median(values)
            print(f"{clock:>4} fit {name:>7} monitor: median {medians[name]:.1f} s  ({', '.join(f'{v:.1f}' for v in values)})")
        target = {"spectral": 1.15, "boundary": 1.20}[args.monitor]
        print(f"{clock:>4} with / without {args.monitor} monitor: {medians['with'] / medians['without']:.3f}  (target <= {target})")
    if args.example == "quickstart":  # less sensitive to machine noise than the ratio of two fits: the hooks' time
        hooks = statistics.median(run[2] for run in times["with"])
        without = statistics.median(run[0] for run in times["without"])
        print(f"monitor hooks: median {hooks:.1f} s = {hooks / without:.3f} of the fit without the monitor")


if __name__ == "__main__":
    main()
