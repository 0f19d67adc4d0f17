"""The LightningCLI config and the quick-start example run as written and log what the README promises."""

import subprocess
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import IMAGES, SCALARS, EventAccumulator

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _events(logdir: Path) -> EventAccumulator:
    (event_dir,) = {p.parent for p in logdir.rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(event_dir), size_guidance={IMAGES: 0, SCALARS: 0})
    events.Reload()
    return events


def test_quickstart_config_runs_with_lightning_cli(tmp_path: Path) -> None:
    config = ROOT / "configs" / "quickstart.yaml"
    _run(
        [
            "-m", "iaside_lightning.cli", "fit", "--config", str(config),
            "--trainer.max_epochs=2", "--data.num_train=128", "--data.num_val=32",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
            "--trainer.callbacks.init_args.max_samples=8", "--trainer.enable_progress_bar=false",
        ],
        cwd=tmp_path,
    )
    events = _events(tmp_path / "logs")
    assert len(events.Scalars("spectral/srs")) == 2  # one per epoch
    assert {f"spectral/phi/band_{k}" for k in range(8)} <= set(events.Tags()["scalars"])
    images = set(events.Tags()["images"])
    assert {"spectral/frequency_response", "spectral/band_epoch_heatmap", "spectral/scores"} <= images
    assert len(events.Images("spectral/band_epoch_heatmap")) == 2


def test_quickstart_example_quick_mode(tmp_path: Path) -> None:
    out = _run(
        [str(ROOT / "examples" / "quickstart.py"), "--quick", "--out-dir", str(tmp_path / "tb"), "--figures-dir",
         str(tmp_path / "figures")],
        cwd=tmp_path,
    )
    assert "Shapley values per band" in out and "tensorboard --logdir" in out
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == [
        "quickstart_band_epoch_heatmap.png", "quickstart_frequency_response.png", "quickstart_scores.png"
    ]
    assert _events(tmp_path / "tb").Scalars("spectral/srs")


def test_srs_vs_balance_example_draws_the_disagreement(tmp_path: Path) -> None:
    out = _run([str(ROOT / "examples" / "srs_vs_balance.py"), "--figures-dir", str(tmp_path)], cwd=tmp_path)
    helpful, harmful = (line for line in out.splitlines() if "signed SRS" in line)
    signed = [float(line.split("signed SRS ")[1].split(",")[0]) for line in (helpful, harmful)]
    balance = [float(line.split("balance ")[1]) for line in (helpful, harmful)]
    assert signed[1] > signed[0] and balance[1] < balance[0]
    assert (tmp_path / "srs_vs_balance.png").stat().st_size > 10_000
