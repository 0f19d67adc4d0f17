"""Coalition images per second of the engine against bare forward images per second, bf16 autocast, on CUDA.

resnet50 at 224 px (random weights, ``channels_last``), ``M`` bands, a batch of ``B`` images: the engine evaluates
``2^M * B`` coalition images; bare forward passes run the same number of prepared images at the same forward batch.
The model runs under ``torch.autocast(dtype=torch.bfloat16)`` through a wrapper, so the engine's own FFT and
coalition matrix products stay in float32. Variants are interleaved; medians and best runs are reported.

On a machine without CUDA it prints that it needs a GPU and exits with status 0 (nothing heavy runs on the CPU).

Usage::

    python benchmarks/gpu_throughput.py                       # M = 8, B = 16, 256 images per forward
    python benchmarks/gpu_throughput.py --forward-images 1024 # larger forward batches
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Optional

import torch
from torch import Tensor, nn

from _common import ENGINE_OPTIONS, NUM_CLASSES, machine_description, make_model, pick_device, ratio_line
from _common import summarize
from _common import time_interleaved
from iaside_lightning.functional import coalition_values

__all__ = ["AutocastModel", "main", "throughput_lines"]


class AutocastModel(nn.Module):
    """Runs a model under autocast in ``dtype`` and returns float32 logits.

    Example:
        >>> model = AutocastModel(nn.Linear(4, 2), torch.bfloat16)
        >>> model(torch.ones(3, 4)).dtype
        torch.float32
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype

    def forward(self, images: Tensor) -> Tensor:
        with torch.autocast(images.device.type, dtype=self.dtype):
            return self.model(images).float()


def throughput_lines(
    model: nn.Module, images: Tensor, labels: Tensor, num_bands: int, forward_images: int, repeats: int
) -> list[str]:
    """Time the engine and bare forward passes (interleaved) and report images per second.

    Args:
        model: classifier in eval mode, on the images' device (wrap it in :class:`AutocastModel` for bf16).
        images: ``[B, C, H, W]`` batch.
        labels: ``[B]`` class indices.
        num_bands: number of bands ``M``.
        forward_images: images per forward pass; the engine gets ``chunk_size = forward_images // B``.
        repeats: timed rounds after one warm-up round.
    """
    device, batch = images.device, images.shape[0]
    num_coalitions = 2**num_bands
    chunk = max(1, min(num_coalitions, forward_images // batch))
    sizes = [min(chunk, num_coalitions - start) * batch for start in range(0, num_coalitions, chunk)]
    prepared = images.repeat(chunk, 1, 1, 1).contiguous(memory_format=torch.channels_last)

    def bare() -> None:
        with torch.inference_mode():
            for n in sizes:
                model(prepared[:n])

    times = time_interleaved(
        {
            "engine": lambda: coalition_values(
                model, images, labels, num_bands=num_bands, chunk_size=chunk, **ENGINE_OPTIONS
            ),
            "bare forward": bare,
        },
        repeats,
        device,
    )
    total = num_coalitions * batch
    lines = [f"M={num_bands}, B={batch}: {total} images per run, {chunk * batch} per forward, {repeats} repeats"]
    for name, timings in times.items():
        s = summarize(timings.wall)
        lines.append(f"{name:<14s} {total / s.median:10.0f} images/s (median)  {total / s.minimum:10.0f} (best)")
    label = "coalition images/s / bare forward images/s"
    lines.append(ratio_line(label, times["bare forward"], times["engine"], clocks=("wall",)))
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; ``argv`` as on the command line (``None``: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-bands", type=int, default=8, help="number of bands M")
    parser.add_argument("--batch-size", type=int, default=16, help="images B")
    parser.add_argument("--forward-images", type=int, default=256, help="images per forward pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after one warm-up")
    args = parser.parse_args(argv)
    device = pick_device()
    if device.type != "cuda":
        print("gpu_throughput.py needs a CUDA GPU and none was found: nothing measured.")
        return 0
    torch.backends.cudnn.benchmark = True
    model = AutocastModel(make_model("resnet50", device, torch.channels_last), torch.bfloat16)
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(args.batch_size, 3, 224, 224, generator=generator).to(device)
    labels = torch.randint(0, NUM_CLASSES["resnet50"], (args.batch_size,), generator=generator).to(device)
    print(machine_description(device))
    print("resnet50 at 224 px, bf16 autocast, channels_last model")
    for line in throughput_lines(model, images, labels, args.num_bands, args.forward_images, args.repeats):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
