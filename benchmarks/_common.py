"""Shared helpers of the benchmark scripts: device choice, models, interleaved timing and ratio reports.

Timings on a shared machine are noisy. :func:`time_interleaved` runs the variants in turn (A B C A B C ...), so a
burst of load from another process hits every variant alike, and records wall-clock time, process CPU time (which
barely moves when other processes take the cores) and its system part (page faults). :func:`ratio_line` reports the
ratio of medians and the ratio of minima (the minimum is the run least disturbed by other processes).
"""

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, NamedTuple, Optional

import torch
import torchvision
from torch import nn

__all__ = [
    "Clock",
    "Summary",
    "Timings",
    "machine_description",
    "make_model",
    "pick_device",
    "ratio_line",
    "summarize",
    "synchronize",
    "time_interleaved",
    "timing_table",
]

#: Number of classes of each benchmarked torchvision model (resnet18 as a CIFAR-10-sized classifier).
NUM_CLASSES = {"resnet18": 10, "mobilenet_v3_small": 1000, "resnet50": 1000}
#: The engine options the speed benchmarks time: the paper's bands and the zero fill, so that the engine does the same
#: work as the naive implementation and the bare forward passes (the ``"permute"`` default adds one fill per batch).
ENGINE_OPTIONS = {"fill": "zero", "band_edges": "linear"}


Clock = Literal["wall", "cpu", "sys"]


class Timings(NamedTuple):
    """Seconds of each timed run of one variant: wall clock, this process's CPU time and its kernel part."""

    wall: list[float]
    cpu: list[float]  #: user + system time of all threads of this process
    sys: list[float]  #: system (kernel) time alone: page faults of fresh allocations show up here


class Summary(NamedTuple):
    """Median, minimum and maximum of repeated timings, in seconds."""

    median: float
    minimum: float
    maximum: float

    @property
    def spread(self) -> float:
        """``(max - min) / median``: the relative spread of the repeats (0 when the median is 0)."""
        return (self.maximum - self.minimum) / self.median if self.median > 0 else 0.0


def pick_device() -> torch.device:
    """CUDA when available, else the CPU, so that every script runs unchanged on a GPU machine.

    Example:
        >>> pick_device().type in ("cpu", "cuda")
        True
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work so that wall-clock timings cover it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_model(
    name: str, device: torch.device, memory_format: torch.memory_format = torch.contiguous_format
) -> nn.Module:
    """A torchvision classifier with random weights (``weights=None``, seeded), in eval mode.

    Args:
        name: a key of :data:`NUM_CLASSES`.
        device: where to put the model.
        memory_format: ``torch.channels_last`` or ``torch.contiguous_format`` for its weights.

    Raises:
        ValueError: for an unknown model name.

    Example:
        >>> model = make_model("resnet18", torch.device("cpu"))
        >>> model.fc.out_features, model.training
        (10, False)
    """
    if name not in NUM_CLASSES:
        raise ValueError(f"Unknown model {name!r}; use one of {sorted(NUM_CLASSES)}.")
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=NUM_CLASSES[name])
    return model.to(device=device, memory_format=memory_format).eval()


def time_interleaved(
    variants: Mapping[str, Callable[[], object]],
    repeats: int,
    device: torch.device,
    warmup: int = 1,
) -> dict[str, Timings]:
    """Wall-clock, process CPU and system seconds of each variant, run in turn ``warmup + repeats`` times.

    Warm-up rounds are dropped. CPU time (:func:`time.process_time`: user + system, all threads of this process) is
    what the process itself spent, so it hardly moves when other processes compete for the cores; with several torch
    threads it also counts their spin-waiting. System time is its kernel part (page faults of fresh memory). On CUDA
    only the wall clock is meaningful.

    Example:
        >>> times = time_interleaved({"a": lambda: None, "b": lambda: None}, repeats=3, device=torch.device("cpu"))
        >>> sorted(times), [len(clock) for clock in times["a"]]
        (['a', 'b'], [3, 3, 3])
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"`repeats` must be >= 1 and `warmup` >= 0, got repeats={repeats}, warmup={warmup}.")
    times = {name: Timings([], [], []) for name in variants}
    for round_index in range(warmup + repeats):
        for name, run in variants.items():
            synchronize(device)
            wall, cpu, kernel = time.perf_counter(), time.process_time(), _system_seconds()
            run()
            synchronize(device)
            if round_index >= warmup:
                times[name].wall.append(time.perf_counter() - wall)
                times[name].cpu.append(time.process_time() - cpu)
                times[name].sys.append(_system_seconds() - kernel)
    return times


