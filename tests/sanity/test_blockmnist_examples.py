"""The boundary-geometry and BlockMNIST/DiffROAR examples run in ``--quick`` mode (synthetic digits, tiny models),
print the tables their docs show and write their figures."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--figures-dir", str(tmp_path / "figures"), "--out-dir",
         str(tmp_path / "logs")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _assert_figure(path: Path) -> None:
    with Image.open(path) as image:
        assert image.width >= 300 and image.height >= 300
        assert np.unique(np.asarray(image.convert("L"))).size > 20  # something was drawn


def test_boundary_geometry_example_quick(tmp_path: Path) -> None:
    out = _run("boundary_geometry.py", tmp_path)
    for row in ("attack success rate", "distance to boundary", "cos(gradient, x - x')", "cos(IG, BIG)", "BIG: mass on the digit"):
        assert row in out
    for name in ("boundary_geometry.png", "boundary_attributions_standard.png", "boundary_attributions_robust.png"):
        _assert_figure(tmp_path / "figures" / name)
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} >= {"standard", "robust"}  # one TensorBoard run per model


def test_blockmnist_example_quick(tmp_path: Path) -> None:
    out = _run("blockmnist.py", tmp_path)
    for row in ("gradient, standard model", "gradient, robust model", "(Top)", "BIG, standard model", "DiffROAR(k)", "proxy (no retraining)", "random"):
        assert row in out
    for name in ("blockmnist_gradients.png", "blockmnist_diffroar_background.png"):
        _assert_figure(tmp_path / "figures" / name)
    # The announced number of retrainings is the number counted ("... N retrainings" then "[i/N]").
    announced = {int(n) for n in re.findall(r"DiffROAR of .*: (\d+) retrainings", out)}
    counted = {int(n) for n in re.findall(r"DiffROAR \[\d+/(\d+)\]", out)}
    assert len(announced) == 1 and announced == counted


def test_boundary_config_runs_with_lightning_cli(tmp_path: Path) -> None:
    """configs/boundary_blockmnist.yaml as written (shortened by overrides): the monitor logs to TensorBoard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    done = subprocess.run(
        [
            sys.executable, "-m", "iaside_lightning.cli", "fit", "--config",
            str(EXAMPLES.parent / "configs" / "boundary_blockmnist.yaml"), "--trainer.max_epochs=1",
            "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}", "--trainer.callbacks.init_args.num_probes=4",
            "--data.source=synthetic", "--data.num_per_class=40", "--data.num_val=16",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (event_dir,) = {p.parent for p in (tmp_path / "logs").rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(event_dir))
    events.Reload()
    assert {"boundary/distance", "boundary/attack_success_rate", "boundary/localization/gradient/mass_inside"} <= set(
        events.Tags()["scalars"]
    )
    assert "boundary/attributions" in events.Tags()["images"]
