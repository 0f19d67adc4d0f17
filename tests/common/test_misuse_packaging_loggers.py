"""Packaging metadata, the console script, Captum's private module, ``fast_dev_run`` writing nothing, and the heat
map's colour-bar label staying inside logged figures."""

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.loggers.logger import DummyLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from iaside_lightning import SpectralRobustnessMonitor
from iaside_lightning.datasets import PlantedBandDataModule
from iaside_lightning.functional.boundary.attributions import integrated_gradients
from iaside_lightning.loggers import log_figure, log_history
from iaside_lightning.models import SmallCNNClassifier
from iaside_lightning.plotting import plot_band_epoch_heatmap

ROOT = Path(__file__).resolve().parents[2]


def _requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0]
        for separator in "<>=!~[ ":
            name = name.split(separator)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def test_pyproject_declares_every_third_party_package_imported_at_module_level() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "typing-extensions" in _requirement_names(project["dependencies"])
    installed = importlib.metadata.requires("iaside-lightning") or []
    assert "typing-extensions" in _requirement_names([r for r in installed if "extra ==" not in r])


def test_console_script_resolves_to_the_cli_main() -> None:
    from iaside_lightning import cli

    assert tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"] == {
        "iaside-lightning": "iaside_lightning.cli:main"
    }
    (entry_point,) = importlib.metadata.entry_points(group="console_scripts", name="iaside-lightning")
    assert entry_point.load() is cli.main and callable(cli.main)


def test_console_script_prints_the_cli_help() -> None:
    script = Path(sys.executable).parent / "iaside-lightning"
    if not script.is_file():
        pytest.skip("the package is not installed with `pip install -e .` in this interpreter's environment")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "fit" in result.stdout and "validate" in result.stdout


@pytest.mark.parametrize("method", ["riemann_trapezoid", "riemann_left", "riemann_middle", "gausslegendre"])
def test_integrated_gradients_works_without_captums_private_module(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).double()
    x, y = torch.rand(3, 1, 2, 2, dtype=torch.float64), torch.tensor([0, 1, 1])
    expected, expected_delta = integrated_gradients(linear, x, y, 0.0, steps=7, method=method, return_delta=True)

    monkeypatch.setitem(sys.modules, "captum.attr._utils.approximation_methods", None)  # import raises ImportError
    with pytest.raises(ImportError):
        import captum.attr._utils.approximation_methods  # noqa: F401
    attr, delta = integrated_gradients(linear, x, y, 0.0, steps=7, method=method, return_delta=True)
    torch.testing.assert_close(attr, expected)
    torch.testing.assert_close(delta, expected_delta)
    assert delta.abs().max() < 1e-5  # still exact for a linear model


def _files(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*"))


def test_loggers_module_writes_nothing_for_lightnings_dummy_logger(tmp_path: Path) -> None:
    trainer = Trainer(fast_dev_run=True, default_root_dir=tmp_path, enable_progress_bar=False)
    assert any(isinstance(logger, DummyLogger) for logger in trainer.loggers)
    log_figure(trainer, "iaside/srs", Figure(), step=0)
    log_history(trainer, "spectral_history", [{"epoch": 0, "srs": 0.5}])
    assert _files(tmp_path) == []


@pytest.mark.parametrize("logger", [None, False])
def test_fast_dev_run_with_the_monitor_writes_no_file(
    logger: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    data = PlantedBandDataModule(
        num_train=32, num_val=16, batch_size=8, image_size=16, num_bands=4, planted_bands=2
    )
    model = SmallCNNClassifier(in_channels=1, width=4, depth=2)
    monitor = SpectralRobustnessMonitor(num_bands=4, max_samples=8)
    kwargs = {} if logger is None else {"logger": logger}
    trainer = Trainer(
        fast_dev_run=True, accelerator="cpu", enable_progress_bar=False, enable_model_summary=False,
        callbacks=[monitor], **kwargs,
    )
    trainer.fit(model, datamodule=data)
    assert monitor.history, "the monitor should still have evaluated once"
    assert _files(tmp_path) == []


@pytest.mark.parametrize("unit", ["nats", "bits of log-likelihood"])
def test_heatmap_colour_bar_label_and_ticks_lie_inside_the_default_figure(unit: str) -> None:
    history = np.array([[0.5, -0.125, 0.25, 0.0], [-0.75, 0.125, 0.5, -0.25]])
    fig, ax = plot_band_epoch_heatmap(history, [0, 1], title="bands", unit=unit)
    FigureCanvasAgg(fig)
    fig.canvas.draw()  # the figure as it is logged: no tight bounding box
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    (colorbar_axes,) = [axes for axes in fig.axes if axes is not ax]
    label = colorbar_axes.yaxis.label
    assert unit in label.get_text()
    texts = [label, ax.xaxis.label, ax.yaxis.label, ax.title]
    texts += [text for text in colorbar_axes.get_yticklabels() + ax.get_yticklabels() if text.get_text()]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1, (text.get_text(), box, figure_box)
        assert figure_box.y0 <= box.y0 and box.y1 <= figure_box.y1, (text.get_text(), box, figure_box)
    assert colorbar_axes.bbox.x0 > ax.bbox.x1  # beside the heat map, not over it
