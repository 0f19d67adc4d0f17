"""DiffROAR: unmasking against a brute-force reference, retrained DiffROAR on data whose signal pixels are known
(oracle > 0, reversed oracle < 0, random ~ 0), the no-retraining proxy's side effects, and the callback's logs."""

import csv
import logging
import math
import os
import random
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch import LightningModule, Trainer, seed_everything
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from iaside_lightning.callbacks.diffroar_callback import DiffROARCallback
from iaside_lightning.evaluation import DiffROARResult, compute_attributions, diffroar, diffroar_proxy
from iaside_lightning.functional.sanity.unmasking import apply_unmasking, random_attributions, unmask, unmasking_masks
from iaside_lightning.plotting import plot_diffroar

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
]

SIZE = 8  # images are 1 x 8 x 8
SIGNAL = torch.tensor([3, 10, 17, 28, 36, 45, 50, 61])  # flat indices of the pixels that carry the label
K_SIGNAL = len(SIGNAL) / SIZE**2  # unmasking exactly this fraction keeps as many pixels as carry the signal
NUM_TEST = 400
FIT = {"max_epochs": 3}


class Logistic(LightningModule):
    """Multinomial logistic regression on the flattened image; logs ``val/acc``."""

    def __init__(self, num_pixels: int = SIZE**2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(num_pixels, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val/acc", (self(batch[0]).argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.05)


def _signal_data(num: int, seed: int) -> tuple[Tensor, Tensor]:
    """Gaussian noise images; the label shifts the SIGNAL pixels by +-1 and nothing else."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randperm(num, generator=generator) % 2
    images = torch.randn(num, 1, SIZE, SIZE, generator=generator)
    images.view(num, -1)[:, SIGNAL] += 2.0 * labels[:, None] - 1
    return images, labels


def _oracle(num: int, reversed_: bool = False) -> Tensor:
    """|attribution| 1 on the signal pixels, 0 elsewhere (or the reverse)."""
    flat = torch.zeros(num, SIZE**2)
    flat[:, SIGNAL] = 1.0
    return (1.0 - flat if reversed_ else flat).view(num, 1, SIZE, SIZE)


def _reference_masks(attributions: Tensor, fraction: float, keep: str, per: str) -> Tensor:
    """Brute force: sort each image's (score, index) pairs in Python (top: by -score then index; bottom: reversed)."""
    masks = torch.zeros(attributions.shape, dtype=torch.bool)
    for n, image in enumerate(attributions.abs()):
        scores = image.sum(0).flatten() if per == "pixel" else image.flatten()
        order = sorted(range(len(scores)), key=lambda j: (-float(scores[j]), j))
        count = round(fraction * len(scores))
        kept = order[:count] if keep == "top" else order[len(order) - count :]
        flat = torch.zeros(len(scores), dtype=torch.bool)
        flat[kept] = True
        masks[n] = flat.view(image.shape[1:]).expand(image.shape) if per == "pixel" else flat.view(image.shape)
    return masks


small_attributions = st.builds(
    lambda n, c, h, w, seed, levels: torch.randint(-levels, levels + 1, (n, c, h, w),
                                                   generator=torch.Generator().manual_seed(seed)).double(),
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**16),
    st.integers(1, 3),
)  # fmt: skip  (few distinct integer values: many ties)


@settings(max_examples=60, deadline=None)
@given(
    small_attributions, st.floats(0, 1), st.sampled_from(["top", "bottom"]), st.sampled_from(["coordinate", "pixel"])
)
def test_masks_match_brute_force_reference(attributions: Tensor, fraction: float, keep: str, per: str) -> None:
    masks = unmasking_masks(attributions, fraction, keep=keep, per=per)
    assert torch.equal(masks, _reference_masks(attributions, fraction, keep, per))
    unit = attributions[0, 0].numel() if per == "pixel" else attributions[0].numel()
    kept_units = masks[:, 0].flatten(1).sum(1) if per == "pixel" else masks.flatten(1).sum(1)
    assert kept_units.tolist() == [round(fraction * unit)] * attributions.shape[0]
    if per == "pixel":  # whole pixels: every channel of a pixel is kept or masked together
        assert torch.equal(masks, masks[:, :1].expand_as(masks))


@settings(max_examples=40, deadline=None)
@given(small_attributions, st.integers(0, 48), st.sampled_from(["coordinate", "pixel"]))
def test_top_k_and_bottom_one_minus_k_are_complementary(attributions: Tensor, count: int, per: str) -> None:
    units = attributions[0, 0].numel() if per == "pixel" else attributions[0].numel()
    fraction = min(count, units) / units  # fraction * units is an integer: no rounding ambiguity
    top = unmasking_masks(attributions, fraction, keep="top", per=per)
    bottom = unmasking_masks(attributions, 1 - fraction, keep="bottom", per=per)
    assert torch.equal(top ^ bottom, torch.ones_like(top))  # disjoint, and together everything


@settings(max_examples=30, deadline=None)
@given(small_attributions, st.floats(0, 1), st.floats(0.01, 100), st.sampled_from(["top", "bottom"]))
def test_masks_depend_on_absolute_values_only(attributions: Tensor, fraction: float, scale: float, keep: str) -> None:
    signs = torch.where(torch.rand(attributions.shape, generator=torch.Generator().manual_seed(1)) < 0.5, -1.0, 1.0)
    masks = unmasking_masks(attributions, fraction, keep=keep)
    assert torch.equal(masks, unmasking_masks(attributions * scale, fraction, keep=keep))
    assert torch.equal(masks, unmasking_masks(attributions * signs.double(), fraction, keep=keep))


def test_unmask_fills_by_channel_and_handles_fraction_zero_and_one() -> None:
    images = torch.rand(4, 3, 5, 5) + 1.0
    attributions = torch.randn(4, 3, 5, 5)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    for per in ("coordinate", "pixel"):
        assert torch.equal(unmask(images, attributions, 1.0, per=per, fill=fill), images)
        empty = unmask(images, attributions, 0.0, per=per, fill=fill)
        assert torch.equal(empty, fill.view(1, 3, 1, 1).expand_as(images))
    half = unmask(images, attributions, 0.5, fill=fill)
    masks = unmasking_masks(attributions, 0.5)
    assert torch.equal(half[masks], images[masks])
    assert torch.equal(half, torch.where(masks, images, fill.view(1, 3, 1, 1)))  # masked values: their channel's fill
    assert torch.equal(unmask(images, attributions, 0.0), torch.zeros_like(images))  # default fill 0
    assert torch.equal(unmask(images, attributions, 0.0, fill=2.5), torch.full_like(images, 2.5))


def test_random_attributions_are_seeded_without_touching_the_global_rng() -> None:
    state = torch.get_rng_state()
    first, second = random_attributions((3, 2, 4, 4), seed=5), random_attributions((3, 2, 4, 4), seed=6)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(first, random_attributions((3, 2, 4, 4), seed=5)) and not torch.equal(first, second)
    ranks = [set(torch.nonzero(m.flatten()).flatten().tolist()) for m in unmasking_masks(first, 0.25)]
    assert len({frozenset(r) for r in ranks}) == 3  # each image gets its own ranking


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda a: unmasking_masks(a, 1.5), "`fraction`"),
        (lambda a: unmasking_masks(a, -0.1), "`fraction`"),
        (lambda a: unmasking_masks(a, 0.5, keep="largest"), "`keep`"),
        (lambda a: unmasking_masks(a, 0.5, per="channel"), "`per`"),
        (lambda a: unmasking_masks(a.clone().fill_(math.nan), 0.5), "`attributions`"),
        (lambda a: unmask(a, a[:, :1], 0.5), "`attributions`"),
        (lambda a: unmask(a, a, 0.5, fill=torch.zeros(3)), "`fill`"),
        (lambda a: apply_unmasking(a, torch.ones(2, 2, 3, 3, dtype=torch.bool)), "`masks`"),
        (lambda a: random_attributions((2, 3)), "`shape`"),
    ],
)
def test_unmasking_errors_name_the_argument(call: Any, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        call(torch.rand(2, 2, 4, 4))


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda a: unmasking_masks(a.long(), 0.5), "`attributions`"),
        (lambda a: apply_unmasking(a, a > 0.5, fill="zero"), "`fill`"),
        (lambda a: apply_unmasking(a, a, fill=0.0), "`masks`"),
    ],
)
def test_unmasking_type_errors_name_the_argument(call: Any, argument: str) -> None:
    with pytest.raises(TypeError, match=argument):
        call(torch.rand(2, 2, 4, 4))


