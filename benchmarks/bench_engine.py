"""Speed of the engine's ``coalition_values`` against the user's best: the same coalition images run by hand.

For each configuration (model, image size ``S``, call size ``B`` images, ``M`` bands) it measures, in one run:

- **the limit**: the fastest way a user could run the same ``2^M * B`` coalition images (prepared beforehand)
  through the same, unchanged model (contiguous weights, eval, ``torch.inference_mode``): the minimum over the
  input layout (contiguous or ``channels_last``) and the forward batch (a sweep, default 1 to 256 images). Each
  candidate is timed on a slice of the images; the best two are then timed on all of them with the engine, and the
  faster of the two is the limit;
- **the engine**: ``coalition_values`` with its defaults, once its forward plan is probed and cached (as in a
  monitor's later epochs); the calls before and the call with the probe are timed apart, on a fresh cache;
- **the textbook implementation** (``--textbook``, default at 224 px): for each coalition, filter the batch with the
  coalition's FFT mask and run the model at the user's batch (``B`` images per forward, as given), see
  :mod:`naive`.

Variants are interleaved (A B C A B C ...) after one warm-up round; it prints CPU and wall-clock medians (judged on
CPU time on the CPU, wall time on CUDA), the ratios ``engine / limit`` (target <= 1.05) and ``textbook / engine``
(target >= 5 at 224 px), and with ``--profile`` the engine's own cost: one call with a model that does no work.

Usage::

    python benchmarks/bench_engine.py --threads 1               # the CPU grid below, about 12 minutes on 2 cores
    python benchmarks/bench_engine.py --quick                   # tiny settings, a few seconds
    python benchmarks/bench_engine.py --configs mobilenet_v3_small:224:10:6 --repeats 5 --profile
    python benchmarks/bench_engine.py --autocast bfloat16       # on CUDA: bf16 forward passes for both sides
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from _common import ENGINE_OPTIONS, NUM_CLASSES, Clock, machine_description, make_model, pick_device, ratio_line
from _common import Timings, synchronize, time_interleaved, timing_table
from iaside_lightning.functional import band_images, band_masks, coalition_matrix, coalition_values
from iaside_lightning.functional.spectral.coalitions import CoalitionImages
from iaside_lightning.functional.spectral.forward_plan import cached_plan, clear_forward_plans
from naive import naive_coalition_values

__all__ = ["Config", "Limit", "Measurement", "find_limit", "main", "parse_config", "run_config"]


class Config(NamedTuple):
    """One benchmarked setting: a torchvision model, the square image size, the call size ``B`` and ``M`` bands."""

    model: str
    size: int
    batch: int
    num_bands: int


class Limit(NamedTuple):
    """The user's best way to run the images: input layout and forward batch."""

    channels_last: bool
    batch_size: int


#: The CPU grid (cut where the 2-core CPU cannot afford it: B = 128 only at 32 px and M = 6, resnet18 at 224 px only
#: up to B = 10), and the GPU grid.
CPU_CONFIGS = (
    *(Config("resnet18", 32, b, 8) for b in (1, 10, 40)),
    Config("resnet18", 32, 128, 6),
    *(Config("mobilenet_v3_small", 224, b, 6) for b in (1, 10, 40)),
    *(Config("mobilenet_v3_small", 224, b, 8) for b in (1, 10)),
    *(Config("resnet18", 224, b, 6) for b in (1, 10)),
    Config("resnet18", 224, 1, 8),
)
GPU_CONFIGS = tuple(Config(m, s, b, 8) for m, s in (("resnet18", 32), ("resnet50", 224)) for b in (1, 10, 40, 128))
SWEEP = (1, 2, 4, 8, 16, 32, 64, 128, 256)
#: The best candidates of the sweep timed again with the engine; the limit is the fastest of them.
LIMIT_FINALISTS = 2
ENGINE = "engine (plan cached)"
TEXTBOOK = "textbook (FFT per coalition, batch B)"


def limit_name(limit: Limit) -> str:
    """``"32 images, channels_last"``.

    Example:
        >>> limit_name(Limit(True, 32))
        '32 images, channels_last'
    """
    return f"{limit.batch_size} images, {'channels_last' if limit.channels_last else 'contiguous'}"


def parse_config(text: str) -> Config:
    """``"model:size:batch:bands"`` to a :class:`Config`.

    Example:
        >>> parse_config("resnet18:32:10:8")
        Config(model='resnet18', size=32, batch=10, num_bands=8)
    """
    parts = text.split(":")
    if len(parts) != 4 or parts[0] not in NUM_CLASSES or not all(p.isdigit() for p in parts[1:]):
        raise argparse.ArgumentTypeError(
            f"A configuration is 'model:size:batch:bands' with model in {sorted(NUM_CLASSES)}, e.g. "
            f"'resnet18:32:10:8'; got {text!r}."
        )
    return Config(parts[0], int(parts[1]), int(parts[2]), int(parts[3]))


