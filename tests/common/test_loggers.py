"""Figures and history tables through real loggers, read back from what they wrote (offline, no network)."""

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import IMAGES, SCALARS, EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning.loggers import log_figure, log_history
from iaside_lightning.plotting import plot_frequency_response, plot_srs_curve

NUM_BANDS = 8


@pytest.fixture(scope="module")
def wandb_logger(tmp_path_factory: pytest.TempPathFactory):
    """One offline W&B run for the whole module (starting one takes seconds)."""
    root = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}.items():
            patch.setenv(variable, value)
        for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            patch.setenv(variable, str(root / variable.lower()))
        logger = WandbLogger(offline=True, save_dir=str(root))
        _ = logger.experiment
        yield logger
        logger.experiment.finish()


@pytest.fixture
def mlflow_logger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MLFlowLogger:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return MLFlowLogger(tracking_uri=f"file:{tmp_path / 'mlruns'}")


def _trainer(root: Path, loggers: list[Logger], **kwargs) -> Trainer:
    return Trainer(
        logger=loggers or False,
        default_root_dir=root,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **kwargs,
    )


def _history(num_epochs: int) -> list[dict[str, float]]:
    """History rows shaped like the callback's, with distinct non-trivial values (NaN where no error was seen)."""
    rows = []
    for epoch in range(num_epochs):
        row = {"epoch": epoch, "srs": 0.1 + epoch / 7, "srs_signed": -0.3 + epoch / 9, "v_empty": -2.302585093}
        row.update({f"phi_band{k}": (k + 1) * 0.731 / (epoch + 2) - 0.05 for k in range(NUM_BANDS)})
        row["phi_stderr_band0"] = math.nan if epoch == 0 else 0.01
        rows.append(row)
    return rows


def _figure(seed: int) -> Figure:
    phi = torch.randn(NUM_BANDS, generator=torch.Generator().manual_seed(seed))
    return plot_frequency_response(phi, torch.full((NUM_BANDS,), 0.05), label=f"seed {seed}")[0]


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _rendered(figure: Figure) -> np.ndarray:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return _pixels(buffer.getvalue())


def _assert_csv_equals(text: str, rows: list[dict[str, float]]) -> None:
    read = list(csv.DictReader(io.StringIO(text)))
    assert list(read[0]) == list(rows[0]) and len(read) == len(rows)
    assert sum(column.startswith("phi_band") for column in read[0]) == NUM_BANDS
    for got, expected in zip(read, rows):
        np.testing.assert_array_equal([float(got[key]) for key in expected], list(expected.values()))


def test_tensorboard_gets_the_figures_pixels_at_the_global_step_and_the_history_csv(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path)
    trainer = _trainer(tmp_path, [logger])
    figures = [_figure(0), _figure(1)]
    for epoch, figure in enumerate(figures):
        log_figure(trainer, "iaside/frequency_response", figure, step=epoch)
    rows = _history(3)
    log_history(trainer, "iaside/history", rows)
    logger.experiment.flush()

    events = EventAccumulator(logger.log_dir, size_guidance={IMAGES: 0, SCALARS: 0}).Reload()
    images = events.Images("iaside/frequency_response")
    assert [image.step for image in images] == [trainer.global_step] * 2  # no fit: the step does not advance
    for image, figure in zip(images, figures):
        assert (image.width, image.height) == (600, 400)
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        np.testing.assert_array_equal(_pixels(image.encoded_image_string), np.asarray(canvas.buffer_rgba())[..., :3])
    _assert_csv_equals((Path(logger.log_dir) / "iaside" / "history.csv").read_text(), rows)


def test_csv_logger_gets_png_files_and_an_overwritten_history_with_one_column_per_band(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path)
    trainer = _trainer(tmp_path, [logger])
    figure = _figure(2)
    log_figure(trainer, "iaside/frequency response", figure, step=7)
    log_history(trainer, "iaside_history", _history(5))
    rows = _history(2)
    log_history(trainer, "iaside_history", rows)

    png = Path(logger.log_dir) / "figures" / "iaside" / "frequency_response" / "epoch_0007.png"
    np.testing.assert_array_equal(_pixels(png.read_bytes()), _rendered(figure))
    assert imread(png).shape[:2] == (400, 600)
    _assert_csv_equals((Path(logger.log_dir) / "iaside_history.csv").read_text(), rows)