@pytest.fixture(scope="module")
def signal_results() -> dict[str, DiffROARResult]:
    """Retrained DiffROAR of the oracle, reversed-oracle and random rankings (levels: signal fraction and 1)."""
    torch.set_num_threads(1)
    train, test = _signal_data(512, seed=1), _signal_data(NUM_TEST, seed=2)
    rankings = {
        "oracle": (_oracle(512), _oracle(NUM_TEST)),
        "reversed": (_oracle(512, reversed_=True), _oracle(NUM_TEST, reversed_=True)),
        "random": (random_attributions(train[0].shape, seed=3), random_attributions(test[0].shape, seed=4)),
    }
    return {
        name: diffroar(Logistic, train, test, *scores, levels=(K_SIGNAL, 1.0), repeats=2, trainer_kwargs=FIT,
                       batch_size=64, progress=False)
        for name, scores in rankings.items()
    }  # fmt: skip


def test_oracle_ranking_has_positive_diffroar(signal_results: dict[str, DiffROARResult]) -> None:
    result = signal_results["oracle"]
    assert result.retrained and result.top.shape == result.bottom.shape == (2, 2)
    assert bool((result.top[0] > 0.9).all())  # the signal pixels alone classify well
    assert bool((result.bottom[0] < 0.62).all())  # noise pixels alone: chance (best of 3 epochs)
    assert float(result.diff_mean[0]) > 0.3


