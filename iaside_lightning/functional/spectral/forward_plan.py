"""How the engine feeds coalition images to the model: images per forward pass and input layout, tuned per device.

A model's speed per image depends on how many images one forward pass holds (too few: per-call overheads; too
many: activations spill out of the caches) and on the input's memory layout (oneDNN and cuDNN pick their fast
convolution paths from a ``channels_last`` input even when the weights are contiguous). The best choice depends on
the model, the image size and the device, so the engine measures it: the first time a model meets a given image
shape (and dtype, device, autocast) often enough for a probe to pay off, it times a few forward passes of real
coalition images (both layouts at a starting batch size, then a quarter, half, twice and four times that batch)
and keeps the fastest plan for every later call with that model and shape; until then a default plan runs (a
starting batch of 8 MiB of images, 128 MiB on CUDA, in ``channels_last`` for multi-channel images). The probe's
outputs are discarded; results depend on the plan only to float tolerance (a convolution may sum in another order
in another layout or batch), so a long run may differ in the last digits before and after its probe.
Pass ``forward_batch_size`` for a fixed plan without probing (and bitwise-repeatable results across processes).
"""

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

__all__ = ["ForwardPlan", "cached_plan", "clear_forward_plans", "forward_plan"]

#: Starting batch of the probe, in bytes of input images, and the largest batch it may try, per device type.
START_BYTES = {"cpu": 8 * 2**20, "cuda": 128 * 2**20}
MAX_BYTES = {"cpu": 256 * 2**20, "cuda": 1024 * 2**20}
#: Largest number of images in one forward pass, per device type (other devices use the CPU's figures).
MAX_IMAGES = {"cpu": 256, "cuda": 1024}
#: Probe once a model has run this many times the probe's own images of one shape (over all calls, counting this
#: one): until then the default plan runs (the starting batch, ``channels_last`` for multi-channel images), so that
#: the probe's discarded work is at most half of what the model has done.
PROBE_WORK_RATIO = 2
#: Batch sizes the probe tries, as factors of the starting batch, in the faster layout at the start.
LADDER = (0.25, 0.5, 2, 4)
#: Each timing of a probed plan covers at least this many images (several forward passes of small batches).
PROBE_SAMPLE_IMAGES = 32
#: Another plan replaces the default only if it is faster per image by more than 3 % (timings are noisy).
PROBE_GAIN = 0.97

#: Per model: per (image shape, dtype, device, autocast), its probed plan or the images run so far without one.
_PLANS: "weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Union[ForwardPlan, int]]]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ForwardPlan:
    """Images per forward pass and whether they go in ``channels_last`` layout.

    Example:
        >>> ForwardPlan(batch_size=32, channels_last=True)
        ForwardPlan(batch_size=32, channels_last=True)
    """

    batch_size: int
    channels_last: bool


