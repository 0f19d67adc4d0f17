"""``fit`` time of the quick-start example with vs without a monitor (targets: spectral <= 1.15, boundary <= 1.20).

Runs ``examples/quickstart.py`` alternately with ``--monitor none`` and ``--monitor spectral`` (the
SpectralRobustnessMonitor with its defaults) or ``--monitor boundary`` (the BoundaryMonitor, fast preset; same data,
model, logger and seed)
and prints the ratio of median fit times measured in this one run, in wall-clock seconds and in the process's CPU
seconds (the latter is less sensitive to other jobs on a shared machine; run with ``OMP_NUM_THREADS=1`` so that
CPU time is one thread's), and the time spent inside the monitor's hooks (Lightning's ``SimpleProfiler``) as a share
of the fit without it, which machine noise affects least.

    python benchmarks/bench_callback_overhead.py            # full example, 2 repeats of each (~5 min on 2 cores)
    python benchmarks/bench_callback_overhead.py --quick    # tiny settings, under a minute
    python benchmarks/bench_callback_overhead.py --monitor boundary
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def fit_seconds(extra: list[str]) -> tuple[float, float, float]:
    """Run the example once and return what it prints: fit (wall-clock, CPU) seconds and the monitor hooks' seconds."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE), "--out-dir", out, "--profile", *extra], capture_output=True, text=True, check=True
        )
    match = re.search(r"fit took ([0-9.]+) s \(([0-9.]+) s CPU\)", done.stdout)
    hooks = re.search(r"monitor hooks took ([0-9.]+) s", done.stdout)
    return float(match.group(1)), float(match.group(2)), float(hooks.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny settings (2 epochs, 1024 images)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--monitor", choices=["spectral", "boundary"], default="spectral")
    args = parser.parse_args()
    extra = ["--epochs", "2", "--num-train", "1024"] if args.quick else []
    times: dict[str, list[tuple[float, float, float]]] = {"without": [], "with": []}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        times["without"].append(fit_seconds([*extra, "--monitor", "none"]))
        times["with"].append(fit_seconds([*extra, "--monitor", args.monitor]))
    for clock, column in (("wall", 0), ("CPU", 1)):
        medians = {}
        for name, runs in times.items():
            values = [run[column] for run in runs]
            medians[name] = statistics.median(values)
            print(f"{clock:>4} fit {name:>7} monitor: median {medians[name]:.1f} s  ({', '.join(f'{v:.1f}' for v in values)})")
        target = {"spectral": 1.15, "boundary": 1.20}[args.monitor]
        print(f"{clock:>4} with / without {args.monitor} monitor: {medians['with'] / medians['without']:.3f}  (target <= {target})")
    # Less sensitive to machine noise than the ratio of two fits: the time spent inside the monitor's own hooks.
    hooks = statistics.median(run[2] for run in times["with"])
    without = statistics.median(run[0] for run in times["without"])
    print(f"monitor hooks: median {hooks:.1f} s = {hooks / without:.3f} of the fit without the monitor")


if __name__ == "__main__":
    main()
