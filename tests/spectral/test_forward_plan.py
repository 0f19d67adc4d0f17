"""The engine's forward plan (images per forward pass, input layout) and its coalition image stream."""

import warnings

import pytest
import torch
from torch import nn

from iaside_lightning.callbacks.forward import model_view
from iaside_lightning.functional import coalition_values, spectral_shapley
from iaside_lightning.functional.spectral import forward_plan as plan_module
from iaside_lightning.functional.spectral.bands import band_images, band_masks
from iaside_lightning.functional.spectral.coalitions import CoalitionImages, coalition_matrix, fill_images
from iaside_lightning.functional.spectral.forward_plan import ForwardPlan, cached_plan, clear_forward_plans, forward_plan

CPU = torch.device("cpu")


class Recorder(nn.Module):
    """A small CNN that records the batch size and layout of every forward pass."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.head = nn.Linear(4, 5)
        self.calls: list[tuple[int, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((x.shape[0], x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()))
        return self.head(self.conv(x).mean(dim=(2, 3)))


@pytest.fixture(autouse=True)
def _fresh_plans():
    clear_forward_plans()
    yield
    clear_forward_plans()


@pytest.mark.parametrize("fill", ["zero", "permute", "noise"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_stream_matches_explicit_coalition_images(fill: str, channels_last: bool) -> None:
    """Every pair of the stream is the explicit image sum_k [k in S] b_k + [k not in S] f_k, normalised."""
    torch.manual_seed(1)
    pixels = torch.rand(3, 2, 9, 10, dtype=torch.float64)
    masks = band_masks(9, 10, num_bands=3)
    bands = band_images(pixels, masks)
    fills = fill_images(bands, masks, fill, seed=4)  # type: ignore[arg-type]
    coalitions = coalition_matrix(3)
    mean, std = torch.tensor([0.4, 0.6], dtype=torch.float64), torch.tensor([0.2, 0.3], dtype=torch.float64)
    stream = CoalitionImages(bands, fills, coalitions, (mean, std))
    absent = torch.zeros_like(bands) if fills is None else fills
    for start, count in ((0, 24), (5, 7), (7, 1), (15, 9)):
        taken = stream.take(start, count, channels_last).clone()
        assert taken.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        for row in range(count):
            image, coalition = stream.pair(start + row)
            keep = coalitions[coalition].bool()
            explicit = bands[keep, image].sum(0) + absent[~keep, image].sum(0)
            expected = (explicit - mean[:, None, None]) / std[:, None, None]
            torch.testing.assert_close(taken[row], expected, rtol=0, atol=1e-12)


def test_stream_reuses_one_buffer_per_layout() -> None:
    bands = band_images(torch.rand(2, 3, 8, 8), band_masks(8, 8, num_bands=2))
    stream = CoalitionImages(bands, None, coalition_matrix(2))
    first = stream.take(0, 4)
    second = stream.take(4, 3)
    assert first.data_ptr() == second.data_ptr()  # the same memory, overwritten
    assert stream.take(0, 2, channels_last=True).data_ptr() != first.data_ptr()


def test_user_batch_size_sets_every_forward_pass() -> None:
    model = Recorder()
    images, labels = torch.rand(5, 3, 8, 8), torch.randint(0, 5, (5,))
    coalition_values(model, images, labels, num_bands=3, fill="zero", forward_batch_size=7)
    sizes = [size for size, _ in model.calls]
    assert sizes == [7] * 5 + [40 - 35]  # 5 images x 8 coalitions, whatever B is
    assert all(layout for _, layout in model.calls)  # 3 channels: channels_last


def test_single_channel_images_stay_contiguous() -> None:
    model = Recorder(channels=1)
    coalition_values(model, torch.rand(2, 1, 8, 8), torch.tensor([0, 1]), num_bands=2, forward_batch_size=3)
    assert model.calls and not any(layout for _, layout in model.calls)


def test_values_do_not_depend_on_the_plan() -> None:
    model = Recorder().double()
    images, labels = torch.rand(4, 3, 10, 9, dtype=torch.float64), torch.randint(0, 5, (4,))
    reference = coalition_values(model, images, labels, num_bands=3, fill="permute", forward_batch_size=1)
    for size in (2, 5, 32):
        other = coalition_values(model, images, labels, num_bands=3, fill="permute", forward_batch_size=size)
        torch.testing.assert_close(other, reference, rtol=0, atol=1e-12)


def test_probe_picks_the_fastest_plan_and_caches_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A synthetic cost per image (lowest at 64 images in channels_last): the probe finds it, once."""
    probed: list[ForwardPlan] = []

    def cost(forward, plan: ForwardPlan, device) -> float:
        probed.append(plan)
        forward(plan)
        return abs(plan.batch_size - 64) + (0.0 if plan.channels_last else 100.0)

    monkeypatch.setattr(plan_module, "_seconds_per_image", cost)
    model = Recorder()
    # 8 MiB / (3 * 32 * 32 * 4 bytes) -> a start at 256 images; the probe would run 2,112 images, so it waits until
    # twice that have run: each call has 256 * 16 = 4096 images, the 2nd call probes.
    images, labels = torch.rand(16, 3, 32, 32), torch.randint(0, 5, (16,))
    for _ in range(1):
        coalition_values(model, images, labels, num_bands=8, fill="zero")
    assert not probed and {size for size, _ in model.calls} == {256}  # the default plan meanwhile
    assert cached_plan(model, images.shape[1:], images.dtype, CPU) is None
    model.calls.clear()
    coalition_values(model, images, labels, num_bands=8, fill="zero")
    assert cached_plan(model, images.shape[1:], images.dtype, CPU) == ForwardPlan(64, True)
    # Both layouts at the start, then the ladder in channels_last (512 and 1024 exceed the CPU's 256 images).
    assert probed == [ForwardPlan(256, True), ForwardPlan(256, False), ForwardPlan(64, True), ForwardPlan(128, True)]
    assert {size for size, _ in model.calls[len(probed) :]} == {64}
    probed.clear()
    model.calls.clear()
    coalition_values(model_view(model, lambda module, x: module(x)), images, labels, num_bands=8, fill="zero")
    assert not probed and {size for size, _ in model.calls} == {64}  # cached for the module, also through a view


