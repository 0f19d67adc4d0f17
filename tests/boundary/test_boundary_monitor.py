"""BoundaryMonitor in a real Trainer: no side effects, logged scalars, fixed probe set, resume, artifacts, bad input."""

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import IMAGES, SCALARS, EventAccumulator
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

import iaside_lightning.plotting
from iaside_lightning import BoundaryMonitor
from iaside_lightning.datasets import BlockMNISTDataModule
from iaside_lightning.functional import boundary_geometry
from iaside_lightning.metrics import AttributionLocalization, BoundaryGeometry
from iaside_lightning.models import SmallCNNClassifier
from side_effects import BatchGuard, Recorder, assert_training_unchanged, quiet_trainer, training_record

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

#: A short search whose ladder reaches the boundary of the tiny models below (the "fast" one stops at 8).
SEARCH = {"epsilons": (4.0, 16.0, 64.0), "steps": 2}
NUM_PROBES = 6  # 8 validation images in batches of 4: the budget ends inside the second batch
GEOMETRY = ("distance", "attack_success_rate", "accuracy", "cos_gradient_boundary", "cos_ig_big", "abs_completeness_error")
METHODS = ("gradient", "integrated_gradients", "big")  # localization keys, named like the geometry attributes
LOCALIZATION = ("mass_inside", "pointing_game", "top_k_outside")
SCALARS_LOGGED = {*GEOMETRY, "distance_stderr"} | {f"localization/{m}/{k}" for m in METHODS for k in LOCALIZATION}


def _data() -> BlockMNISTDataModule:
    return BlockMNISTDataModule(source="synthetic", num_per_class=12, num_val=8, batch_size=4)


def _model(**kwargs: Any) -> SmallCNNClassifier:
    return SmallCNNClassifier(**{"in_channels": 1, "num_classes": 2, "width": 4, "depth": 2, "lr": 3e-2, **kwargs})


def _monitor(**kwargs: Any) -> BoundaryMonitor:
    return BoundaryMonitor(**{"num_probes": NUM_PROBES, "mask_key": 2, **SEARCH, **kwargs})