def test_reversed_oracle_has_negative_diffroar(signal_results: dict[str, DiffROARResult]) -> None:
    result = signal_results["reversed"]
    assert float(result.diff_mean[0]) < -0.3
    assert torch.allclose(result.diff_mean[0], -signal_results["oracle"].diff_mean[0], atol=0.1)


def test_random_ranking_has_diffroar_near_zero(signal_results: dict[str, DiffROARResult]) -> None:
    result = signal_results["random"]
    # Top and bottom of a random ranking are equally informative; the difference of two accuracies on NUM_TEST images
    # has a binomial standard deviation of at most sqrt(2 * 0.25 / NUM_TEST). Allow 4 of them.
    tolerance = 4 * math.sqrt(2 * 0.25 / NUM_TEST)
    assert abs(float(result.diff_mean[0])) < tolerance
    assert bool((result.top[0] > 0.55).all())  # some signal pixels survive, so this is not trivially 0.5 - 0.5


def test_full_unmasking_gives_zero_diffroar(signal_results: dict[str, DiffROARResult]) -> None:
    for result in signal_results.values():  # at k = 1 top and bottom inputs are the whole images
        assert torch.equal(result.top[1], result.bottom[1]) and bool((result.top[1] > 0.9).all())


def test_result_rows_and_plot(signal_results: dict[str, DiffROARResult]) -> None:
    oracle = signal_results["oracle"]
    rows = oracle.rows()
    assert [list(row) for row in rows] == [["k", "top", "bottom", "diff", "std"]] * 2
    assert rows[0]["k"] == pytest.approx(K_SIGNAL)
    assert rows[0]["diff"] == pytest.approx(float((oracle.top[0] - oracle.bottom[0]).mean()))
    assert rows[0]["std"] == pytest.approx(float((oracle.top[0] - oracle.bottom[0]).std()))
    fig, (acc_ax, diff_ax) = oracle.plot(label="oracle")
    plot_diffroar(signal_results["random"], (acc_ax, diff_ax), label="random")
    assert "retrained" in fig.get_suptitle()
    assert [t.get_text() for t in diff_ax.get_legend().get_texts()] == ["oracle", "random"]
    assert acc_ax.get_xlabel().startswith("Fraction unmasked") and diff_ax.get_ylabel().startswith("DiffROAR")
    assert len(acc_ax.containers) == 4 and len(diff_ax.containers) == 2  # top and bottom per result; one diff each


