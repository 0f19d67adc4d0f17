"""The label-noise example's --quick path and its LightningCLI config run as written."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path) -> str:
    # One thread: the small CNN runs several times faster than with two threads fighting over a busy CPU.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_label_noise_example_quick_mode(tmp_path: Path) -> None:
    out = _run(
        [
            str(ROOT / "examples" / "label_noise.py"),
            "--quick",
            "--out-dir",
            str(tmp_path / "out"),
            "--figures-dir",
            str(tmp_path / "figures"),
        ],
        cwd=tmp_path,
    )
    assert "### Label noise 0.6" in out and "| epoch | train_acc_noisy |" in out
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == [
        "label_noise_frequency_response.png",
        "label_noise_heatmaps.png",
        "label_noise_srs.png",
    ]
    results = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert [r["rate"] for r in results] == [0.0, 0.6]
    for result in results:
        assert [row["epoch"] for row in result["rows"]] == [0, 1]
        for row in result["rows"]:
            assert all(0.0 <= row[k] <= 1.0 for k in ("train_acc_noisy", "train_acc_clean", "val_acc"))
            assert 0.0 <= row["srs"] <= 1.0 and abs(row["srs_signed"]) == row["srs"]
        assert len(result["spectral"]) == 2 and len(result["spectral"][-1]["phi"]) == 8
    clean, noisy = results
    # Without noise the noisy and true training labels coincide and nothing is flipped.
    assert all(
        row["train_acc_noisy"] == row["train_acc_clean"] and math.isnan(row["memorised"]) for row in clean["rows"]
    )
    assert all(0.0 <= row["memorised"] <= 1.0 for row in noisy["rows"])
    # One TensorBoard run per rate, with the monitor's scores and the example's training-set accuracies.
    for name, result in zip(("rate_0", "rate_0.6"), results):
        (event_dir,) = {p.parent for p in (tmp_path / "out" / name).rglob("events.out.tfevents.*")}
        events = EventAccumulator(str(event_dir), size_guidance={SCALARS: 0})
        events.Reload()
        assert {"spectral/srs", "spectral/srs_signed", "train/train_acc_noisy", "val/acc"} <= set(
            events.Tags()["scalars"]
        )
        # The table's validation accuracy is that epoch's logged val/acc, and its SRS the monitor's.
        assert [e.value for e in events.Scalars("val/acc")] == pytest.approx([row["val_acc"] for row in result["rows"]])
        assert [e.value for e in events.Scalars("spectral/srs")] == pytest.approx(
            [row["srs"] for row in result["rows"]]
        )


def test_label_noise_config_runs_with_lightning_cli(tmp_path: Path) -> None:
    _run(
        [
            "-m",
            "iaside_lightning.cli",
            "fit",
            "--config",
            str(ROOT / "configs" / "label_noise.yaml"),
            "--trainer.max_epochs=2",
            "--trainer.limit_train_batches=3",
            "--trainer.limit_val_batches=2",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
            "--trainer.enable_progress_bar=false",
            "--trainer.callbacks.init_args.max_samples=8",
            "--trainer.callbacks.init_args.every_n_epochs=1",
        ],
        cwd=tmp_path,
    )
    (event_dir,) = {p.parent for p in (tmp_path / "logs").rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(event_dir), size_guidance={SCALARS: 0})
    events.Reload()
    assert len(events.Scalars("spectral/srs")) == 2
    assert {f"spectral/phi/band_{k}" for k in range(8)} <= set(events.Tags()["scalars"])
    saved = next((tmp_path / "logs").rglob("config.yaml")).read_text()  # LightningCLI's copy of the parsed config
    assert "label_noise: 0.4" in saved and "MNIST5kDataModule" in saved