def _assert_rows_equal(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """History rows equal, NaN equal to NaN."""
    assert [list(row) for row in got] == [list(row) for row in want]
    np.testing.assert_equal([list(row.values()) for row in got], [list(row.values()) for row in want])


# -------------------------------------------------------------------------------------------- no side effects


def _fit(tmp_path: Path, with_monitor: bool, inference_mode: bool) -> dict[str, Any]:
    seed_everything(3)
    model, guard, monitor = Recorder(num_classes=2, lr=3e-2), BatchGuard(), _monitor()
    trainer = quiet_trainer(tmp_path, [monitor, guard] if with_monitor else [guard], inference_mode=inference_mode, max_epochs=3)
    trainer.fit(model, datamodule=_data())
    return training_record(trainer, model, guard, "boundary/") | {
        "history": monitor.history,
    }


@pytest.mark.parametrize("inference_mode", [True, False])
def test_monitor_does_not_change_training(tmp_path: Path, inference_mode: bool) -> None:
    without = _fit(tmp_path, with_monitor=False, inference_mode=inference_mode)
    with_ = _fit(tmp_path, with_monitor=True, inference_mode=inference_mode)
    assert [r["epoch"] for r in with_["history"]] == [0, 1, 2] and not without["history"]  # the monitor did run,
    assert max(r["attack_success_rate"] for r in with_["history"]) > 0  # attacks, bisection and BIG included
    assert_training_unchanged(with_, without)  # parameters, BatchNorm statistics, gradients, metrics, RNG, modes
    assert all(mode == (True, False) for mode in with_["modes"])


# ------------------------------------------------------------------------------------------------ logged values


def test_logged_scalars_are_in_range_and_equal_a_recomputation_on_the_probes(tmp_path: Path) -> None:
    seed_everything(0)
    model, data, logger, monitor = _model(), _data(), CSVLogger(tmp_path), _monitor()
    trainer = quiet_trainer(tmp_path, [monitor], max_epochs=3, logger=logger, log_every_n_steps=1)
    trainer.fit(model, datamodule=data)

    history = monitor.history
    assert [r["epoch"] for r in history] == [0, 1, 2]
    assert {k for k in history[-1] if k not in ("epoch", "step")} == SCALARS_LOGGED
    for row in history:
        rates = [row["accuracy"], row["attack_success_rate"]]
        rates += [row[f"localization/{m}/{k}"] for m in METHODS for k in LOCALIZATION]
        cosines = [row["cos_gradient_boundary"], row["cos_ig_big"]]
        assert all(0 <= v <= 1 for v in rates if not np.isnan(v))
        assert all(-1 <= v <= 1 for v in cosines if not np.isnan(v))
        assert np.isnan(row["distance"]) or (row["distance"] > 0 and row["distance_stderr"] >= 0)
        assert np.isnan(row["abs_completeness_error"]) or row["abs_completeness_error"] >= 0
    last = history[-1]
    assert last["attack_success_rate"] > 0 and not any(np.isnan(v) for v in last.values())

    # The same measurement, recomputed from the cached probes and the final weights with the functional core.
    images, labels, masks = monitor.probes
    assert torch.equal(images, data.val_set.images[:NUM_PROBES]) and torch.equal(masks, data.val_set.masks[:NUM_PROBES])
    geometry = boundary_geometry(model, images, labels, **SEARCH)
    metric = BoundaryGeometry()
    metric.update_from_result(geometry)
    want = {k: float(v) for k, v in metric.compute().items()}
    for method in METHODS:
        localization = AttributionLocalization(top_k=0.1)
        localization.update(getattr(geometry, method), masks)
        want |= {f"localization/{method}/{k}": float(v) for k, v in localization.compute().items()}
    for key in SCALARS_LOGGED:
        assert last[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key

    logged = {k.removeprefix("boundary/"): float(v) for k, v in trainer.callback_metrics.items() if k.startswith("boundary/")}
    assert set(logged) == SCALARS_LOGGED
    assert all(logged[k] == pytest.approx(last[k], rel=1e-6) for k in SCALARS_LOGGED)
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as file:
        rows = [r for r in csv.DictReader(file) if r["boundary/distance"]]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for row, expected in zip(rows, history):
        got = [float(row[f"boundary/{k}"]) for k in sorted(SCALARS_LOGGED)]
        np.testing.assert_allclose(got, [expected[k] for k in sorted(SCALARS_LOGGED)], rtol=1e-6)


# ------------------------------------------------------------------------------------------------- probe set


class _ValidationRecorder(Callback):
    """Records the validation batches (the sanity check's under "sanity") and, after the monitor, its probes per epoch."""

    def __init__(self, monitor: BoundaryMonitor) -> None:
        self.monitor = monitor
        self.batches: dict[Any, list[list[Tensor]]] = {}
        self.probes: dict[int, Optional[tuple]] = {}

    def on_validation_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, *args: Any) -> None:
        key = "sanity" if trainer.sanity_checking else trainer.current_epoch
        self.batches.setdefault(key, []).append([t.clone() for t in batch])

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking:
            self.probes[trainer.current_epoch] = self.monitor.probes

    def first(self, key: Any, part: int = 0) -> Tensor:
        return torch.cat([batch[part] for batch in self.batches[key]])[:NUM_PROBES]


def test_probe_set_is_cached_once_from_the_first_epoch_even_with_a_shuffling_loader(tmp_path: Path) -> None:
    seed_everything(1)
    data = _data()
    data.setup("fit")
    monitor = _monitor()
    recorder = _ValidationRecorder(monitor)
    shuffled = DataLoader(data.val_set, batch_size=4, shuffle=True)
    trainer = quiet_trainer(tmp_path, [monitor, recorder], max_epochs=3, num_sanity_val_steps=2)
    trainer.fit(_model(), data.train_dataloader(), shuffled)

    assert [r["epoch"] for r in monitor.history] == [0, 1, 2]  # nothing from the sanity check
    images, labels, masks = recorder.probes[0]
    assert (torch.equal(images, recorder.first(0, 0)) and torch.equal(labels, recorder.first(0, 1))
            and torch.equal(masks, recorder.first(0, 2)))
    assert not images.is_inference() and images.device.type == "cpu"
    for epoch in (1, 2):  # the loader reorders the images every epoch; the probes stay
        assert not torch.equal(recorder.first(epoch), recorder.first(0))
        assert all(a is b for a, b in zip(recorder.probes[epoch], recorder.probes[0]))
    assert not torch.equal(recorder.first("sanity"), images)


def test_every_n_epochs_measures_on_schedule_with_probes_from_epoch_zero(tmp_path: Path) -> None:
    data, monitor, logger = _data(), _monitor(every_n_epochs=2, log_images=False), CSVLogger(tmp_path)
    recorder = _ValidationRecorder(monitor)
    quiet_trainer(tmp_path, [monitor, recorder], max_epochs=4, logger=logger).fit(_model(), datamodule=data)
    assert [r["epoch"] for r in monitor.history] == [1, 3]
    assert recorder.probes[0] is not None and torch.equal(recorder.probes[0][0], data.val_set.images[:NUM_PROBES])
    with open(Path(logger.log_dir) / "boundary_history.csv", newline="") as file:
        assert [int(r["epoch"]) for r in csv.DictReader(file)] == [1, 3]
    assert not (Path(logger.log_dir) / "figures").exists()  # log_images=False


def test_no_probe_image_warns_and_measures_nothing(tmp_path: Path) -> None:
    monitor = _monitor(dataloader_idx=1)  # there is a single validation dataloader
    with pytest.warns(UserWarning, match="no probe image in validation dataloader 1"):
        quiet_trainer(tmp_path, [monitor], max_epochs=1, limit_train_batches=1).fit(_model(), datamodule=_data())
    assert monitor.history == [] and monitor.probes is None


# -------------------------------------------------------------------------------------------------- resume


def test_checkpoint_monitors_a_boundary_scalar_and_resume_continues_history(tmp_path: Path) -> None:
    data = _data()
    checkpoint = ModelCheckpoint(
        dirpath=tmp_path / "ckpt", monitor="boundary/cos_gradient_boundary", mode="max", save_top_k=-1, save_last=True
    )
    first = _monitor()
    seed_everything(3)
    quiet_trainer(tmp_path, [first, checkpoint], max_epochs=2, enable_checkpointing=True).fit(_model(), datamodule=data)
    assert checkpoint.best_model_path
    best = np.nanmax([r["cos_gradient_boundary"] for r in first.history])
    assert float(checkpoint.best_model_score) == pytest.approx(best, rel=1e-6)

    resumed = _monitor()
    quiet_trainer(tmp_path, [resumed, ModelCheckpoint(dirpath=tmp_path / "ckpt2")], max_epochs=3, enable_checkpointing=True).fit(
        _model(), datamodule=data, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
    )
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2]
    _assert_rows_equal(resumed.history[:2], first.history)

    copy = _monitor()
    state = resumed.state_dict()
    copy.load_state_dict(state)
    state["history"][0]["distance"] = -1.0  # a deep copy: neither monitor sees changes to the state dict
    _assert_rows_equal(copy.history, resumed.history)
    assert copy.state_key == resumed.state_key != _monitor(log_prefix="other/").state_key


