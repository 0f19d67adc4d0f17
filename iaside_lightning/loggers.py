"""Figures and history tables into whatever loggers a Trainer holds: the only module that knows logger types.

============================  ======================================================  ===============================
logger                        :func:`log_figure`                                      :func:`log_history`
============================  ======================================================  ===============================
``TensorBoardLogger``         ``add_figure(tag, step)``                               ``<log_dir>/<name>.csv``
``WandbLogger``               ``log_image(tag)`` at Lightning's logging step          ``log_table(name)``
``MLFlowLogger``              artifact ``figures/<tag>/epoch_<step>.png``             artifact ``<name>.csv``
``CSVLogger`` and the rest    ``<log_dir>/figures/<tag>/epoch_<step>.png``            ``<log_dir>/<name>.csv``
============================  ======================================================  ===============================

A ``/`` in a tag or name makes sub-folders; other characters outside ``[A-Za-z0-9._-]`` become ``_``. A logger
without a ``log_dir`` writes under ``trainer.default_root_dir``; two loggers sharing a directory write once. A
Trainer without loggers (``logger=False``) gets nothing, and so does Lightning's ``DummyLogger`` (what
``fast_dev_run`` installs): it means "write nothing", not "a file logger without a ``log_dir``". W&B steps must
increase monotonically, so figures and tables go to W&B at the step Lightning logs that epoch's scalars at (the
epoch becomes the image caption).

Both functions act on global rank zero only and never call collectives (``trainer.log_dir`` broadcasts, so it is
not used). They keep no reference to the figure and do not close it: the caller closes or drops it.
"""

import csv
import io
import operator
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Union

from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.logger import DummyLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

if TYPE_CHECKING:
    import lightning.pytorch as pl
    import PIL.Image
    from matplotlib.figure import Figure

__all__ = ["log_figure", "log_history", "logging_step", "tag_path"]

Cell = Union[int, float]


def logging_step(trainer: "pl.Trainer") -> int:
    """The step Lightning logs the current scalars at: during validation inside a training epoch that is one less
    than ``trainer.global_step`` (the optimizer steps taken before the validation), so figures and tables use it to
    share one step axis with the epoch's scalars.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> logging_step(Trainer(logger=False, enable_progress_bar=False))
        0
    """
    # Lightning's logger connector logs at the epoch loop's count of batches that stepped (not public API; fall back
    # to the global step where it is missing).
    return int(getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step))


def log_figure(trainer: "pl.Trainer", tag: str, figure: "Figure", step: int) -> None:
    """Send a figure to every logger of ``trainer`` (see the module table); PNG files for file-based loggers.

    Args:
        trainer: the running trainer; only ``loggers``, ``default_root_dir`` and its step are read.
        tag: figure name, for example ``"iaside/frequency_response"``.
        figure: a matplotlib figure; it is neither closed nor kept.
        step: the epoch the figure describes: part of file names and the W&B caption. The step axis in
            TensorBoard and W&B is :func:`logging_step`, so a figure sits at the step of the scalars logged in the
            same epoch.

    Raises:
        ValueError: if ``tag`` has an empty or ``..`` part, or ``step`` is negative.

    Example:
        >>> import tempfile
        >>> from lightning.pytorch import Trainer
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> from matplotlib.figure import Figure
        >>> with tempfile.TemporaryDirectory() as root:
        ...     trainer = Trainer(logger=CSVLogger(root), default_root_dir=root, enable_progress_bar=False)
        ...     log_figure(trainer, "iaside/frequency_response", Figure(), step=3)
        ...     print([p.relative_to(root).as_posix() for p in Path(root).rglob("*.png")])
        ['lightning_logs/version_0/figures/iaside/frequency_response/epoch_0003.png']
    """
    epoch = operator.index(step)
    if epoch < 0:
        raise ValueError(f"`step` must be the non-negative epoch of the figure, got {step!r}.")
    path = PurePosixPath("figures", tag_path(tag, "tag"), f"epoch_{epoch:04d}.png")
    if getattr(rank_zero_only, "rank", 0) != 0:
        return
    file_loggers = []
    for logger in trainer.loggers:
        if isinstance(logger, DummyLogger):
            continue
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, figure, global_step=logging_step(trainer), close=False)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[_png(figure)], step=logging_step(trainer), caption=[f"epoch {epoch}"])
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_figure(logger.run_id, figure, str(path))
        else:
            file_loggers.append(logger)
    for target in _local_targets(trainer, file_loggers, path):
        figure.savefig(target)