def summarize(times: Sequence[float]) -> Summary:
    """Median, minimum and maximum of timings.

    Example:
        >>> summarize([3.0, 1.0, 2.0])
        Summary(median=2.0, minimum=1.0, maximum=3.0)
    """
    return Summary(statistics.median(times), min(times), max(times))


def timing_table(times: Mapping[str, Timings], clocks: Sequence[Clock] = ("cpu", "wall")) -> list[str]:
    """One line per variant: median seconds of each clock, with the minimum and the relative spread.

    Example:
        >>> times = {"engine": Timings(wall=[1.0, 1.2, 1.1], cpu=[1.0, 1.0, 1.0], sys=[0.1, 0.1, 0.1])}
        >>> print(timing_table(times, clocks=("wall", "sys"))[0])
        engine                                wall 1.100 s (min 1.000, spread 18%) | sys 0.100 s (min 0.100, spread  0%)
    """
    lines = []
    for name, timings in times.items():
        parts = []
        for clock in clocks:
            s = summarize(getattr(timings, clock))
            parts.append(f"{clock} {s.median:.3f} s (min {s.minimum:.3f}, spread {100 * s.spread:2.0f}%)")
        lines.append(f"{name:<36s}  " + " | ".join(parts))
    return lines


def ratio_line(
    label: str,
    numerator: Timings,
    denominator: Timings,
    target: Optional[str] = None,
    clocks: Sequence[Clock] = ("cpu", "wall"),
) -> str:
    """``label: <clock> <ratio of medians> (median), <ratio of minima> (min); ...`` and whether a target is met.

    ``target`` is ``"<= x"`` or ``">= x"`` and is judged on the ratio of medians of the first clock.

    Example:
        >>> slow = Timings(wall=[3.0, 4.0, 5.0], cpu=[3.0] * 3, sys=[0.0] * 3)
        >>> fast = Timings(wall=[1.0, 2.0, 2.0], cpu=[1.0] * 3, sys=[0.0] * 3)
        >>> print(ratio_line("naive / engine", slow, fast, target=">= 2.5", clocks=("wall",)))
        naive / engine: wall 2.00 (median), 3.00 (min)  [target >= 2.5 on wall median: MISSED]
        >>> ratio_line("naive / engine", slow, fast, target=">= 2.5").endswith("[target >= 2.5 on cpu median: met]")
        True
    """
    parts = []
    for clock in clocks:
        top, bottom = summarize(getattr(numerator, clock)), summarize(getattr(denominator, clock))
        parts.append(f"{clock} {top.median / bottom.median:.2f} (median), {top.minimum / bottom.minimum:.2f} (min)")
    line = f"{label}: " + "; ".join(parts)
    if target is None:
        return line
    op, bound = target.split()
    judged = summarize(getattr(numerator, clocks[0])).median / summarize(getattr(denominator, clocks[0])).median
    met = judged <= float(bound) if op == "<=" else judged >= float(bound)
    return f"{line}  [target {target} on {clocks[0]} median: {'met' if met else 'MISSED'}]"


def machine_description(device: torch.device) -> str:
    """Torch version, device and thread count: the context every printed figure needs.

    Example:
        >>> "torch" in machine_description(torch.device("cpu"))
        True
    """
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return (
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, device {device} ({where}), "
        f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads"
    )


def _system_seconds() -> float:
    """Kernel CPU time of this process so far (:func:`resource.getrusage`; :func:`os.times` where it is missing)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return os.times().system
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` on Linux, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