# ------------------------------------------------------------------------------------------------ artifacts


def test_figure_and_history_reach_csv_and_tensorboard_loggers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    grids: list[dict[str, Any]] = []
    plot = iaside_lightning.plotting.plot_attribution_grid

    def spy(images: Tensor, attributions: dict[str, Tensor], masks: Tensor, labels: list[int], **kwargs: Any) -> Any:
        grids.append({"images": images, "attributions": attributions, "masks": masks, "labels": labels})
        return plot(images, attributions, masks, labels, **kwargs)

    monkeypatch.setattr(iaside_lightning.plotting, "plot_attribution_grid", spy)
    csv_logger, tensorboard = CSVLogger(tmp_path / "csv"), TensorBoardLogger(tmp_path / "tb")
    monitor = _monitor(num_images=4)
    seed_everything(0)
    quiet_trainer(tmp_path, [monitor], logger=[csv_logger, tensorboard]).fit(_model(), datamodule=_data())

    images, labels, masks = monitor.probes
    assert len(grids) == 2
    for grid in grids:
        assert torch.equal(grid["images"], images[:4]) and torch.equal(grid["masks"], masks[:4])
        assert grid["labels"] == labels[:4].tolist()
        assert list(grid["attributions"]) == ["gradient", "IG (zero baseline)", "BIG"]
        assert all(a.shape == images[:4].shape for a in grid["attributions"].values())

    for epoch in (0, 1):
        png = Path(csv_logger.log_dir) / "figures" / "boundary" / "attributions" / f"epoch_{epoch:04d}.png"
        width, height = Image.open(png).size
        assert height > width > 0  # four rows of tall BlockMNIST panels
    for directory in (csv_logger.log_dir, tensorboard.log_dir):
        with open(Path(directory) / "boundary_history.csv", newline="") as file:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(file)]
        _assert_rows_equal(rows, [{k: float(v) for k, v in row.items()} for row in monitor.history])

    tensorboard.experiment.flush()
    events = EventAccumulator(tensorboard.log_dir, size_guidance={IMAGES: 0, SCALARS: 0}).Reload()
    assert len(events.Scalars("boundary/cos_ig_big")) == 2
    # One step axis: each epoch's figure sits at the step of that epoch's scalars, as does its history row.
    steps = [scalar.step for scalar in events.Scalars("boundary/cos_ig_big")]
    assert [image.step for image in events.Images("boundary/attributions")] == steps
    assert [row["step"] for row in monitor.history] == steps