class _PlainLogger(Logger):
    """A logger type :mod:`iaside_lightning.loggers` does not know, with an optional ``log_dir``."""

    def __init__(self, log_dir: "str | None" = None) -> None:
        super().__init__()
        self._log_dir = log_dir

    name = "plain"
    version = 0

    @property
    def log_dir(self) -> "str | None":
        return self._log_dir

    def log_metrics(self, metrics, step=None) -> None:
        pass

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


def test_unknown_loggers_write_files_to_their_log_dir_or_the_root_once_per_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv_logger = CSVLogger(tmp_path / "csv")
    trainer = _trainer(tmp_path / "root", [csv_logger, _PlainLogger(csv_logger.log_dir), _PlainLogger()])
    figure = Figure()
    saved = []
    monkeypatch.setattr(figure, "savefig", lambda path, **kwargs: saved.append(Path(path)))
    log_figure(trainer, "srs", figure, step=1)
    log_history(trainer, "history", _history(1))

    expected = [Path(csv_logger.log_dir) / "figures/srs/epoch_0001.png", tmp_path / "root/figures/srs/epoch_0001.png"]
    assert sorted(saved) == sorted(expected)
    assert (tmp_path / "root" / "history.csv").is_file() and (Path(csv_logger.log_dir) / "history.csv").is_file()


def test_wandb_offline_run_gets_images_and_a_table_even_after_its_step_moved_ahead(wandb_logger: WandbLogger) -> None:
    run = wandb_logger.experiment
    trainer = _trainer(Path(run.dir), [wandb_logger])
    run.log({"elsewhere": 1.0}, step=run.step + 50)  # W&B drops any later log call with a smaller explicit step
    figure = _figure(3)
    log_figure(trainer, "iaside/wandb_response", figure, step=0)
    log_figure(trainer, "iaside/wandb_response", _figure(4), step=1)
    rows = _history(2)
    log_history(trainer, "iaside/wandb_history", rows)

    assert {"iaside/wandb_response", "iaside/wandb_history"} <= set(run.summary.keys())
    media = Path(run.dir) / "media"
    pngs = sorted((media / "images" / "iaside").glob("wandb_response_*.png"))
    assert len(pngs) == 2
    assert any(np.array_equal(_pixels(png.read_bytes()), _rendered(figure)) for png in pngs)
    (table_file,) = (media / "table" / "iaside").glob("wandb_history_*.table.json")
    table = json.loads(table_file.read_text())  # W&B writes NaN as the bare token NaN, which Python's json accepts
    assert table["columns"] == list(rows[0])
    np.testing.assert_array_equal(np.array(table["data"], dtype=float), [list(row.values()) for row in rows])


def test_mlflow_run_gets_png_and_csv_artifacts(tmp_path: Path, mlflow_logger: MLFlowLogger) -> None:
    trainer = _trainer(tmp_path, [mlflow_logger])
    figure = _figure(5)
    log_figure(trainer, "iaside/frequency_response", figure, step=2)
    rows = _history(3)
    log_history(trainer, "iaside/history", rows)

    client, run_id = mlflow_logger.experiment, mlflow_logger.run_id
    listed = [item.path for item in client.list_artifacts(run_id, "figures/iaside/frequency_response")]
    assert listed == ["figures/iaside/frequency_response/epoch_0002.png"]
    png = Path(client.download_artifacts(run_id, listed[0], str(tmp_path)))
    np.testing.assert_array_equal(_pixels(png.read_bytes()), _rendered(figure))
    history = Path(client.download_artifacts(run_id, "iaside/history.csv", str(tmp_path)))
    _assert_csv_equals(history.read_text(), rows)


class _TinyModule(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1])

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", torch.nn.functional.cross_entropy(self.layer(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(0)
        data = TensorDataset(torch.randn(8, 4, generator=generator), torch.randint(0, 2, (8,), generator=generator))
        return DataLoader(data, batch_size=4)

    def val_dataloader(self) -> DataLoader:
        return self.train_dataloader()


