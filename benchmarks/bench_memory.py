"""Peak memory of the engine's ``coalition_values`` against the number of bands ``M``.

Each measurement runs in a fresh subprocess (``--jobs`` of them at once), so no allocator cache carries over. On
the CPU the peak resident set is reset just before the call (Linux ``/proc/self/clear_refs``; elsewhere the peak
since start-up is used) and the growth of the peak over the resident set before the call is reported; on CUDA it is
``torch.cuda.max_memory_allocated`` over ``memory_allocated`` before the call.

With the default forward plan the growth should stay flat as ``2^M`` grows (it is bounded by one forward batch of
coalition images and the model's activations on it). As a control that the meter does see growth, the same call with
all coalition images in one forward pass (``forward_batch_size = 2^M * B``) is measured for the smaller ``M``.

glibc's malloc raises its mmap threshold dynamically and then keeps freed large blocks in the heap, so the peak
resident set of a loop of equal chunks wanders by tens of MiB with fragmentation. The children therefore run with a
fixed threshold (``MALLOC_MMAP_THRESHOLD_=65536``: large tensors are mapped and unmapped), which makes the resident
set track live tensors; ``--default-malloc`` measures with glibc's default behaviour instead.

Usage::

    python benchmarks/bench_memory.py            # M = 8, 10, 12, resnet18 at 32 px, B = 1 (about 2 minutes)
    python benchmarks/bench_memory.py --quick    # M = 3, 5, B = 32, 16 px, 2 jobs
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import torch
from torch import Tensor, nn

from _common import ENGINE_OPTIONS, NUM_CLASSES, machine_description, make_model, pick_device
from iaside_lightning.functional import coalition_values

__all__ = ["LargestBatch", "main", "measure"]


class LargestBatch(nn.Module):
    """Wraps a model and records the largest batch it was given (the engine's images per forward pass).

    Example:
        >>> probe = LargestBatch(nn.Identity())
        >>> _ = probe(torch.zeros(3, 1)), probe(torch.zeros(5, 1))
        >>> probe.largest
        5
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.largest = 0

    def forward(self, images: Tensor) -> Tensor:
        self.largest = max(self.largest, images.shape[0])
        return self.model(images)


def measure(model_name: str, size: int, batch: int, num_bands: int, forward_batch_size: Optional[int]) -> dict[str, float]:
    """Peak memory growth in MiB (and seconds) of one ``coalition_values`` call; run it in a fresh process."""
    device = pick_device()
    probe = LargestBatch(make_model(model_name, device))
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(batch, 3, size, size, generator=generator).to(device)
    labels = torch.randint(0, NUM_CLASSES[model_name], (batch,), generator=generator).to(device)
    gc.collect()
    before = _reset_peak(device)
    start = time.perf_counter()
    coalition_values(probe, images, labels, num_bands=num_bands, forward_batch_size=forward_batch_size, **ENGINE_OPTIONS)
    seconds = time.perf_counter() - start
    growth = _peak(device) - before
    return {"growth_mib": growth / 2**20, "forward_images": probe.largest, "seconds": seconds}


def _reset_peak(device: torch.device) -> int:
    """Reset the peak-memory meter; return the memory in use now (bytes)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")  # resets VmHWM, the peak resident set (Linux >= 4.0)
    except OSError:
        pass
    return _proc_status_bytes("VmRSS")


def _peak(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    return _proc_status_bytes("VmHWM")


def _proc_status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status``; without procfs, the peak RSS from :mod:`resource`."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _run_child(args: argparse.Namespace, num_bands: int, unchunked: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", "--model", args.model, "--size", str(args.size),
               "--batch-size", str(args.batch_size), "--num-bands", str(num_bands)]
    if unchunked:
        command.append("--unchunked")
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = dict(os.environ) if args.default_malloc else {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"Measurement subprocess failed ({' '.join(command)}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; ``argv`` as on the command line (``None``: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="M = 3, 5, B = 32, 16 px, 2 jobs, 1 thread unless given")
    parser.add_argument("--num-bands", type=int, nargs="+", default=None, help="values of M (default 8 10 12)")
    parser.add_argument("--control-max-bands", type=int, default=None,
                        help="also measure forward_batch_size = 2^M * B for M up to this (default 10, quick 5)")
    parser.add_argument("--model", choices=sorted(NUM_CLASSES), default="resnet18")
    parser.add_argument("--size", type=int, default=None, help="image size in pixels (default 32, quick 16)")
    parser.add_argument("--batch-size", type=int, default=None, help="images B (default 1, quick 32)")
    parser.add_argument("--default-malloc", action="store_true", help="keep glibc's dynamic mmap threshold")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--jobs", type=int, default=None, help="measurement subprocesses run at once (default 1, "
                        "quick 2; peaks are per process, so this only changes the timings)")
    parser.add_argument("--unchunked", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch_size = args.batch_size or (32 if args.quick else 1)
    args.size = args.size or (16 if args.quick else 32)
    args.jobs = args.jobs or (2 if args.quick else 1)
    args.threads = args.threads or (1 if args.quick else None)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        chunk = 2 ** args.num_bands[0] * args.batch_size if args.unchunked else None
        print(json.dumps(measure(args.model, args.size, args.batch_size, args.num_bands[0], chunk)))
        return 0
    all_bands = args.num_bands or ([3, 5] if args.quick else [8, 10, 12])
    control = args.control_max_bands if args.control_max_bands is not None else (5 if args.quick else 10)
    print(machine_description(pick_device()))
    allocator = "glibc default malloc" if args.default_malloc else "MALLOC_MMAP_THRESHOLD_=65536"
    print(f"{args.model} at {args.size} px, B={args.batch_size}, {allocator}; peak memory growth of one "
          "coalition_values call")
    rows = [(m, False) for m in all_bands] + [(m, True) for m in all_bands if m <= control]
    growth: dict[bool, list[float]] = {False: [], True: []}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = pool.map(lambda row: _run_child(args, *row), rows)
    for (num_bands, unchunked), result in zip(rows, results):
        growth[unchunked].append(result["growth_mib"])
        print(f"M={num_bands:<3d} {2**num_bands:>5d} coalitions  {'one forward pass' if unchunked else 'default plan'}"
              f"  {result['forward_images']:>6d} images per forward  peak growth {result['growth_mib']:8.1f} MiB"
              f"  ({result['seconds']:.1f} s)", flush=True)
    for unchunked, name in ((False, "default plan"), (True, "one forward pass (control)")):
        values = growth[unchunked]
        if len(values) >= 2:
            ms = [m for m, u in rows if u == unchunked]
            print(f"{name}: peak growth M={ms[-1]} / M={ms[0]} = {values[-1] / max(values[0], 1e-9):.2f} "
                  f"(2^M grew {2 ** (ms[-1] - ms[0])}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
