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


def _table(out: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header starts with ``header``, split into stripped cells."""
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(header)) + 2
    body = []
    for line in lines[first:]:
        if not line.startswith("| "):
            break
        body.append([cell.strip() for cell in line.split("|")[1:-1]])
    return body


def test_robustness_zoo_example_quick(tmp_path: Path) -> None:
    out = _run("robustness_zoo.py", tmp_path)
    assert len(re.findall(r"trained '", out)) == 6 and len(list((tmp_path / "cache").glob("*.pt"))) == 6
    models = _table(out, "| recipe | seed | SRS (s.e.)")
    assert [(row[0], row[1]) for row in models] == [
        (name, seed) for name in ("base (width 8)", "width 4", "uniform-noise aug.") for seed in "01"
    ]
    for row in models:
        srs, srs_se = re.fullmatch(r"(\d\.\d{3}) \((\d\.\d{3})\)", row[2]).groups()
        balance, balance_se = re.fullmatch(r"([+-]\d\.\d{3}) \((\d\.\d{3})\)", row[3]).groups()
        assert 0 <= float(srs) <= 1 and -1 <= float(balance) <= 1 and float(srs_se) > 0 and float(balance_se) > 0
        assert len(row[4:]) == 6 and all(0 <= float(a) <= 1 for a in row[4:])  # six accuracies
    recipes = _table(out, "| recipe | trained on |")
    assert [row[1] for row in recipes] == ["none", "none", "uniform_noise"]
    correlations = _table(out, "| score | against | Spearman rho")
    assert [(row[0], row[1]) for row in correlations] == [
        (score, measure) for measure in ("clean accuracy", "held-out corruption accuracy",
                                         "accuracy on corruptions outside own training family",
                                         "held-out corruption accuracy, recipes without augmentation",
                                         "PGD accuracy, recipes not PGD-trained") for score in ("SRS", "balance")
    ]
    for row in correlations:
        assert -1 <= float(row[2]) <= 1 and -1 <= float(row[8]) <= 1
        if row[1] == "clean accuracy":
            assert row[5:8] == ["-", "-", "-"]  # no partial correlation of clean accuracy given itself
        else:
            assert -1 <= float(row[5]) <= 1
        for cell in row[3:5] + row[9:]:
            low, high = (float(v) for v in re.fullmatch(r"(\S+) to (\S+)", cell).groups())
            assert -1 <= low <= high <= 1 or np.isnan(low)
    per_corruption = _table(out.split("Per corruption")[1], "| score | against | Spearman rho")
    assert [row[1] for row in per_corruption[::2]] == [
        "gaussian_noise", "shot_noise", "gaussian_blur", "contrast", "jpeg", "brightness", "fog", "elastic"
    ]
    rhos = np.array([[float(row[2]), float(row[5])] for row in per_corruption])  # NaN: a constant accuracy
    assert np.isfinite(rhos).any() and not (np.abs(rhos) > 1).any()
    spread = _table(out, "| score | SD between seeds")
    assert [row[0] for row in spread] == ["SRS", "balance"] and all(float(v) >= 0 for row in spread for v in row[1:4])
    _assert_figure(tmp_path / "figures" / "robustness_zoo.png", min_width=1000)
    _assert_figure(tmp_path / "figures" / "robustness_zoo_spread.png", min_width=800)
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


def test_bootstrap_resamples_models_and_whole_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _bootstrap import bootstrap, spearman
    from scipy.stats import spearmanr

    x = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    groups = ["a", "a", "b", "b", "c", "c"]
    estimate = bootstrap(lambda i: spearman(x[i], 2 * x[i]), groups)
    assert estimate.value == pytest.approx(1.0) and estimate.by_model == pytest.approx((1.0, 1.0))
    assert estimate.by_group == pytest.approx((1.0, 1.0))

    # within each recipe the order is reversed, between recipes it agrees. Resampling whole recipes draws a single
    # recipe (both seeds, rho = -1) in 1/9 of the resamples, so its interval reaches -1; resampling models rarely
    # gets rho = -1 (only both seeds of one recipe, about 1 in 250)
    y = np.array([0.2, 0.1, 0.4, 0.3, 0.6, 0.5])
    rho, (low, high), (group_low, group_high) = bootstrap(lambda i: spearman(x[i], y[i]), groups)
    assert rho == pytest.approx(spearmanr(x, y).statistic)
    assert -1 < low <= rho <= high <= 1 and group_low == pytest.approx(-1.0) and rho <= group_high <= 1
    with pytest.raises(ValueError, match="at least 2 rows"):
        bootstrap(lambda i: 0.0, ["a"])


def test_partial_spearman_removes_what_both_variables_owe_to_the_control(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _bootstrap import partial_spearman, spearman

    rng = np.random.default_rng(0)
    control = rng.normal(size=400)
    x, y = control + 0.3 * rng.normal(size=400), control + 0.3 * rng.normal(size=400)
    assert spearman(x, y) > 0.8 and abs(partial_spearman(x, y, control)) < 0.15  # only the control links them
    shared = rng.normal(size=400)
    assert partial_spearman(x + 2 * shared, y + 2 * shared, control) > 0.6  # a link beyond the control survives


def test_seed_spread_compares_seeds_with_recipes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _bootstrap import seed_spread

    rng = np.random.default_rng(1)
    groups = [g for g in "abcdefgh" for _ in range(5)]
    noise_only = seed_spread(rng.normal(size=40), groups)  # recipes do not matter
    assert noise_only.between == pytest.approx(noise_only.noise_floor, rel=0.6) and noise_only.p_value > 0.01
    shifted = seed_spread([ord(g) + 0.1 * v for g, v in zip(groups, rng.normal(size=40))], groups)
    assert shifted.between > 20 * shifted.noise_floor and shifted.p_value < 1e-6
    with pytest.raises(ValueError, match="at least 2 groups"):
        seed_spread([1.0, 2.0, 3.0], ["a", "a", "b"])
