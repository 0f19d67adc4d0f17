"""The memorisation study's --quick path runs end to end (runs, report, figures) in well under a minute."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_memorization_example_quick_mode(tmp_path: Path) -> None:
    out_dir, figures = tmp_path / "out", tmp_path / "figures"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the tiny CNN runs fastest on one thread of a busy CPU
    command = [sys.executable, str(ROOT / "examples" / "memorization.py"), "--quick", "--out-dir", str(out_dir),
               "--figures-dir", str(figures)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rate 0.4 seed 1: done" in done.stdout and "retrained without the top 240 by spectral" in done.stdout
    assert sorted(p.name for p in figures.glob("*.png")) == [
        "memorization_auroc.png", "memorization_cutoffs.png", "memorization_suspects.png",
    ]
    summary = json.loads((out_dir / "summary.json").read_text())
    by_rate = summary["by_rate"]["0.4"]
    assert by_rate["runs"] == 2 and [s["epoch"] for s in by_rate["snapshots"]] == [2, 4]
    for snapshot in by_rate["snapshots"]:
        for entry in snapshot["scores"].values():
            low, high = entry["ci"]
            assert 0.0 <= low <= entry["auroc"] <= high <= 1.0 and len(entry["per_run"]) == 2
    last = by_rate["snapshots"][-1]["scores"]
    assert {"low-pass k=1", "blur k=7", "spectral, permute fill", "spectral, M = 6"} <= set(last)
    assert set(by_rate["retraining"]) >= {"none", "spectral", "loss", "aum", "spectral - loss"}
    assert 0 < by_rate["cost"]["share_every_5_epochs"]
    fit_cost = summary["fit_cost"]
    assert fit_cost["epochs"] == 5 and len(fit_cost["seconds"]["with"]) == 1 and fit_cost["overhead"] > -1
    report = (out_dir / "report.md").read_text()
    assert "## Cost of `MemorizationAudit()` in a Lightning fit" in report
    assert "## Noise rate 0.4 (2 runs)" in report and "### Drop the top suspects and retrain (1 seeds)" in report
    assert not re.search(r"\bnan\b", report)