def test_diffroar_restores_the_callers_random_state_and_is_quiet(
    monkeypatch: pytest.MonkeyPatch, capfd: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())
    train = _signal_data(64, seed=1)
    oracle = _oracle(64)
    diffroar(Logistic, train, train, oracle, oracle, levels=(0.5,), repeats=2, trainer_kwargs={"max_epochs": 1})
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])
    assert "PL_GLOBAL_SEED" not in os.environ and "PL_SEED_WORKERS" not in os.environ
    out, err = capfd.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("DiffROAR [") for line in lines)  # one line per fit, nothing else
    assert "GPU available" not in out + err + caplog.text  # Lightning's info messages are silenced


def test_diffroar_is_reproducible_and_pairs_runs() -> None:
    train = _signal_data(64, seed=1)
    run = lambda: diffroar(Logistic, train, train, _oracle(64), _oracle(64), levels=(0.5,), repeats=2,  # noqa: E731
                           trainer_kwargs={"max_epochs": 1}, seed=4, progress=False)  # fmt: skip
    first, second = run(), run()
    assert torch.equal(first.top, second.top) and torch.equal(first.bottom, second.bottom)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"levels": ()}, ValueError, "`levels`"),
        ({"levels": (0.5, 0.2)}, ValueError, "`levels`"),
        ({"levels": (0.5, 1.2)}, ValueError, "`levels`"),
        ({"repeats": 0}, ValueError, "`repeats`"),
        ({"fill": "median"}, ValueError, "`fill`"),
        ({"metric": "val/accuracy"}, ValueError, "`metric`"),
        ({"attributions_test": torch.zeros(3, 1, 8, 8)}, ValueError, "`attributions_test`"),
        ({"train": torch.zeros(3, 1, 8, 8)}, TypeError, "`train`"),
        ({"model_factory": lambda: nn.Linear(64, 2)}, TypeError, "`model_factory`"),
    ],
)
def test_diffroar_errors_name_the_argument(kwargs: dict[str, Any], error: type, argument: str) -> None:
    data = _signal_data(16, seed=0)
    options = {"model_factory": Logistic, "train": data, "test": data, "attributions_train": _oracle(16),
               "attributions_test": _oracle(16), "levels": (0.5,), "repeats": 1, "trainer_kwargs": {"max_epochs": 1},
               "progress": False}  # fmt: skip
    with pytest.raises(error, match=argument):
        diffroar(**{**options, **kwargs})