class _FigureCallback(Callback):
    """What the I-ASIDE callback does at each validation epoch end: a figure and the whole history so far."""

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        rows = _history(trainer.current_epoch + 1)
        figure, _ = plot_srs_curve([row["epoch"] for row in rows], [row["srs"] for row in rows])
        log_figure(trainer, "iaside/fit_srs", figure, step=trainer.current_epoch)
        log_history(trainer, "iaside/fit_history", rows)


def test_fit_with_all_four_loggers_logs_each_epoch_beside_lightning_scalars(
    tmp_path: Path, wandb_logger: WandbLogger, mlflow_logger: MLFlowLogger
) -> None:
    tensorboard, csv_logger = TensorBoardLogger(tmp_path), CSVLogger(tmp_path)
    trainer = _trainer(
        tmp_path,
        [tensorboard, csv_logger, wandb_logger, mlflow_logger],
        callbacks=[_FigureCallback()],
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=1,
        log_every_n_steps=1,
    )
    trainer.fit(_TinyModule())

    events = EventAccumulator(tensorboard.log_dir, size_guidance={IMAGES: 0, SCALARS: 0}).Reload()
    # One step axis: each epoch's figure sits at the step of that epoch's validation scalars.
    assert [image.step for image in events.Images("iaside/fit_srs")] == [s.step for s in events.Scalars("val_loss")]
    assert len(events.Scalars("val_loss")) == 2
    figures = sorted((Path(csv_logger.log_dir) / "figures" / "iaside" / "fit_srs").iterdir())
    assert [path.name for path in figures] == ["epoch_0000.png", "epoch_0001.png"]
    for directory in (tensorboard.log_dir, csv_logger.log_dir):  # two versions: the loggers pick them in turn
        _assert_csv_equals((Path(directory) / "iaside" / "fit_history.csv").read_text(), _history(2))
    run = wandb_logger.experiment
    assert {"iaside/fit_srs", "iaside/fit_history", "val_loss"} <= set(run.summary.keys())
    assert len(list((Path(run.dir) / "media" / "images" / "iaside").glob("fit_srs_*.png"))) == 2
    client, run_id = mlflow_logger.experiment, mlflow_logger.run_id
    artifacts = [item.path for item in client.list_artifacts(run_id, "figures/iaside/fit_srs")]
    assert artifacts == ["figures/iaside/fit_srs/epoch_0000.png", "figures/iaside/fit_srs/epoch_0001.png"]
    assert len(client.get_metric_history(run_id, "val_loss")) == 2


def test_nothing_is_written_off_rank_zero_or_without_loggers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _trainer_off = _trainer(tmp_path / "off", [])
    log_figure(_trainer_off, "srs", Figure(), step=0)
    log_history(_trainer_off, "history", _history(1))
    monkeypatch.setattr(rank_zero_only, "rank", 1)
    csv_logger = CSVLogger(tmp_path / "csv")
    trainer = _trainer(tmp_path / "rank1", [csv_logger])
    log_figure(trainer, "srs", Figure(), step=0)
    log_history(trainer, "history", _history(1))
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda t: log_figure(t, "a//b", Figure(), 0), ValueError, "`tag`"),
        (lambda t: log_figure(t, "../up", Figure(), 0), ValueError, "`tag`"),
        (lambda t: log_figure(t, "ok", Figure(), -1), ValueError, "`step`"),
        (lambda t: log_history(t, "history", []), ValueError, "`rows`"),
        (lambda t: log_history(t, "history", {"epoch": 0}), ValueError, "`rows`"),
        (lambda t: log_history(t, "history", [{"epoch": 0}, 3]), TypeError, r"`rows\[1\]`"),
        (lambda t: log_history(t, "history", [{"srs": "high"}]), TypeError, "'srs'"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_is_written(tmp_path: Path, call, error, match) -> None:
    trainer = _trainer(tmp_path, [CSVLogger(tmp_path)])
    with pytest.raises(error, match=match):
        call(trainer)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]
