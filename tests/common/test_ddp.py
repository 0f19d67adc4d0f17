"""Exactness across processes: 2 CPU processes (gloo) give the single-process result.

Two tests sync metrics directly in a gloo process group (including a rank that sees no sample): SpectralImportance,
and the sum-state BoundaryGeometry and AttributionLocalization; one runs a real
``Trainer(strategy="ddp_spawn", devices=2)`` with the callback and compares the logged phi to a 1-process run.
"""

import os
import socket
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.pytorch import Trainer, seed_everything
from torch import nn

from iaside_lightning import (
    AttributionLocalization,
    BoundaryGeometry,
    BoundaryMonitor,
    SpectralImportance,
    SpectralRobustnessMonitor,
    spectral_shapley,
)
from iaside_lightning.datasets import BlockMNISTDataModule, PlantedBandDataModule
from iaside_lightning.functional.boundary.geometry import BoundaryGeometryResult
from iaside_lightning.functional.boundary.search import BoundarySearchResult
from iaside_lightning.models import SmallCNNClassifier


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 16 * 16, 4)).double()


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    return torch.rand(10, 1, 16, 16, generator=g, dtype=torch.float64), torch.randint(0, 4, (10,), generator=g)


def _boundary_data(index: list[int]) -> tuple[BoundaryGeometryResult, torch.Tensor, torch.Tensor]:
    """Samples ``index`` of 10 deterministic per-sample geometry results, with their BIG attributions and masks.

    Some samples are misclassified, some correct ones have no boundary point (NaN geometry, zero BIG, a finite
    completeness error that must be left out) and one more has an all-zero BIG (left out of the localization).
    """
    g = torch.Generator().manual_seed(3)
    shape = (10, 1, 16, 16)
    correct = torch.arange(10) % 5 != 0
    found = correct & (torch.arange(10) % 3 != 0)
    per_image = found[:, None, None, None]
    images = torch.rand(shape, generator=g, dtype=torch.float64)
    points = torch.where(per_image, images + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64), images)
    big = torch.where(per_image, torch.randn(shape, generator=g, dtype=torch.float64), 0.0)
    big[1] = 0.0
    cosines = torch.where(found, 2 * torch.rand(2, 10, generator=g, dtype=torch.float64) - 1, torch.nan)
    error = torch.randn(10, generator=g, dtype=torch.float64)
    masks = torch.rand(shape, generator=g) < 0.3
    i = torch.tensor(index, dtype=torch.long)
    search = BoundarySearchResult(
        points=points[i], found=found[i], correct=correct[i], epsilon=torch.where(found, 0.5, torch.nan)[i],
        distance=torch.where(found, (images - points).flatten(1).norm(dim=1), torch.nan)[i],
    )
    geometry = BoundaryGeometryResult(
        search=search, gradient=-big[i], integrated_gradients=images[i], big=big[i], cos_gradient_boundary=cosines[0, i],
        cos_ig_big=cosines[1, i], big_completeness_error=error[i],
    )
    return geometry, big[i], masks[i]


def _boundary_metrics(batches: list[list[int]]) -> dict[str, torch.Tensor]:
    """BoundaryGeometry and AttributionLocalization (of BIG) over ``batches``; synced when a process group is up."""
    geometry, localization = BoundaryGeometry(), AttributionLocalization(top_k=0.1)
    for batch in batches:
        result, big, masks = _boundary_data(batch)
        geometry.update_from_result(result)
        localization.update(big, masks)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The ``compute`` method", UserWarning)  # the rank without samples
        return geometry.compute() | {f"localization/{k}": v for k, v in localization.compute().items()}


SCENARIOS = {
    "uneven": [[[0, 1, 2], [3, 4]], [[5, 6, 7, 8, 9]]],
    "empty-rank": [[list(range(10))], []],  # rank 1 sees no sample
}


#: Every tensor of the spectral result that must be exact under any split: the scores, their standard errors (through
#: the summed outer products of per-sample phi) and the band sizes (through the image-size state).
SPECTRAL_FIELDS = (
    "phi", "stderr", "phi_covariance", "psi_stderr", "srs", "srs_stderr", "srs_signed_stderr", "balance",
    "balance_stderr", "band_rings", "band_bins",
)


def _spectral_fields(result: object) -> dict[str, list]:
    """The fields as plain lists: sent between processes by value (a tensor in a queue is shared through a socket of
    the sending process, which is gone if that process exits before the receiver reads it)."""
    return {name: getattr(result, name).tolist() for name in SPECTRAL_FIELDS}