def coalition_images(images: Tensor, num_bands: int) -> Tensor:
    """All ``2^M * B`` coalition images of the benchmarked options (zero fill, linear edges), image-major, contiguous."""
    masks = band_masks(images.shape[-2], images.shape[-1], num_bands, edges=ENGINE_OPTIONS["band_edges"])
    stream = CoalitionImages(band_images(images, masks.to(images.device)), None, coalition_matrix(num_bands))
    return stream.take(0, stream.total).clone()


def run_forward(model: nn.Module, images: Tensor, batch_size: int, autocast: Optional[torch.dtype]) -> None:
    """The user's loop: forward passes of ``batch_size`` images under inference mode (and autocast)."""
    with torch.inference_mode(), torch.autocast(images.device.type, dtype=autocast, enabled=autocast is not None):
        for start in range(0, images.shape[0], batch_size):
            model(images[start : start + batch_size])


def find_limit(
    model: nn.Module, images: Tensor, sizes: Sequence[int], autocast: Optional[torch.dtype] = None
) -> tuple[list[Limit], list[str]]:
    """Layouts and forward batches for these images, fastest first, each candidate timed on a slice of them.

    A candidate runs once untimed (first calls of a shape set up kernels), then on ``max(2 * size, 128)`` images (or
    all of them, if fewer) twice; its cost is the best of the two per image (CPU time on the CPU, wall on CUDA).

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.LazyLinear(2)).eval()
        >>> ranked, lines = find_limit(model, torch.rand(8, 3, 6, 6), sizes=(2, 4))
        >>> sorted((c.batch_size, c.channels_last) for c in ranked), len(lines)
        ([(2, False), (2, True), (4, False), (4, True)], 2)
    """
    device = images.device
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    layouts = {False: images.contiguous(), True: images.contiguous(memory_format=torch.channels_last)}
    costs: dict[Limit, float] = {}
    for channels_last, prepared in layouts.items():
        for size in (s for s in sizes if s <= images.shape[0]):
            part = prepared[: max(2 * size, min(128, prepared.shape[0]))]
            run_forward(model, part[:size], size, autocast)
            seconds = []
            for _ in range(2):
                synchronize(device)
                begin = clock()
                run_forward(model, part, size, autocast)
                synchronize(device)
                seconds.append((clock() - begin) / part.shape[0])
            costs[Limit(channels_last, size)] = min(seconds)
    ranked = sorted(costs, key=costs.__getitem__)
    lines = [
        f"  limit sweep, {'channels_last' if layout else 'contiguous':>13s}: "
        + "  ".join(f"{c.batch_size}: {1000 * t:.2f}" for c, t in costs.items() if c.channels_last == layout)
        + " ms/image"
        for layout in layouts
    ]
    return ranked, lines


class Measurement(NamedTuple):
    """The report lines of one configuration and the timings behind them."""

    lines: list[str]
    engine: Timings
    limit: Timings
    images: int  #: coalition images per engine call


def run_config(
    config: Config,
    repeats: int,
    device: torch.device,
    sizes: Sequence[int] = SWEEP,
    textbook: Optional[bool] = None,
    profile: bool = False,
    autocast: Optional[str] = None,
) -> Measurement:
    """Time the engine, the limit and (optionally) the textbook implementation of one configuration."""
    model = make_model(config.model, device)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(config.batch, 3, config.size, config.size, generator=generator).to(device)
    labels = torch.randint(0, NUM_CLASSES[config.model], (config.batch,), generator=generator).to(device)
    dtype = None if autocast is None else getattr(torch, autocast)
    options = {**ENGINE_OPTIONS, "num_bands": config.num_bands, "autocast": autocast}
    prepared = coalition_images(images, config.num_bands)
    total = prepared.shape[0]
    ranked, lines = find_limit(model, prepared, sizes, dtype)
    finalists = ranked[:LIMIT_FINALISTS]

    def engine() -> Tensor:
        return coalition_values(model, images, labels, **options)

    settle = settle_plan(engine, model, images, autocast)
    variants: dict[str, Callable[[], object]] = {ENGINE: engine}
    for limit in finalists:
        layout = torch.channels_last if limit.channels_last else torch.contiguous_format
        inputs = prepared.contiguous(memory_format=layout)
        variants[f"by hand, {limit_name(limit)}"] = partial(run_forward, model, inputs, limit.batch_size, dtype)
    if textbook if textbook is not None else config.size >= 224:
        variants[TEXTBOOK] = lambda: naive_coalition_values(
            model, images, labels, config.num_bands, chunk_size=1
        )
    times = time_interleaved(variants, repeats, device)
    clocks: tuple[Clock, ...] = ("cpu", "wall") if device.type == "cpu" else ("wall",)
    by_hand = [times[f"by hand, {limit_name(limit)}"] for limit in finalists]
    limit_times = min(by_hand, key=lambda t: statistics.median(getattr(t, clocks[0])))
    textbook_times = times.get(TEXTBOOK)
    header = (
        f"== {config.model} at {config.size} px, B={config.batch}, M={config.num_bands}: {total} coalition images, "
        f"{repeats} repeats{', autocast ' + autocast if autocast else ''} =="
    )
    lines = [header, *lines, *timing_table(times, clocks)]
    lines.append(settle)
    lines.append(ratio_line("engine / limit (the fastest by-hand variant)", times[ENGINE], limit_times,
                            "<= 1.05", clocks))
    if textbook_times is not None:
        target = ">= 5" if config.size >= 224 else None
        lines.append(ratio_line("textbook / engine", textbook_times, times[ENGINE], target, clocks))
        lines.append(ratio_line("textbook / limit (the most any engine can gain)", textbook_times, limit_times,
                                clocks=clocks))
    if profile:
        lines.append(overhead_line(images, labels, options, repeats, times[ENGINE], clocks[0]))
    return Measurement(lines, times[ENGINE], limit_times, total)


