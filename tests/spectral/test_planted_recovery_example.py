"""The planted-band recovery example's --quick path runs and writes sane outputs."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_planted_recovery_example_quick_mode(tmp_path: Path) -> None:
    out_dir, figures_dir = tmp_path / "out", tmp_path / "figures"
    # One thread: the small CNN runs several times faster than with two threads fighting over a busy CPU.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["--quick", "--out-dir", str(out_dir), "--figures-dir", str(figures_dir)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "planted_recovery.py"), *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "square band 5 seed 0" in done.stdout
    assert (figures_dir / "planted_recovery.png").stat().st_size > 0

    results = json.loads((out_dir / "results.json").read_text())
    seeds = results["config"]["seeds"]
    assert seeds == 1 and results["config"]["bands"] == [1, 5] and results["config"]["shapes"] == ["square"]
    cells = results["cells"]["square"]
    assert sorted(cells) == ["noise", "permute", "zero"]
    for by_band in cells.values():
        assert sorted(by_band) == ["1", "5"]
        for cell in by_band.values():
            assert isinstance(cell["recovered"], int) and 0 <= cell["recovered"] <= seeds == cell["seeds"]
            assert math.isfinite(cell["ratio_mean"]) and cell["ratio_ci95"] is None  # no interval from one seed
            assert 0.0 <= cell["band0_share"] <= 1.0 and 0.0 <= cell["accuracy"] <= 1.0
            assert len(cell["mean_phi"]) == 8 and all(map(math.isfinite, cell["mean_phi"]))
    for overall in results["overall"]["square"].values():
        assert overall["total"] == 2 and 0 <= overall["recovered"] <= 2
    assert len(results["runs"]) == 2

    table = (out_dir / "results.md").read_text()
    assert table.count("\n| 1 |") == 1 and table.count("\n| 5 |") == 1
    assert not re.search(r"\|[ \t]*(\+|±|-)?[ \t]*\||\bnan\b", table)  # no empty, "+" or "nan" cells
