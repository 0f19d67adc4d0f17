"""The spectral-SNR and model-zoo examples run in ``--quick`` mode and print and draw what their docs show; trained
weights are cached by config outside the repository."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _run(script: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--cache-dir", str(tmp_path / "cache"), "--figures-dir",
         str(tmp_path / "figures")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _assert_figure(path: Path, min_width: int) -> None:
    with Image.open(path) as image:
        assert image.width >= min_width and image.height >= 300
        assert np.unique(np.asarray(image.convert("L"))).size > 20  # something was drawn


def test_spectral_snr_example_quick(tmp_path: Path) -> None:
    out = _run("spectral_snr.py", tmp_path)
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| perturbation")]
    assert re.search(r"ESD slope of the clean images: [+-]\d+\.\d dB/decade", out)
    names = [row.split("|")[1].strip() for row in rows]
    assert names == ["Gaussian noise (severity 3)", "shot noise (severity 3)", "Gaussian blur (severity 3)",
                     "contrast (severity 3)", "JPEG (severity 3)", "FGSM (eps 0.1)", "PGD-10 (eps 0.1)"]
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[2:-1]]
        assert len(cells) == 2 + 8 + 2  # accuracy, L2 size, 8 bands, two slopes
        assert all(re.fullmatch(r"[+-]?(\d+\.\d+|inf|nan)", cell) for cell in cells), row
    _assert_figure(tmp_path / "figures" / "spectral_snr.png", min_width=1000)
    assert list((tmp_path / "cache").glob("*.pt")), "the trained model is cached"


def test_robustness_zoo_example_quick(tmp_path: Path) -> None:
    out = _run("robustness_zoo.py", tmp_path)
    assert len(re.findall(r"trained '", out)) == 3 and len(list((tmp_path / "cache").glob("*.pt"))) == 3
    table = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert len(table) == 3
    for row in table:
        _, seed, srs, halves, signed, *accuracies = (cell.strip() for cell in row.split("|")[1:-1])
        assert seed == "0"  # one seed per configuration in quick mode
        assert 0 <= float(srs) <= 1 and abs(float(signed)) == pytest.approx(float(srs), abs=1e-3)
        assert all(0 <= float(half) <= 1 for half in halves.split(" / "))
        assert len(accuracies) == 4 and all(0 <= float(a) <= 2 for a in accuracies)  # 3 accuracies and a ratio
    assert "over all 3 models:" in out
    correlations = re.findall(
        r"Spearman\(SRS, (.+?)\) = ([+-]\d\.\d\d), bootstrap 95% interval \[(\S+), (\S+)\] over models, "
        r"\[(\S+), (\S+)\] over configurations", out
    )
    assert [name for name, *_ in correlations] == [
        "clean accuracy", "mean corruption accuracy", "corruption accuracy / clean accuracy", "PGD accuracy"
    ]
    _assert_figure(tmp_path / "figures" / "robustness_zoo.png", min_width=1000)
    _assert_figure(tmp_path / "figures" / "robustness_zoo_phi.png", min_width=600)


def test_zoo_weights_are_cached_by_config_and_reloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _mnist_models import ZooConfig, train_or_load

    config = ZooConfig("tiny", width=4, epochs=1, num_train=64)
    first = train_or_load(config, tmp_path)
    assert "trained 'tiny'" in capsys.readouterr().out
    again = train_or_load(config, tmp_path)
    assert "trained" not in capsys.readouterr().out  # loaded, not retrained
    assert not again.training
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    train_or_load(ZooConfig("tiny", width=4, epochs=1, num_train=64, label_noise=0.4), tmp_path)
    assert len(list(tmp_path.glob("tiny-*.pt"))) == 2  # another config, another file


def test_bootstrap_spearman_resamples_models_and_whole_configurations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from robustness_zoo import bootstrap_spearman
    from scipy.stats import spearmanr

    x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    rho, by_model, by_config = bootstrap_spearman(x, [2 * v for v in x], ["a", "a", "b", "b", "c", "c"])
    assert rho == pytest.approx(1.0) and by_model == pytest.approx((1.0, 1.0)) and by_config == pytest.approx((1.0, 1.0))

    # within each configuration the order is reversed, between configurations it agrees. Resampling whole
    # configurations draws a single configuration (both seeds, rho = -1) in 1/9 of the resamples, so its interval
    # reaches -1; resampling models rarely gets rho = -1 (only both seeds of one configuration, about 1 in 250)
    y = [0.2, 0.1, 0.4, 0.3, 0.6, 0.5]
    rho, (low, high), (config_low, config_high) = bootstrap_spearman(x, y, ["a", "a", "b", "b", "c", "c"])
    assert rho == pytest.approx(spearmanr(x, y).statistic)
    assert -1 < low <= rho <= high <= 1 and config_low == pytest.approx(-1.0) and rho <= config_high <= 1