def settle_plan(engine: Callable[[], object], model: nn.Module, images: Tensor, autocast: Optional[str]) -> str:
    """Call the engine on a fresh plan cache until it has probed its plan (at most 64 calls); say what that cost.

    The first calls run the default plan; the probe comes once enough images have run (see
    :mod:`iaside_lightning.functional.spectral.forward_plan`), so the timed repeats all run the probed plan.
    """
    device = images.device
    clear_forward_plans()
    seconds: list[tuple[float, float]] = []
    plan = None
    while plan is None and len(seconds) < 64:  # a call that fits one starting batch never probes: 64 tries
        synchronize(device)
        wall, cpu = time.perf_counter(), time.process_time()
        engine()
        synchronize(device)
        seconds.append((time.perf_counter() - wall, time.process_time() - cpu))
        plan = cached_plan(model, images.shape[1:], images.dtype, device, autocast)
    if plan is None:
        return f"engine plan: the default (no probe within {len(seconds)} calls); cpu {seconds[0][1]:.3f} s per call"
    probed = f"{plan.batch_size} images per forward, {'channels_last' if plan.channels_last else 'contiguous'}"
    return (
        f"engine plan: {probed}; {len(seconds)} calls to settle: the first "
        f"(default plan) cpu {seconds[0][1]:.3f} s, the last (probe included) cpu {seconds[-1][1]:.3f} s, "
        f"wall {seconds[-1][0]:.3f} s"
    )


class _NoWork(nn.Module):
    """Returns logits of the right shape without looking at more than one pixel: the engine's cost alone."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, images: Tensor) -> Tensor:
        return images[:, :1, 0, 0].float().expand(-1, self.num_classes).contiguous()


def overhead_line(images: Tensor, labels: Tensor, options: dict, repeats: int, engine: object, clock: Clock) -> str:
    """The engine's own work (FFT, coalition images, values): the engine with a model that does nothing."""
    model = _NoWork(int(labels.max()) + 1)
    times = time_interleaved({"no-work model": lambda: coalition_values(model, images, labels, **options)}, repeats,
                             images.device)
    alone = statistics.median(getattr(times["no-work model"], clock))
    total = statistics.median(getattr(engine, clock))
    return f"engine's own work (no-work model): {clock} {alone:.3f} s = {100 * alone / total:.1f}% of the engine"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; ``argv`` as on the command line (``None``: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="resnet18 at 32 px, B = 2, M = 3, one repeat, 1 thread")
    parser.add_argument("--configs", type=parse_config, nargs="+", default=None, help="model:size:batch:bands ...")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds after one warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--sweep", type=int, nargs="+", default=SWEEP, help="forward batches the limit tries")
    parser.add_argument("--textbook", action=argparse.BooleanOptionalAction, default=None,
                        help="time the textbook implementation (default: at 224 px and above)")
    parser.add_argument("--profile", action="store_true", help="also time the engine with a model that does no work")
    parser.add_argument("--autocast", choices=("bfloat16", "float16"), default=None,
                        help="forward passes under autocast (engine option and the limit's loop)")
    args = parser.parse_args(argv)
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    device = pick_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    quick = (Config("resnet18", 32, 2, 3),)
    configs = args.configs or (quick if args.quick else GPU_CONFIGS if device.type == "cuda" else CPU_CONFIGS)
    repeats = args.repeats or (1 if args.quick else 3)
    print(machine_description(device))
    print("models: torchvision, random weights, contiguous weights (unchanged), eval; engine: zero fill, linear edges")
    for config in configs:
        measured = run_config(config, repeats, device, args.sweep, args.textbook, args.profile, args.autocast)
        print(*measured.lines, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
