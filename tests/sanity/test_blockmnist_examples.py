"""The boundary-geometry and BlockMNIST examples run in ``--quick`` mode (synthetic digits, tiny models, two seeds),
print the tables their docs show and write their figures; both score the same cached models."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--figures-dir", str(tmp_path / "figures"), "--out-dir",
         str(tmp_path / "logs")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)},  # the weight cache lives in the test's folder
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _row(out: str, label: str) -> list[float]:
    """The numbers of the first printed line that starts with ``label`` (after it)."""
    line = next(line for line in out.splitlines() if line.startswith(label))
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+", line[len(label):])]


def _assert_figure(path: Path) -> None:
    with Image.open(path) as image:
        assert image.width >= 300 and image.height >= 300
        assert np.unique(np.asarray(image.convert("L"))).size > 20  # something was drawn


def test_boundary_geometry_example_quick(tmp_path: Path) -> None:
    out = _run("boundary_geometry.py", tmp_path)
    assert "Mean over 2 training seeds" in out and out.count("] standard seed") == out.count("] robust seed") == 2
    for row in ("attack success rate", "distance to boundary", "cos(gradient, x - x')", "cos(IG, BIG)", "BIG: mass on digit block"):
        assert row in out
    # Per seed: two standard and two robust values; mean ± interval for each kind and the paired difference.
    standard_0, standard_1, robust_0, robust_1 = _row(out.split("Per seed")[1], "distance to boundary (L2, std. units)")
    mean_standard, _, mean_robust, _, difference, _ = _row(out, "distance to boundary (L2, std. units)")
    assert mean_standard == pytest.approx((standard_0 + standard_1) / 2, abs=2e-3)
    assert difference == pytest.approx((robust_0 + robust_1 - standard_0 - standard_1) / 2, abs=2e-3)
    assert standard_0 != standard_1  # the training seed varies the model
    # The excess over the shuffled baseline is the mass minus the region's pixel share.
    block, ink, block_background, pattern, null_background = _row(out, "Shuffled baseline")
    assert [block, pattern, null_background] == pytest.approx([0.5, 156 / 1568, 1 - 0.5 - 156 / 1568], abs=1e-4)
    assert 0 < ink < 0.5 and ink + block_background == pytest.approx(0.5, abs=2e-4)
    mass, excess = _row(out, "gradient: mass on null pattern ink")[0], _row(out, "gradient: excess on null pattern ink")[0]
    assert excess == pytest.approx(mass - pattern, abs=2e-3)
    for name in ("boundary_geometry.png", "boundary_localization.png", "boundary_attributions_standard.png",
                 "boundary_attributions_robust.png"):
        _assert_figure(tmp_path / "figures" / name)
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} >= {"standard", "robust"}  # one TensorBoard run per model (first seed)


def test_blockmnist_example_quick(tmp_path: Path) -> None:
    out = _run("blockmnist.py", tmp_path)
    for row in ("gradient, standard model", "gradient, robust model", "(Top)", "robust model - standard model"):
        assert row in out
    assert "DiffROAR" not in out  # moved to examples/diffroar_mnist.py
    # A pixel-shuffled gradient scores its baseline: no excess on any region.
    block, *excesses, _ = _row(out, "shuffled gradient, standard model")[::2]
    assert len(excesses) == 4 and max(map(abs, excesses)) < 0.03 and abs(block - 0.5) < 0.03
    for name in ("blockmnist_gradients.png", "blockmnist_leakage.png"):
        _assert_figure(tmp_path / "figures" / name)
    assert out.count("val/acc") == 6  # 2 seeds x (standard, robust, Top), each model trained once
    again = _run("blockmnist.py", tmp_path)  # the cache: the same models, the same numbers
    assert again.count("cached weights") == 6 and "val/acc" not in again
    assert again.split("Shuffled baseline")[1].split("Figures in")[0] == out.split("Shuffled baseline")[1].split("Figures in")[0]


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
