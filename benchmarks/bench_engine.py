"""Speed of the engine's ``coalition_values`` against bare forward passes and the naive per-coalition algorithm.

For each configuration (model, image size, batch ``B``) and ``M`` bands it times, interleaved (A B C A B C ...):

- the engine on all ``2^M`` coalitions (like for like), and with the full coalition's logits reused (``2^M - 1``);
- bare forward passes over the same ``2^M * B`` images at the same forward batch (``chunk_size * B`` images,
  inputs prepared beforehand in the model's memory layout, under ``torch.inference_mode``);
- the naive algorithm of :mod:`naive` (one FFT round trip per coalition, same forward batch);
- on the CPU with a ``channels_last`` model: bare forward passes of an NCHW model on NCHW inputs (the layout
  speed-up) and the engine with its chunks converted to ``channels_last`` before the model (a possible engine change).

It prints each variant's CPU, system and wall time (median, minimum, spread), the ratios ``engine / bare forward``
(target <= 1.05) and ``naive / engine`` (target >= 2.5 at 224 px) by medians and by minima (judged on CPU time on the
CPU, wall time on CUDA), and where the engine's time goes beyond the forward passes (FFT, coalition matrix products,
value computation; ``--profile`` adds torch.profiler's costliest operators).

Usage::

    python benchmarks/bench_engine.py            # full run (CPU: about 3 minutes on 2 cores, 3 repeats)
    python benchmarks/bench_engine.py --quick    # M = 4, one repeat, 1 thread: under a minute
    python benchmarks/bench_engine.py --forward-sweep 16 32 64 128 256   # bare forward speed vs forward batch
"""

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn

from _common import ENGINE_OPTIONS, NUM_CLASSES, Clock, machine_description, make_model, pick_device, ratio_line
from _common import summarize
from _common import time_interleaved, timing_table
from iaside_lightning.functional import band_images, band_masks, coalition_matrix, coalition_values
from iaside_lightning.functional.spectral.coalitions import coalition_chunks
from iaside_lightning.functional.checks import check_logits
from iaside_lightning.functional.spectral.values import sample_values
from naive import naive_coalition_values

__all__ = [
    "ChannelsLastInput",
    "Config",
    "main",
    "op_profile_lines",
    "parse_config",
    "profile_lines",
    "run_config",
    "sweep_lines",
]

#: Images per forward pass of the engine's default chunking (``chunk_size = 256 // B``).
DEFAULT_FORWARD_IMAGES = 256


class Config(NamedTuple):
    """One benchmarked setting: a torchvision model name, the square image size and the batch size ``B``."""

    model: str
    size: int
    batch: int


#: Batches chosen so that one engine run takes a few seconds on the 2-core CPU / a fraction of a second on a GPU.
CPU_CONFIGS = (Config("resnet18", 32, 2), Config("mobilenet_v3_small", 224, 1))
GPU_CONFIGS = (Config("resnet18", 32, 32), Config("mobilenet_v3_small", 224, 8))