def test_probe_ladder_survives_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def forward(plan: ForwardPlan) -> None:
        if plan.batch_size > 64:
            raise torch.cuda.OutOfMemoryError("too big")

    monkeypatch.setattr(plan_module.time, "process_time", iter(range(10**6)).__next__)  # every timing costs 1 s
    plan = plan_module._probe(forward, start=32, largest=256, layouts=(True, False), device=CPU)
    assert plan == ForwardPlan(64, True)  # cost 1 / (passes * size) per image; 128 runs out of memory


def test_probe_keeps_the_default_unless_another_plan_is_clearly_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    costs = {ForwardPlan(16, True): 1.0, ForwardPlan(16, False): 0.99, ForwardPlan(64, False): 0.98}
    monkeypatch.setattr(plan_module, "_seconds_per_image", lambda forward, plan, device: costs.get(plan, 2.0))
    assert plan_module._probe(print, 16, 256, (True, False), CPU) == ForwardPlan(16, True)  # 2 % is noise
    costs[ForwardPlan(64, False)] = 0.9
    assert plan_module._probe(print, 16, 256, (True, False), CPU) == ForwardPlan(64, False)


def test_a_probe_timing_covers_enough_images() -> None:
    sizes: list[int] = []
    cost = plan_module._seconds_per_image(lambda plan: sizes.append(plan.batch_size), ForwardPlan(8, True), CPU)
    assert sizes == [8] * (1 + 2 * 4) and cost >= 0  # one untimed pass, then two timings of 4 x 8 = 32 images


def test_small_calls_and_user_sizes_are_not_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> float:
        raise AssertionError("probed")

    monkeypatch.setattr(plan_module, "_seconds_per_image", fail)
    shape = torch.Size([3, 32, 32])
    assert forward_plan(None, print, shape, torch.float32, CPU, total=1000) == ForwardPlan(256, True)
    assert forward_plan(None, print, shape, torch.float32, CPU, total=10**6, forward_batch_size=5) == ForwardPlan(5, True)


def test_chunk_size_is_deprecated_and_keeps_its_batching() -> None:
    model = Recorder()
    images, labels = torch.rand(3, 3, 8, 8), torch.randint(0, 5, (3,))
    with pytest.warns(DeprecationWarning, match="forward_batch_size") as records:
        old = coalition_values(model, images, labels, num_bands=2, fill="zero", chunk_size=2)
    assert records[0].filename == __file__
    assert [size for size, _ in model.calls] == [6, 6]
    new = coalition_values(model, images, labels, num_bands=2, fill="zero", forward_batch_size=6)
    torch.testing.assert_close(old, new, rtol=0, atol=0)
    with pytest.raises(ValueError, match="`forward_batch_size` alone"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        spectral_shapley(model, images, labels, num_bands=2, chunk_size=2, forward_batch_size=6)


@pytest.mark.parametrize(("bad", "error"), [(0, ValueError), (-3, ValueError), (1.5, TypeError), ("8", TypeError)])
def test_bad_forward_batch_size_names_the_argument(bad: object, error: type) -> None:
    with pytest.raises(error, match="`forward_batch_size` must be a positive integer"):
        coalition_values(Recorder(), torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), num_bands=2, forward_batch_size=bad)