class _FrozenBatchNormNet(nn.Module):
    """A linear model behind a BatchNorm (buffers that a forward pass in train mode would change) and dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(1)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(SIZE**2, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.drop(self.norm(x)))


def test_proxy_matches_reference_and_has_no_side_effects() -> None:
    images, labels = _signal_data(64, seed=5)
    model = _FrozenBatchNormNet()
    with torch.no_grad():
        model.head[1].weight.zero_()
        model.head[1].weight[1, SIGNAL] = 1.0
        model.head[1].weight[0, SIGNAL] = -1.0
    model.train()
    model.norm.eval()  # a submodule the user froze
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    state = torch.get_rng_state()
    result = diffroar_proxy(model, images, labels, _oracle(64), levels=(K_SIGNAL, 1.0), fill=0.0)
    assert torch.equal(state, torch.get_rng_state())
    assert model.training and not model.norm.training and model.drop.training
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())
    assert all(torch.equal(t, before[name]) for name, t in model.state_dict().items())
    assert not result.retrained and result.top.shape == (2, 1) and math.isnan(result.rows()[0]["std"])
    model.eval()
    with torch.no_grad():
        for i, k in enumerate((K_SIGNAL, 1.0)):
            for keep, accuracy in (("top", result.top), ("bottom", result.bottom)):
                inputs = unmask(images, _oracle(64), k, keep=keep, fill=0.0)
                assert float(accuracy[i, 0]) == float((model(inputs).argmax(1) == labels).float().mean())
    assert float(result.diff_mean[0]) > 0.3  # the model reads the signal pixels: top keeps them, bottom does not
    fig, _ = result.plot()
    assert fig.get_suptitle() == "DiffROAR proxy (no retraining)"


def test_compute_attributions_methods() -> None:
    images, labels = _signal_data(10, seed=0)
    model = Logistic()
    grads = compute_attributions(model, images, labels, batch_size=3)
    assert torch.allclose(grads.flatten(1), model.net[1].weight[labels].detach())
    state = torch.get_rng_state()
    random_scores = compute_attributions(model, images, labels, "random", seed=2)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(random_scores, random_attributions(images.shape, seed=2))
    custom = compute_attributions(model, images, labels, lambda m, x, y: x * 2, batch_size=4)
    assert torch.equal(custom, images * 2)
    with pytest.raises(ValueError, match="`method`"):
        compute_attributions(model, images, labels, "saliency")
    with pytest.raises(ValueError, match="`method`"):
        compute_attributions(model, images, labels, lambda m, x, y: x[:, :, :2])


def _loaders(generator: Optional[torch.Generator] = None) -> tuple[DataLoader, DataLoader]:
    """Training (shuffled with ``generator``, the global RNG by default) and validation loaders of signal data."""
    train, test = _signal_data(256, seed=1), _signal_data(128, seed=2)
    return (DataLoader(TensorDataset(*train), batch_size=64, shuffle=True, generator=generator),
            DataLoader(TensorDataset(*test), batch_size=64))  # fmt: skip


def _trainer(tmp_path: Path, callbacks: list, **kwargs: Any) -> Trainer:
    options = {"accelerator": "cpu", "max_epochs": 3, "logger": False, "enable_checkpointing": False,
               "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": tmp_path}  # fmt: skip
    return Trainer(callbacks=callbacks, **{**options, **kwargs})


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_callback_logs_diffroar_table_figure_and_proxy(tmp_path: Path) -> None:
    callback = DiffROARCallback(Logistic, levels=(K_SIGNAL, 1.0), repeats=1, trainer_kwargs=FIT, batch_size=64,
                                progress=False, every_n_epochs=1, proxy_levels=(K_SIGNAL, 0.5))  # fmt: skip
    trainer = _trainer(tmp_path, [callback], logger=CSVLogger(tmp_path), log_every_n_steps=1)
    trainer.fit(Logistic(), *_loaders())
    log_dir = Path(trainer.logger.log_dir)
    rows = _read_csv(log_dir / "diffroar_retrained.csv")
    assert [list(row) for row in rows] == [["k", "top", "bottom", "diff", "std"]] * 2
    assert float(rows[0]["k"]) == pytest.approx(K_SIGNAL)
    # The trained model's input gradients are largest on the signal pixels, so its top-k carries the label.
    assert float(rows[0]["diff"]) > 0.2 and float(rows[1]["diff"]) == 0.0
    assert callback.result is not None and float(rows[0]["top"]) == float(callback.result.top[0, 0])
    assert (log_dir / "figures" / "diffroar" / "retrained" / "epoch_0003.png").is_file()
    proxy = _read_csv(log_dir / "diffroar_history.csv")
    assert [row["epoch"] for row in proxy] == ["0", "1", "2"]
    metrics = [row for row in _read_csv(log_dir / "metrics.csv") if row.get("diffroar/proxy/diff_k0.125")]
    assert [float(row["diffroar/proxy/diff_k0.125"]) for row in metrics] == [float(row["diff_k0.125"]) for row in proxy]


def test_callback_proxy_does_not_change_training(tmp_path: Path) -> None:
    weights = []
    for callbacks in ([], [DiffROARCallback(every_n_epochs=1, max_samples=100)]):
        seed_everything(0, verbose=False)
        model = Logistic()
        _trainer(tmp_path, callbacks, max_epochs=2).fit(model, *_loaders())  # shuffled by the global RNG
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_callback_needs_something_to_do() -> None:
    with pytest.raises(ValueError, match="`model_factory`"):
        DiffROARCallback()
    with pytest.raises(ValueError, match="`every_n_epochs`"):
        DiffROARCallback(Logistic, every_n_epochs=0)


def _bar_half_heights(container: Any) -> np.ndarray:
    """Half-heights of an errorbar container's vertical bars, from their segments ``[(x, low), (x, high)]``."""
    segments = np.asarray(container.lines[2][0].get_segments())
    return (segments[:, 1, 1] - segments[:, 0, 1]) / 2


