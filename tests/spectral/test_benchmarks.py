"""The benchmark scripts run end to end on tiny settings, and the naive baseline agrees with the engine."""

import doctest
import importlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from iaside_lightning.functional import coalition_values, spectral_shapley

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
RATIO = r"(\d+\.\d\d) \(median\), (\d+\.\d\d) \(min\)"
RATIOS = rf"cpu {RATIO}; wall {RATIO}"
Loader = Callable[[str], ModuleType]


@pytest.fixture()
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loader]:
    """Import a benchmark script by name, as the scripts import each other (``benchmarks/`` on ``sys.path``).

    The scripts run on the CPU here even on a CUDA machine (their output format depends on the device), and a
    script's ``--threads`` sets torch's thread count for the whole process: it is restored afterwards.
    """
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    threads = torch.get_num_threads()
    yield importlib.import_module
    torch.set_num_threads(threads)


def _tiny_model(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, stride=2), nn.Tanh(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(24, 5),
    )
    with torch.no_grad():
        model[-1].weight.mul_(20.0)  # logits large enough that the bands matter: |phi| well above the tolerance
    return model.to(dtype).eval()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("height", "width", "num_bands"), [(16, 16, 4), (12, 20, 4), (16, 20, 3)])
def test_naive_matches_engine(bench: Loader, dtype: torch.dtype, height: int, width: int, num_bands: int) -> None:
    naive = bench("naive")
    model = _tiny_model(dtype)
    images = torch.rand(3, 3, height, width, generator=torch.Generator().manual_seed(2), dtype=dtype)
    labels = torch.tensor([0, 2, 4])
    values = naive.naive_coalition_values(model, images, labels, num_bands, chunk_size=3)
    phi = naive.naive_shapley(values)
    paper = {"num_bands": num_bands, "fill": "zero", "band_edges": "linear"}  # what the naive version implements
    engine = spectral_shapley(model, images, labels, **paper)
    assert phi.abs().max() > 1e-2
    torch.testing.assert_close(values, coalition_values(model, images, labels, **paper), rtol=0, atol=1e-5)
    torch.testing.assert_close(phi, engine.phi, rtol=0, atol=1e-5)


def test_naive_masks_split_the_full_spectrum(bench: Loader) -> None:
    masks = bench("naive").full_grid_masks(12, 20, num_bands=4)
    image = torch.randn(12, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    parts = torch.fft.ifft2(torch.fft.fft2(image) * masks)
    assert bool((masks.sum(0) == 1).all())
    assert parts.imag.abs().max() < 1e-12  # symmetric masks: every band image is real
    torch.testing.assert_close(parts.real.sum(0), image)


def test_naive_shapley_of_a_known_game(bench: Loader) -> None:
    # v(S) = 1 if both bands 0 and 1 are in S (a unanimity game on 3 bands): they split the unit, band 2 is null.
    values = torch.tensor([[float(s & 0b011 == 0b011) for s in range(8)]])
    torch.testing.assert_close(bench("naive").naive_shapley(values), torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))


def test_bench_engine_quick_prints_ratios(bench: Loader, capsys: pytest.CaptureFixture[str]) -> None:
    module = bench("bench_engine")
    argv = ["--quick", "--profile", "--textbook", "--sweep", "2", "8", "16"]
    assert module.main(argv + ["--configs", "resnet18:32:2:3", "resnet18:224:1:2"]) == 0
    out = capsys.readouterr().out
    target = r"  \[target {} on cpu median: (met|MISSED)\]$"
    assert len(re.findall(rf"^engine / limit \(the fastest by-hand variant\): {RATIOS}{target.format('<= 1.05')}", out, re.M)) == 2
    assert len(re.findall(r"^by hand, \d+ images, (contiguous|channels_last) +cpu ", out, re.M)) == 4  # two finalists
    assert len(re.findall(rf"^textbook / engine: {RATIOS}", out, re.M)) == 2
    assert re.search(rf"^textbook / engine: {RATIOS}{target.format('>= 5')}", out, re.M)  # the 224 px one only
    assert len(re.findall(rf"^textbook / limit \(the most any engine can gain\): {RATIOS}$", out, re.M)) == 2
    # The sweep tries both layouts at every size that fits the call: 16 images (2 x 8) leave out none, 4 leave out 8, 16.
    assert len(re.findall(r"^  limit sweep, +(contiguous|channels_last): 2: \d+\.\d\d  8: \d+\.\d\d  16: ", out, re.M)) == 2
    assert len(re.findall(r"^  limit sweep, +(contiguous|channels_last): 2: \d+\.\d\d ms/image$", out, re.M)) == 2
    settled = r"^engine plan: (\d+ images per forward, (contiguous|channels_last); \d+ calls to settle|the default \(no probe)"
    assert len(re.findall(settled, out, re.M)) == 2
    assert len(re.findall(r"^engine's own work \(no-work model\): cpu \d+\.\d+ s = \d+\.\d% of the engine$", out, re.M)) == 2


