"""The label-noise example's --quick path and its LightningCLI config run as written."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path) -> str:
    # One thread: the small CNN runs several times faster than with two threads fighting over a busy CPU.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_label_noise_example_quick_mode(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out = _run(
        [
            str(ROOT / "examples" / "label_noise.py"),
            "--quick",
            "--out-dir",
            str(out_dir),
            "--figures-dir",
            str(tmp_path / "figures"),
        ],
        cwd=tmp_path,
    )
    assert "4 runs scored, 0 missing" in out and "rate 0.6: SRS" in out
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == [
        "label_noise_frequency_response.png",
        "label_noise_heatmaps.png",
        "label_noise_scores.png",
    ]
    names = ("M6_permute_rings", "M6_zero_rings")
    report = (out_dir / "report.md").read_text()
    for rate in ("0", "0.6"):
        for name in names:
            # Each rate and analysis has a scores table and a phi table, one row per snapshot epoch (1, 2, 3).
            block = report.split(f"### Noise rate {rate}, `{name}` (2 seeds)\n")[1].split("###")[0]
            assert block.count("| epoch |") == 2 and all(block.count(f"\n| {e} |") == 2 for e in (1, 2, 3))
    assert not re.search(r"\|\s*(\+|±|-)\s*\||\bnan\b|± \|", report)  # empty cells are empty, not "+" or "nan"
    assert "Ring-balanced vs linear" not in report  # quick mode scores no linear edges

    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["rates"] == ["0", "0.6"] and summary["missing_runs"] == []
    for rate in summary["rates"]:
        for name in names:
            entries = summary["across_seeds"][rate][name]
            assert [e["epoch"] for e in entries] == [1, 2, 3]
            estimates = [e[key] for e in entries for key in ("srs", "srs_signed", "balance")]
            estimates += [band for e in entries for band in e["phi"]]
            assert len(entries[0]["phi"]) == 6
            assert all(math.isfinite(e[k]) for e in estimates for k in ("mean", "ci95", "within_se"))
            change = summary["phases"][name][rate]["change"]
            assert all(math.isfinite(c["mean"]) and 0 <= c["seeds_down"] <= 2 for c in change.values())
    assert all(math.isfinite(summary["noisy_vs_clean"][n]["0.6"]["balance"]["difference"]) for n in names)

    runs = {(run["rate"], run["seed"]): run for run in summary["runs"]}
    assert sorted(runs) == [(0.0, 0), (0.0, 1), (0.6, 0), (0.6, 1)]
    for (rate, seed), run in runs.items():
        saved = torch.load(out_dir / "runs" / f"rate_{rate:g}_seed_{seed}.pt", weights_only=True)
        assert [row["epoch"] for row in run["rows"]] == [1, 2, 3] and sorted(map(int, run["snapshots"])) == [1, 2, 3]
        if rate == 0:  # nothing is flipped without noise
            assert all(row["memorised"] == 0.0 for row in run["rows"])
        for epoch, by_name in saved["values"].items():
            for name, values in by_name.items():
                scored = run["snapshots"][str(epoch)][name]
                # Efficiency per seed: the bands' Shapley values add up to v(all bands) - v(no band).
                gap = (values[:, -1].double() - values[:, 0].double()).mean()
                assert sum(scored["phi"]) == pytest.approx(float(gap), abs=1e-9)
                scores = scored["scores"]
                assert 0.0 <= scores["srs"] <= 1.0 and abs(scores["srs_signed"]) == pytest.approx(scores["srs"])
                assert -1.0 <= scores["balance"] <= 1.0
                assert all(math.isfinite(v) and v > 0 for v in scored["phi_se"] + list(scored["errors"].values()))


def test_examples_t_quantiles() -> None:
    stats = pytest.importorskip("scipy.stats")
    sys.path.insert(0, str(ROOT / "examples"))
    from _student_t import t_quantile

    for df in (1, 2, 4, 7.6, 30, 31, 45, 200):
        assert t_quantile(df) == pytest.approx(stats.t.ppf(0.975, int(df)), abs=1e-3)
    assert math.isnan(t_quantile(0.5))


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