class ChannelsLastInput(nn.Module):
    """Wraps a model and hands it its input in ``channels_last`` layout (what the engine could do itself).

    Example:
        >>> ChannelsLastInput(nn.Identity())(torch.zeros(1, 3, 4, 4)).is_contiguous(memory_format=torch.channels_last)
        True
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images.contiguous(memory_format=torch.channels_last))


def parse_config(text: str) -> Config:
    """``"model:size:batch"`` to a :class:`Config`.

    Example:
        >>> parse_config("resnet18:32:2")
        Config(model='resnet18', size=32, batch=2)
    """
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in NUM_CLASSES or not (parts[1].isdigit() and parts[2].isdigit()):
        raise argparse.ArgumentTypeError(
            f"A configuration is 'model:size:batch' with model in {sorted(NUM_CLASSES)}, e.g. 'resnet18:32:2'; "
            f"got {text!r}."
        )
    return Config(parts[0], int(parts[1]), int(parts[2]))


def run_config(
    config: Config,
    num_bands: int,
    repeats: int,
    device: torch.device,
    memory_format: torch.memory_format,
    forward_images: int = DEFAULT_FORWARD_IMAGES,
    op_profile: bool = False,
) -> list[str]:
    """Time every variant of one configuration and return the report lines (timings, ratios, profile)."""
    model = make_model(config.model, device, memory_format)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(config.batch, 3, config.size, config.size, generator=generator).to(device)
    labels = torch.randint(0, NUM_CLASSES[config.model], (config.batch,), generator=generator).to(device)
    num_coalitions = 2**num_bands
    chunk = max(1, min(num_coalitions, forward_images // config.batch))
    with torch.inference_mode():
        logits = model(images.contiguous(memory_format=memory_format))
        bands = band_images(images, band_masks(config.size, config.size, num_bands, edges="linear").to(device))
        members = coalition_matrix(num_bands, device=device)
        prepared = [c.contiguous(memory_format=memory_format) for _, c in coalition_chunks(bands, None, members, chunk)]

    def engine(wrapped: nn.Module = model, reuse: Optional[Tensor] = None) -> Tensor:
        return coalition_values(
            wrapped, images, labels, num_bands=num_bands, chunk_size=chunk, logits=reuse, **ENGINE_OPTIONS
        )

    def bare(net: nn.Module = model, inputs: Sequence[Tensor] = prepared) -> None:
        with torch.inference_mode():
            for chunk_images in inputs:
                net(chunk_images)

    variants: dict[str, Callable[[], object]] = {
        "engine, all 2^M coalitions": engine,
        "engine, full-coalition logits reused": lambda: engine(reuse=logits),
        "bare forward": bare,
        "naive (FFT round trip per coalition)": lambda: naive_coalition_values(model, images, labels, num_bands, chunk),
    }
    layout_variants = device.type == "cpu" and memory_format == torch.channels_last
    if layout_variants:
        nchw_model = make_model(config.model, device)
        nchw_inputs = [c.contiguous() for c in prepared]
        variants["bare forward, NCHW model and inputs"] = lambda: bare(nchw_model, nchw_inputs)
        variants["engine, chunks made channels_last"] = lambda: engine(ChannelsLastInput(model))
    times = time_interleaved(variants, repeats, device)
    clocks: tuple[Clock, ...] = ("cpu", "wall") if device.type == "cpu" else ("wall",)
    table_clocks: tuple[Clock, ...] = ("cpu", "sys", "wall") if device.type == "cpu" else ("wall",)
    t = list(times.values())
    lines = [
        f"== {config.model} at {config.size} px, B={config.batch}, M={num_bands}: {num_coalitions} coalitions, "
        f"{chunk} per forward ({chunk * config.batch} images), {len(prepared)} forwards, {repeats} repeats ==",
        *timing_table(times, table_clocks),
        ratio_line("engine / bare forward", t[0], t[2], "<= 1.05", clocks),
        ratio_line("engine (logits reused) / bare forward", t[1], t[2], clocks=clocks),
        ratio_line("naive / engine", t[3], t[0], ">= 2.5" if config.size >= 224 else None, clocks),
    ]
    if layout_variants:
        lines.append(ratio_line("bare forward NCHW / channels_last (layout speed-up)", t[4], t[2], clocks=clocks))
        lines.append(ratio_line("engine with channels_last chunks / engine", t[5], t[0], clocks=clocks))
    engine_seconds, forward_seconds = getattr(t[0], clocks[0]), getattr(t[2], clocks[0])
    classes = NUM_CLASSES[config.model]
    lines += profile_lines(images, classes, num_bands, chunk, clocks[0], engine_seconds, forward_seconds)
    return lines + (op_profile_lines(model, images, labels, num_bands, chunk) if op_profile else [])


def profile_lines(
    images: Tensor,
    num_classes: int,
    num_bands: int,
    chunk: int,
    clock: Clock,
    engine_seconds: Sequence[float],
    forward_seconds: Sequence[float],
) -> list[str]:
    """Where the engine's time goes: its stages beyond the forward passes, re-run with the engine's own functions.

    FFT, coalition matrix products and value computation (on logits of the right shape) are timed 3 times each
    (median); the forward passes are the bare-forward median measured alongside the engine; ``rest`` is the
    engine's median minus all of these (layout conversion at the model's first layer, allocation of the chunks,
    input checks, mode switching).
    """
    device = images.device
    members = coalition_matrix(num_bands, device=device)
    with torch.inference_mode():
        bands = band_images(images, band_masks(images.shape[-2], images.shape[-1], num_bands).to(device))
    logits = torch.randn(chunk * images.shape[0], num_classes, device=device)
    labels = torch.zeros(images.shape[0], dtype=torch.long, device=device)

    def fft() -> Tensor:
        return band_images(images, band_masks(images.shape[-2], images.shape[-1], num_bands).to(device))

    def matmul() -> None:
        for _ in coalition_chunks(bands, None, members, chunk):
            pass

    def values() -> None:
        for _ in range(0, 2**num_bands, chunk):
            sample_values(check_logits(logits, logits.shape[0]), labels.repeat(chunk), "log_prob")

    stages = time_interleaved({"FFT (masks + band images)": fft, "coalition images (matmul)": matmul,
                               "values (checks + log_softmax)": values}, 3, device)
    total = summarize(engine_seconds).median
    split = {name: summarize(getattr(v, clock)).median for name, v in stages.items()}
    split["forward passes (bare forward median)"] = summarize(forward_seconds).median
    split["rest (layout, allocation, checks)"] = total - sum(split.values())
    lines = [f"profile of the engine ({clock} time, median {total:.3f} s):"]
    lines += [f"  {name:<38s} {1000 * s:9.1f} ms  {100 * s / total:6.1f}%" for name, s in split.items()]
    return lines


def op_profile_lines(model: nn.Module, images: Tensor, labels: Tensor, num_bands: int, chunk: int) -> list[str]:
    """One engine call under :mod:`torch.profiler`: the costliest operators by self time, grouped by input shape."""
    from torch.profiler import ProfilerActivity, profile

    cuda = images.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities, record_shapes=True) as prof:
        coalition_values(model, images, labels, num_bands=num_bands, chunk_size=chunk, **ENGINE_OPTIONS)
    table = prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_device_time_total" if cuda else "self_cpu_time_total", row_limit=12, max_name_column_width=32
    )
    return ["operator profile of one engine call:", *table.splitlines()]


def sweep_lines(
    config: Config,
    num_bands: int,
    repeats: int,
    device: torch.device,
    memory_format: torch.memory_format,
    forward_sizes: Sequence[int],
) -> list[str]:
    """Bare forward passes over ``2^M * B`` images at several forward batch sizes (interleaved)."""
    model = make_model(config.model, device, memory_format)
    total = 2**num_bands * config.batch
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(total, 3, config.size, config.size, generator=generator).to(device)
    images = images.contiguous(memory_format=memory_format)

    def bare(size: int) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                for start in range(0, total, size):
                    model(images[start : start + size])

        return run

    times = time_interleaved({f"bare forward, {n} images per forward": bare(n) for n in forward_sizes}, repeats, device)
    clocks: tuple[Clock, ...] = ("cpu", "sys", "wall") if device.type == "cpu" else ("wall",)
    header = f"== {config.model} at {config.size} px: {total} images, forward batch sweep, {repeats} repeats =="
    return [header, *timing_table(times, clocks)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; ``argv`` as on the command line (``None``: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="M=4, one repeat, 1 thread unless given: under a minute")
    parser.add_argument("--num-bands", type=int, default=None, help="number of bands M (default 8, quick 4)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds after one warm-up (default 3)")
    parser.add_argument("--configs", type=parse_config, nargs="+", default=None, help="model:size:batch ...")
    parser.add_argument("--memory-format", choices=("channels_last", "contiguous"), default="channels_last")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--forward-images", type=int, default=DEFAULT_FORWARD_IMAGES,
                        help="images per forward pass: chunk_size = this // B (default: the engine's 256)")
    parser.add_argument("--profile", action="store_true", help="also print torch.profiler's costliest operators")
    parser.add_argument("--forward-sweep", type=int, nargs="+", default=None,
                        help="instead of the comparison, time bare forward passes at these images per forward")
    args = parser.parse_args(argv)
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    device = pick_device()
    num_bands = args.num_bands or (4 if args.quick else 8)
    repeats = args.repeats or (1 if args.quick else 3)
    configs = args.configs or (GPU_CONFIGS if device.type == "cuda" else CPU_CONFIGS)
    memory_format = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    print(machine_description(device))
    print(f"model memory format: {args.memory_format}; the engine and the naive algorithm feed NCHW images")
    for config in configs:
        if args.forward_sweep:
            lines = sweep_lines(config, num_bands, repeats, device, memory_format, args.forward_sweep)
        else:
            lines = run_config(config, num_bands, repeats, device, memory_format, args.forward_images, args.profile)
        print(*lines, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