def log_history(trainer: "pl.Trainer", name: str, rows: Sequence[Mapping[str, Cell]]) -> None:
    """Write a per-epoch history table (one row per evaluation, one column per quantity) to every logger.

    Each call replaces the table: pass the whole history every time. Columns are the union of the rows' keys in
    first-seen order; a missing entry is an empty CSV cell (``None`` in W&B).

    Args:
        trainer: the running trainer; only ``loggers``, ``default_root_dir`` and its step are read.
        name: table name, for example ``"iaside/history"`` (``<log_dir>/iaside/history.csv``).
        rows: for example ``[{"epoch": 0, "srs": 0.12, "phi_band0": 0.8, ...}, ...]``.

    Raises:
        ValueError: if ``rows`` is empty or ``name`` has an empty or ``..`` part.
        TypeError: if a row is not a mapping from ``str`` to a number.

    Example:
        >>> import tempfile
        >>> from lightning.pytorch import Trainer
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> with tempfile.TemporaryDirectory() as root:
        ...     trainer = Trainer(logger=CSVLogger(root), default_root_dir=root, enable_progress_bar=False)
        ...     log_history(trainer, "iaside_history", [{"epoch": 0, "srs": 0.25}, {"epoch": 1, "srs": 0.5}])
        ...     print((Path(trainer.logger.log_dir) / "iaside_history.csv").read_text())
        epoch,srs
        0,0.25
        1,0.5
        <BLANKLINE>
    """
    columns, table = _table(rows)
    path = PurePosixPath(f"{tag_path(name, 'name')}.csv")
    if getattr(rank_zero_only, "rank", 0) != 0:
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if cell is None else cell for cell in row] for row in table])
    text = buffer.getvalue()
    file_loggers = []
    for logger in trainer.loggers:
        if isinstance(logger, DummyLogger):
            continue
        if isinstance(logger, WandbLogger):
            logger.log_table(key=name, columns=columns, data=table, step=logging_step(trainer))
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_text(logger.run_id, text, str(path))
        else:
            file_loggers.append(logger)
    for target in _local_targets(trainer, file_loggers, path):
        target.write_text(text, encoding="utf-8")


def _png(figure: "Figure") -> "PIL.Image.Image":
    """The figure rendered as a PNG image (``wandb.Image(figure)`` fails unless ``matplotlib.pyplot`` is imported)."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    buffer.seek(0)
    return Image.open(buffer)


def _local_targets(trainer: "pl.Trainer", loggers: list[Logger], path: PurePosixPath) -> list[Path]:
    """``path`` under each distinct ``log_dir`` of ``loggers`` (``trainer.default_root_dir`` for loggers without
    one), parent folders created."""
    directories = [getattr(logger, "log_dir", None) or trainer.default_root_dir for logger in loggers]
    targets = list(dict.fromkeys(Path(os.path.realpath(directory)) / path for directory in directories))
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    return targets


def tag_path(text: str, argument: str = "tag") -> PurePosixPath:
    """The safe relative path a tag or table name is written to: ``/`` separates folders, odd characters become
    ``_``; empty, ``.`` and ``..`` parts are refused (the callbacks check their prefixes with it at construction).

    Example:
        >>> tag_path("spectral/frequency response").as_posix()
        'spectral/frequency_response'
    """
    parts = [re.sub(r"[^A-Za-z0-9._-]+", "_", part) for part in str(text).split("/")]
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"`{argument}` must be non-empty '/'-separated names without '.' or '..', got {text!r}.")
    return PurePosixPath(*parts)


def _table(rows: Sequence[Mapping[str, Cell]]) -> tuple[list[str], list[list[Union[Cell, None]]]]:
    """Column names (union of keys, first-seen order) and the rows as lists, ``None`` where a key is missing."""
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence) or len(rows) == 0:
        raise ValueError(f"`rows` must be a non-empty list of dicts, one per epoch, got {rows!r}.")
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping) or not all(isinstance(key, str) for key in row):
            raise TypeError(f"`rows[{index}]` must be a dict with str keys, got {row!r}.")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return columns, [[_cell(row, key) for key in columns] for row in rows]


def _cell(row: Mapping[str, Cell], key: str) -> Union[Cell, None]:
    """A row's entry as a Python ``int`` or ``float`` (tensors and NumPy scalars included), ``None`` if missing."""
    if key not in row:
        return None
    value = row[key]
    try:
        return value if isinstance(value, int) else float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"History entry {key!r} must be a number, got {value!r}.") from err