def test_bench_engine_limit_ranks_candidates_by_cost(bench: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    """find_limit ranks layout x batch candidates by measured cost per image (a fake clock makes costs known)."""
    module = bench("bench_engine")
    seconds = {1: 5.0, 2: 1.0, 4: 3.0}  # per timed pass, whatever the layout
    clock = [0.0]
    calls: list[int] = []

    def run_forward(model: nn.Module, images: torch.Tensor, size: int, autocast: object) -> None:
        calls.append(size)
        clock[0] += seconds[size]

    monkeypatch.setattr(module, "run_forward", run_forward)
    monkeypatch.setattr(module.time, "process_time", lambda: clock[0])
    ranked, lines = module.find_limit(nn.Identity(), torch.rand(8, 3, 4, 4), sizes=(1, 2, 4, 16))
    assert 16 not in calls  # larger than the images
    assert [c.batch_size for c in ranked] == [2, 2, 4, 4, 1, 1] and len(lines) == 2
    assert "2: 125.00" in lines[0]  # 1 s for 8 images: 125 ms per image


def test_bench_memory_quick_prints_growth(bench: Loader, capsys: pytest.CaptureFixture[str]) -> None:
    module = bench("bench_memory")
    argv = ["--quick", "--num-bands", "2", "3", "--control-max-bands", "0", "--size", "8", "--threads", "1"]
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^M=(\d) .* (\d+) images per forward  peak growth +(\d+\.\d) MiB", out, re.M)
    assert [(m, n) for m, n, _ in rows] == [("2", "128"), ("3", "256")]  # B = 32: 2^M * 32 images (under the 256 the plan starts with)
    assert all(float(g) > 0 for _, _, g in rows)
    assert re.search(r"^default plan: peak growth M=3 / M=2 = \d+\.\d\d \(2\^M grew 2x\)$", out, re.M)


def test_gpu_throughput_without_cuda_exits_cleanly(bench: Loader, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench("gpu_throughput").main([]) == 0
    assert capsys.readouterr().out == "gpu_throughput.py needs a CUDA GPU and none was found: nothing measured.\n"


def test_gpu_throughput_rows_come_from_the_engine_benchmark(bench: Loader) -> None:
    """The GPU table reuses bench_engine's measurement; one of its rows on a tiny CPU configuration."""
    module = bench("gpu_throughput")
    engine = bench("bench_engine")
    config = engine.Config("resnet18", 32, 1, 2)
    measured = engine.run_config(config, 1, torch.device("cpu"), sizes=(2, 4), textbook=False)
    row = module.table_row(config, "float32", measured)
    assert re.fullmatch(r"\| resnet18 \| 32 \| 1 \| float32 \| \d+ \| \d+ \| \d+\.\d\d \| (met|missed) \|", row)


@pytest.mark.parametrize("name", ["_common", "naive", "bench_engine", "bench_memory", "gpu_throughput"])
def test_benchmark_doctests(bench: Loader, name: str) -> None:
    result = doctest.testmod(bench(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("monitor", ["spectral", "boundary"])
def test_callback_overhead_benchmark_runs(monitor: str) -> None:
    """The overhead script runs the quick-start example with and without the monitor and prints both ratios."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_callback_overhead.py"), "--quick", "--repeats", "1", "--monitor", monitor],
        capture_output=True, text=True, timeout=300, check=True,
    )
    for clock in ("wall", "CPU"):
        ratio = re.search(rf"{clock} with / without {monitor} monitor: (\d+\.\d+)", done.stdout)
        assert ratio is not None and float(ratio.group(1)) > 0.5, done.stdout
    hooks = re.search(r"monitor hooks: median (\d+\.\d) s", done.stdout)
    assert hooks is not None and float(hooks.group(1)) > 0, done.stdout  # the profiler saw the monitor's hooks
