"""Coalition images per second of the engine against the best bare forward images per second, on CUDA, in one table.

For resnet50 at 224 px and resnet18 at 32 px (random weights, contiguous weights as a user's model has them), M = 8
bands and call sizes ``B`` (default 16 and 128 images), in float32 and under bfloat16 autocast, it runs
:func:`bench_engine.run_config`: the limit is the fastest bare forward loop over the same prepared coalition images
(input layout and forward batch swept, ``channels_last`` included), the engine runs with its defaults (forward plan
probed on its first call and cached). Each row gives coalition images/s of both (median wall clock of interleaved
repeats) and their ratio (target >= 0.9). CPU figures never depend on this script.

On a machine without CUDA it prints that it needs a GPU and exits with status 0 (nothing heavy runs on the CPU).

Usage::

    python benchmarks/gpu_throughput.py                        # 8 configurations (not yet run on a GPU)
    python benchmarks/gpu_throughput.py --batch-sizes 16 --repeats 3
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

import torch

from _common import machine_description, pick_device, summarize
from bench_engine import Config, Measurement, run_config

__all__ = ["GPU_SWEEP", "main", "table_row"]

#: Forward batches the limit tries on a GPU.
GPU_SWEEP = (16, 32, 64, 128, 256, 512, 1024)
#: Models and image sizes of the table.
MODELS = (("resnet50", 224), ("resnet18", 32))


def table_row(config: Config, dtype: str, measured: Measurement) -> str:
    """One Markdown row: model, size, B, dtype, engine and limit images/s (medians), ratio, target.

    Example:
        >>> from _common import Timings
        >>> timings = Timings(wall=[2.0, 2.0], cpu=[2.0, 2.0], sys=[0.0, 0.0])
        >>> faster = Timings(wall=[1.0, 1.0], cpu=[1.0, 1.0], sys=[0.0, 0.0])
        >>> table_row(Config("resnet18", 32, 16, 8), "float32", Measurement([], timings, faster, 4096))
        '| resnet18 | 32 | 16 | float32 | 2048 | 4096 | 0.50 | missed |'
    """
    engine = measured.images / summarize(measured.engine.wall).median
    limit = measured.images / summarize(measured.limit.wall).median
    ratio = engine / limit
    return (
        f"| {config.model} | {config.size} | {config.batch} | {dtype} | {engine:.0f} | {limit:.0f} | {ratio:.2f} | "
        f"{'met' if ratio >= 0.9 else 'missed'} |"
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; ``argv`` as on the command line (``None``: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-bands", type=int, default=8, help="number of bands M")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 128], help="call sizes B")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after one warm-up")
    args = parser.parse_args(argv)
    device = pick_device()
    if device.type != "cuda":
        print("gpu_throughput.py needs a CUDA GPU and none was found: nothing measured.")
        return 0
    torch.backends.cudnn.benchmark = True
    print(machine_description(device))
    rows = []
    for autocast in (None, "bfloat16"):
        for model, size in MODELS:
            for batch in args.batch_sizes:
                config = Config(model, size, batch, args.num_bands)
                measured = run_config(config, args.repeats, device, GPU_SWEEP, textbook=False, autocast=autocast)
                print(*measured.lines, sep="\n", flush=True)
                rows.append(table_row(config, autocast or "float32", measured))
    print("\n| model | px | B | dtype | engine images/s | limit images/s | engine / limit | target >= 0.9 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(*rows, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
