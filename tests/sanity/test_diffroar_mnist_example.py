"""examples/diffroar_mnist.py runs in ``--quick`` mode (300 digits, one-epoch models, two levels, two runs): it prints
the tables docs/diffroar.md shows, consistent with the raw accuracies it saves, draws its figures, and ``--replot``
reprints the same tables from the saved accuracies."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "diffroar_mnist.py"
RANKINGS = ("gradient, standard", "gradient, robust L-inf", "gradient, robust L2", "random", "BIG, standard")
CELL = re.compile(r"(-?\d+\.\d{3}) ± (\d+\.\d{3})")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    tmp_path = tmp_path_factory.mktemp("diffroar_mnist")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick", "--figures-dir", str(tmp_path / "figures"), "--cache-dir",
         str(tmp_path / "zoo"), "--results", str(tmp_path / "results.json")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, tmp_path


def _table(out: str, title: str) -> dict[str, list[tuple[float, float]]]:
    """The rows of the Markdown table printed under ``title``: name -> [(mean, half-width), ...]."""
    block = out.split(title, 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in block.splitlines() if line.startswith("| ") and "k = " not in line]
    return {
        cells[0].strip(): [tuple(map(float, CELL.fullmatch(cell.strip()).groups())) for cell in cells[1:]]
        for cells in rows
    }


def test_quick_run_prints_every_table_with_intervals(quick_run: tuple[str, Path]) -> None:
    out, _ = quick_run
    for title in ("Top-k kept", "Bottom-k kept", "DiffROAR(k) = top-k - bottom-k"):
        table = _table(out, title)
        assert list(table) == list(RANKINGS)
        assert all(len(cells) == 2 and all(half >= 0 for _, half in cells) for cells in table.values())
    comparisons = _table(out, "Paired differences between rankings")
    assert "DiffROAR: robust L2 - standard gradient" in comparisons and len(comparisons) == 8
    models = re.findall(r"(standard|robust|robust L2) model: (\d\.\d{3}) / (\d\.\d{3}) / (\d\.\d{3})\n", out)
    assert [kind for kind, *_ in models] == ["standard", "robust", "robust L2"]  # clean / L2 PGD / L-inf PGD
    assert re.search(r"Unmasked images \(k = 1\): test accuracy of the retrained models \d\.\d{3} ± \d\.\d{3}", out)
    # The announced numbers of retrainings are the numbers counted ("... N retrainings" then "[i/N]").
    announced = [int(n) for n in re.findall(r"DiffROAR of .*: (\d+) retrainings", out)]
    counted = [int(n) for n in re.findall(r"DiffROAR \[(\d+)/\1\]", out)]
    # the k = 1 reference counts its 2 x 2 fits, the bottom-k ones reused from the top-k ones
    assert announced == [2 * 2 * 2] * len(RANKINGS) and counted == [4] + announced


def test_pixels_kept_by_a_random_ranking_are_the_fraction_kept(quick_run: tuple[str, Path]) -> None:
    out, _ = quick_run
    block = out.split("Non-black pixels (> 0) kept", 1)[1].split("\n\n", 1)[0]
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in block.splitlines() if line.startswith("| ")}
    assert list(rows)[1:] == list(RANKINGS)  # after the header row
    for k, cell in zip((0.05, 0.2), rows["random"]):  # a random k-share of the pixels keeps about k of them
        top, bottom = map(float, cell.split(" / "))
        assert abs(top - k) < 0.03 and abs(bottom - k) < 0.03


def test_printed_tables_match_the_saved_accuracies(quick_run: tuple[str, Path]) -> None:
    out, tmp_path = quick_run
    raw = json.loads((tmp_path / "results.json").read_text())
    assert list(raw) == ["setup", "unmasked", *RANKINGS] and raw["setup"] == {"fill": "background", "model_seed": 0}
    for title, side in (("Top-k kept", "top"), ("Bottom-k kept", "bottom")):
        for name, cells in _table(out, title).items():
            runs = np.asarray(raw[name][side])  # [levels, runs]
            assert runs.shape == (2, 2) and ((runs >= 0) & (runs <= 1)).all()
            assert [mean for mean, _ in cells] == pytest.approx(runs.mean(1), abs=6e-4)
            # 95% t interval over 2 runs: 12.706 * std / sqrt(2)
            assert [half for _, half in cells] == pytest.approx(12.706 * runs.std(1, ddof=1) / np.sqrt(2), abs=6e-4)


def test_quick_run_draws_its_figure_outside_docs(quick_run: tuple[str, Path]) -> None:
    _, tmp_path = quick_run
    for name in ("diffroar_mnist.png", "diffroar_mnist_rankings.png"):
        with Image.open(tmp_path / "figures" / name) as image:
            assert image.width >= 600 and image.height >= 300
            assert np.unique(np.asarray(image.convert("L"))).size > 20  # something was drawn


def test_replot_reprints_the_same_tables_from_the_saved_accuracies(quick_run: tuple[str, Path]) -> None:
    out, tmp_path = quick_run
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--replot", str(tmp_path / "results.json"), "--figures-dir",
         str(tmp_path / "replot")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    tables = out[out.index("Top-k kept") : out.index("\nFigure")]
    assert tables in done.stdout and "retrainings" not in done.stdout  # nothing was retrained
    assert (tmp_path / "replot" / "diffroar_mnist.png").is_file()