def forward_plan(
    model: Any,
    forward: Callable[[ForwardPlan], None],
    image_shape: torch.Size,
    dtype: torch.dtype,
    device: torch.device,
    total: int,
    forward_batch_size: Optional[int] = None,
    autocast: Optional[str] = None,
) -> ForwardPlan:
    """The plan for ``total`` coalition images of shape ``image_shape``: the user's, a cached one, or a probed one.

    Args:
        model: the model (its ``__wrapped__`` attribute, if any, names the module whose plans it shares).
        forward: runs one forward pass of ``plan.batch_size`` coalition images in the plan's layout (the probe's).
        image_shape: ``[C, H, W]`` of one image.
        dtype: dtype of the images.
        device: where the model runs.
        total: coalition images of this call.
        forward_batch_size: images per forward pass fixed by the user (no probe); ``None``: tuned.
        autocast: the autocast dtype the forward passes run under (part of the cache key).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
        >>> forward_plan(model, lambda plan: None, torch.Size([3, 8, 8]), torch.float32, torch.device("cpu"), 64)
        ForwardPlan(batch_size=256, channels_last=True)
    """
    kind = device.type if device.type in START_BYTES else "cpu"
    image_bytes = max(1, image_shape.numel() * dtype.itemsize)
    layouts = (True, False) if len(image_shape) == 3 and image_shape[0] > 1 else (False,)
    if forward_batch_size is not None:
        return ForwardPlan(forward_batch_size, layouts[0])
    largest = max(1, min(MAX_IMAGES[kind], MAX_BYTES[kind] // image_bytes))
    start = min(largest, _power_of_two_below(START_BYTES[kind] // image_bytes))
    plans = _cached_plans(getattr(model, "__wrapped__", model))
    key = (tuple(image_shape), dtype, str(device), autocast)
    entry = plans.get(key, 0)
    if isinstance(entry, ForwardPlan):
        return entry
    if entry + total < PROBE_WORK_RATIO * _probe_images(start, largest, len(layouts)) or total < start:
        plans[key] = entry + total  # not yet worth a probe: count the images run with the default plan
        return ForwardPlan(start, layouts[0])
    plan = _probe(forward, start, min(largest, total), layouts, device)  # every probe batch fits this call
    plans[key] = plan
    return plan


def cached_plan(
    model: Any, image_shape: torch.Size, dtype: torch.dtype, device: torch.device, autocast: Optional[str] = None
) -> Optional[ForwardPlan]:
    """The plan probed for this model and image shape, or ``None`` while the default plan still runs.

    Example:
        >>> cached_plan(torch.nn.Linear(2, 2), torch.Size([3, 8, 8]), torch.float32, torch.device("cpu")) is None
        True
    """
    entry = _cached_plans(getattr(model, "__wrapped__", model)).get((tuple(image_shape), dtype, str(device), autocast))
    return entry if isinstance(entry, ForwardPlan) else None


def clear_forward_plans() -> None:
    """Forget every probed plan (the next call of each model probes again), e.g. before timing a first call."""
    _PLANS.clear()


def _cached_plans(owner: Any) -> dict[tuple[Any, ...], Union[ForwardPlan, int]]:
    """The plans of one model, or a throw-away dict for models that cannot be weakly referenced."""
    try:
        return _PLANS.setdefault(owner, {})
    except TypeError:
        return {}


def _probe_images(start: int, largest: int, num_layouts: int) -> int:
    """Images the probe runs: each layout at ``start``, then the ladder (see :func:`_probe`, :func:`_seconds_per_image`).

    Example:
        >>> _probe_images(256, 256, 2)  # 2 x 3 x 256 at the start, then 3 x 64 and 3 x 128
        2112
    """
    sizes = [start] * num_layouts + [s for f in LADDER if 1 <= (s := int(start * f)) <= largest]
    return sum((1 + 2 * -(-PROBE_SAMPLE_IMAGES // size)) * size for size in sizes)


def _power_of_two_below(limit: int) -> int:
    """The largest power of two ``<= limit`` (at least 1)."""
    return 1 << max(0, int(limit).bit_length() - 1)


def _probe(
    forward: Callable[[ForwardPlan], None],
    start: int,
    largest: int,
    layouts: tuple[bool, ...],
    device: torch.device,
) -> ForwardPlan:
    """Time the layouts at ``start`` images, then the faster layout at a quarter, half, twice and four times that.

    A whole ladder rather than a climb that stops at the first step that is not faster: per-image costs near the
    optimum differ by a few percent, less than the noise of a shared machine, so a climb stops early by chance. For
    the same reason the default plan stays unless another is faster by more than ``1 - PROBE_GAIN``.
    """
    default = ForwardPlan(start, layouts[0])
    costs = {ForwardPlan(start, layout): _seconds_per_image(forward, ForwardPlan(start, layout), device) for layout in layouts}
    layout = min(costs, key=costs.__getitem__).channels_last
    for factor in LADDER:
        size = int(start * factor)
        if 1 <= size <= largest and ForwardPlan(size, layout) not in costs:
            costs[ForwardPlan(size, layout)] = _seconds_per_image(forward, ForwardPlan(size, layout), device)
    best = min(costs, key=costs.__getitem__)
    return best if costs[best] < PROBE_GAIN * costs[default] else default


def _seconds_per_image(forward: Callable[[ForwardPlan], None], plan: ForwardPlan, device: torch.device) -> float:
    """Per-image time of a plan: the better of two timings of at least ``PROBE_SAMPLE_IMAGES`` images each, after
    one untimed forward pass (first calls of a shape set up kernels).

    CPU time of this process on the CPU (it hardly moves when other processes compete for the cores), wall-clock
    time after synchronising on CUDA. A batch that runs out of memory costs infinity.
    """
    clock = time.process_time if device.type == "cpu" else time.perf_counter
    passes = -(-PROBE_SAMPLE_IMAGES // plan.batch_size)
    try:
        forward(plan)
        seconds = []
        for _ in range(2):
            _synchronize(device)
            begin = clock()
            for _ in range(passes):
                forward(plan)
            _synchronize(device)
            seconds.append(clock() - begin)
    except torch.cuda.OutOfMemoryError:  # also raised on other devices by torch >= 2.5 (its alias)
        return float("inf")
    return min(seconds) / (passes * plan.batch_size)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