# ------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_probes": 0}, ValueError, "num_probes"),
        ({"num_probes": 2.5}, TypeError, "`num_probes` must be a positive integer: pass an int"),
        ({"every_n_epochs": 0}, ValueError, "every_n_epochs"),
        ({"preset": "slow"}, ValueError, "preset"),
        ({"num_images": 0}, ValueError, "num_images"),
        ({"dataloader_idx": -1}, ValueError, "dataloader_idx"),
        ({"batch_keys": ("image",)}, ValueError, "batch_keys"),
        ({"top_k": 0.0}, ValueError, "top_k"),
        ({"batch_transform": "not callable"}, TypeError, "batch_transform"),
        ({"epsilons": [2.0, 1.0]}, ValueError, "epsilons"),
        ({"norm": "l1"}, ValueError, "norm"),
        ({"steps": 0}, ValueError, "steps"),
        ({"bisection_steps": -1}, ValueError, "bisection_steps"),
        ({"ig_steps": 1}, ValueError, "ig_steps"),
        ({"bounds": (1.0, 0.0)}, ValueError, "bounds"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        BoundaryMonitor(**kwargs)


class _DictBlocks(Dataset):
    """BlockMNIST items as dicts ``{"pixels", "target", "evidence"}``."""

    def __init__(self, tensors: tuple[Tensor, ...]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return dict(zip(("pixels", "target", "evidence"), (t[index] for t in self.tensors)))


class _DictModule(SmallCNNClassifier):
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return super().training_step((batch["pixels"], batch["target"]), batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return super().validation_step((batch["pixels"], batch["target"]), batch_idx)


def _dict_loaders() -> tuple[DataLoader, DataLoader]:
    data = _data()
    data.setup("fit")
    return tuple(DataLoader(_DictBlocks(split.tensors), batch_size=4) for split in (data.train_set, data.val_set))


def _dict_model() -> _DictModule:
    return _DictModule(in_channels=1, num_classes=2, width=4, depth=2, lr=3e-2)


def _from_dict(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    return batch["pixels"], batch["target"], batch["evidence"]


def test_dict_batches_by_keys_or_by_transform_give_the_same_measurements(tmp_path: Path) -> None:
    histories, probes = [], []
    by_keys = {"batch_keys": ("pixels", "target"), "mask_key": "evidence"}
    for options in (by_keys, {"mask_key": None, "batch_transform": _from_dict}):
        monitor = _monitor(**options)
        seed_everything(5)
        quiet_trainer(tmp_path, [monitor]).fit(_dict_model(), *_dict_loaders())
        histories.append(monitor.history)
        probes.append(monitor.probes)
    assert [r["epoch"] for r in histories[0]] == [0, 1]
    assert {k for k in histories[0][-1] if k not in ("epoch", "step")} == SCALARS_LOGGED
    _assert_rows_equal(histories[1], histories[0])
    val = _dict_loaders()[1].dataset.tensors
    assert all(torch.equal(a, b[:NUM_PROBES]) for a, b in zip(probes[0], val))
    assert all(torch.equal(a, b) for a, b in zip(probes[1], probes[0]))


def test_batches_without_masks_log_geometry_only(tmp_path: Path) -> None:
    monitor = _monitor(mask_key=None, batch_transform=lambda batch: (batch["pixels"], batch["target"]))
    trainer = quiet_trainer(tmp_path, [monitor], max_epochs=1)
    trainer.fit(_dict_model(), *_dict_loaders())
    logged = {k.removeprefix("boundary/") for k in trainer.callback_metrics if k.startswith("boundary/")}
    assert logged == {*GEOMETRY, "distance_stderr"}
    assert monitor.probes[2] is None


class _FailureGuard(Callback):
    """Counts, after the monitor, the validation batches started and finished outside the sanity check."""

    def __init__(self) -> None:
        self.started = self.finished = 0

    def on_validation_batch_start(self, trainer: Trainer, *args: Any) -> None:
        self.started += not trainer.sanity_checking

    def on_validation_batch_end(self, trainer: Trainer, *args: Any) -> None:
        self.finished += not trainer.sanity_checking


def _tuple_loaders() -> tuple[DataLoader, DataLoader]:
    data = _data()
    data.setup("fit")
    return data.train_dataloader(), data.val_dataloader()


@pytest.mark.parametrize(
    ("kwargs", "loaders", "match"),
    [
        ({"mask_key": 3}, _tuple_loaders, "mask_key=3"),
        ({"mask_key": "mask"}, _tuple_loaders, "mask_key='mask'"),
        ({"mask_key": 1}, _tuple_loaders, "mask_key=1"),  # the labels, not masks
        ({"mask_key": "missing", "batch_keys": ("pixels", "target")}, _dict_loaders, "mask_key='missing'"),
        ({"mask_key": None}, _dict_loaders, "batch_keys"),
        ({"batch_transform": lambda batch: batch[0]}, _tuple_loaders, "batch_transform"),
        ({"batch_transform": lambda batch: (batch[0], batch[1], batch[1])}, _tuple_loaders, "batch_transform"),
        ({"batch_transform": lambda batch: (batch[0].tolist(), batch[1])}, _tuple_loaders, "batch_transform"),
    ],
)
def test_unreadable_batches_fail_at_the_first_validation_batch_naming_the_option(
    tmp_path: Path, kwargs: dict, loaders: Callable[[], tuple[DataLoader, DataLoader]], match: str
) -> None:
    guard = _FailureGuard()
    model = _dict_model() if loaders is _dict_loaders else _model()
    with pytest.raises(TypeError, match=match):
        quiet_trainer(tmp_path, [_monitor(**kwargs), guard], max_epochs=1, limit_train_batches=1).fit(model, *loaders())
    assert (guard.started, guard.finished) == (1, 0)