def _worker(rank: int, port: int, out: "mp.Queue") -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        model, (x, y) = _model(), _data()
        for name, shards in SCENARIOS.items():
            metric = SpectralImportance(num_bands=4, fill="zero")  # a fill that does not depend on the batching
            for batch in shards[rank]:
                metric.update(model, x[batch], y[batch])
            result = metric.compute()
            boundary = {k: float(v) for k, v in _boundary_metrics(shards[rank]).items()}  # float64 values, sent by value
            out.put((name, rank, _spectral_fields(result), result.num_samples, boundary))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gloo_results() -> dict[str, list]:
    """Run every scenario in one 2-process gloo group (process start-up dominates the cost)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(rank, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results: dict[str, list] = {name: [] for name in SCENARIOS}
    for _ in range(2 * len(SCENARIOS)):
        name, *rest = queue.get(timeout=180)
        results[name].append(rest)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_metric_sync_over_gloo_equals_single_process(gloo_results: dict[str, list], scenario: str) -> None:
    model, (x, y) = _model(), _data()
    result = spectral_shapley(model, x, y, num_bands=4, fill="zero")
    want = {name: getattr(result, name) for name in SPECTRAL_FIELDS}
    assert float(want["srs_stderr"]) > 0 and float(want["phi_covariance"][0, 1]) != 0  # the test is not trivial
    assert len(gloo_results[scenario]) == 2  # both ranks computed
    for _, fields, count, _ in gloo_results[scenario]:
        assert count == 10
        for name, value in want.items():
            got = torch.tensor(fields[name], dtype=value.dtype)
            torch.testing.assert_close(got, value, rtol=0, atol=1e-12, msg=name)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_boundary_metrics_sync_over_gloo_equals_single_process(gloo_results: dict[str, list], scenario: str) -> None:
    want = _boundary_metrics([list(range(10))])
    assert int(want["accuracy_count"]) == 10 and int(want["attack_success_rate_count"]) == 8  # the test is not trivial
    assert int(want["distance_count"]) == int(want["abs_completeness_error_count"]) == 5
    assert int(want["localization/mass_inside_count"]) == 4  # BIG is zero without a boundary point and for sample 1
    assert len(gloo_results[scenario]) == 2  # both ranks computed
    for *_, got in gloo_results[scenario]:
        assert got.keys() == want.keys()
        for key, value in want.items():
            got_value = torch.tensor(got[key], dtype=torch.float64)
            torch.testing.assert_close(got_value, value, rtol=0, atol=1e-12, equal_nan=True, msg=key)


def _trained_model_and_data() -> tuple[SmallCNNClassifier, PlantedBandDataModule]:
    seed_everything(0)
    data = PlantedBandDataModule(num_train=128, num_val=32, batch_size=8, image_size=16, num_bands=4, planted_bands=2)
    model = SmallCNNClassifier(in_channels=1, width=4, depth=2, lr=1e-2)
    _trainer(devices=1, strategy="auto", callbacks=[]).fit(model, datamodule=data)
    return model, data


def _trainer(devices: int, strategy: str, callbacks: list) -> Trainer:
    return Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


def _validate(model: SmallCNNClassifier, data: PlantedBandDataModule, devices: int, strategy: str) -> dict[str, float]:
    monitor = SpectralRobustnessMonitor(  # zero fill: a result that does not depend on which images share a batch
        num_bands=4, fill="zero", max_samples=None, normalization=data.normalization, log_figures=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (metrics,) = _trainer(devices, strategy, [monitor]).validate(model, datamodule=data, verbose=False)
    return {k: float(v) for k, v in metrics.items() if k.startswith("spectral/")}


def test_ddp_spawn_trainer_logs_the_single_process_phi() -> None:
    model, data = _trained_model_and_data()
    single = _validate(model, data, 1, "auto")
    double = _validate(model, data, 2, "ddp_spawn")
    assert {k for k in single if k.startswith("spectral/phi/")} == {f"spectral/phi/band_{k}" for k in range(4)}
    assert max(abs(single[f"spectral/phi/band_{k}"]) for k in range(4)) > 1e-2  # a trained model, not all zeros
    # 32 validation images split 16/16 over 2 ranks (no sampler padding), the same weights: the same statistics,
    # standard errors of every score included.
    assert {"spectral/srs_stderr", "spectral/balance_stderr", "spectral/psi_stderr/band_0"} <= set(single)
    for key, value in single.items():
        assert double[key] == pytest.approx(value, abs=1e-6), key


def _validate_boundary(devices: int, strategy: str) -> dict[str, float]:
    seed_everything(0)
    model = SmallCNNClassifier(in_channels=1, num_classes=2, width=4, depth=2)
    data = BlockMNISTDataModule(source="synthetic", num_per_class=40, num_val=32, batch_size=8, block_size=14)
    monitor = BoundaryMonitor(num_probes=16, epsilons=(4.0, 16.0, 64.0), steps=2, mask_key=2, log_images=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (metrics,) = _trainer(devices, strategy, [monitor]).validate(model, datamodule=data, verbose=False)
    return {k: float(v) for k, v in metrics.items() if k.startswith("boundary/")}


def test_ddp_spawn_boundary_monitor_matches_single_process() -> None:
    """Each rank probes the first 8 images of its shard: together the single process's 16 probes, the same means."""
    single = _validate_boundary(1, "auto")
    double = _validate_boundary(2, "ddp_spawn")
    assert {"boundary/distance", "boundary/localization/gradient/mass_inside"} <= set(single)
    assert single["boundary/attack_success_rate"] > 0
    assert set(double) == set(single)
    for key, value in single.items():
        assert double[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