def test_standard_errors_and_interval_bars_match_a_hand_computation() -> None:
    top = torch.tensor([[0.9, 0.8, 0.7], [0.5, 0.5, 0.8]], dtype=torch.float64)
    bottom = torch.tensor([[0.6, 0.6, 0.3], [0.5, 0.4, 0.4]], dtype=torch.float64)
    result = DiffROARResult(torch.tensor([0.1, 0.4], dtype=torch.float64), top, bottom, retrained=True)
    by_hand = [float(np.std(row, ddof=1) / np.sqrt(3)) for row in (top - bottom).numpy()]  # [0.0882, 0.0667]
    assert result.diff_sem.tolist() == pytest.approx(by_hand)
    assert result.top_sem.tolist() == pytest.approx([float(np.std(row, ddof=1) / np.sqrt(3)) for row in top.numpy()])
    assert result.bottom_sem.tolist() == pytest.approx([float(np.std(r, ddof=1) / np.sqrt(3)) for r in bottom.numpy()])
    fig, (acc_ax, diff_ax) = plot_diffroar(result, interval=4.303, shift=1.1)  # 95% t quantile for 2 df
    assert _bar_half_heights(diff_ax.containers[0]) == pytest.approx([4.303 * s for s in by_hand])
    assert _bar_half_heights(acc_ax.containers[0]) == pytest.approx((4.303 * result.top_sem).tolist())
    assert _bar_half_heights(acc_ax.containers[1]) == pytest.approx((4.303 * result.bottom_sem).tolist())
    assert diff_ax.containers[0].lines[0].get_xdata() == pytest.approx([0.11, 0.44])  # drawn at shift * k
    assert "4.3 s.e." in fig.get_suptitle()
    _, (_, std_ax) = plot_diffroar(result)  # default: +-1 std of the paired differences
    assert _bar_half_heights(std_ax.containers[0]) == pytest.approx(result.diff_std.tolist())
    single = DiffROARResult(torch.tensor([0.5]), torch.tensor([[0.9]]), torch.tensor([[0.6]]), retrained=True)
    assert torch.isnan(single.diff_sem).all()


@pytest.mark.parametrize("kwargs", [{"interval": 0.0}, {"interval": float("nan")}, {"shift": -1.0}, {"shift": True}])
def test_plot_diffroar_rejects_invalid_interval_and_shift(kwargs: dict[str, Any]) -> None:
    result = DiffROARResult(torch.tensor([0.5]), torch.tensor([[0.9, 0.8]]), torch.tensor([[0.6, 0.5]]), True)
    with pytest.raises(ValueError, match=f"`{next(iter(kwargs))}` must be a positive finite number"):
        plot_diffroar(result, **kwargs)
