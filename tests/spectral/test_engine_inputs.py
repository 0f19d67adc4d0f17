"""Bad inputs get clear errors naming the argument; the model's mode, parameters and buffers are left untouched."""

import pytest
import torch
from torch import nn

from iaside_lightning.functional import coalition_values, spectral_shapley

pytestmark = pytest.mark.usefixtures("single_thread")

IMAGES = torch.rand(4, 1, 16, 16)
LABELS = torch.tensor([0, 1, 2, 1])


def _linear(classes: int = 3, channels: int = 1, size: int = 16) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * size * size, classes))


class _Returns(nn.Module):
    """Wraps a linear classifier and post-processes its logits with ``how``."""

    def __init__(self, how):
        super().__init__()
        self.inner, self.how = _linear(), how

    def forward(self, x):
        return self.how(self.inner(x))


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(1, 16, 16), "4-D"),
        (torch.randint(0, 255, (4, 1, 16, 16)), "floating-point"),
        (IMAGES.numpy(), "images"),
    ],
)
def test_images_of_wrong_type_or_rank(images, match):
    with pytest.raises(TypeError, match=match):
        spectral_shapley(_linear(), images, LABELS, num_bands=3)


def test_empty_and_non_finite_images():
    with pytest.raises(ValueError, match="empty batch"):
        spectral_shapley(_linear(), IMAGES[:0], LABELS[:0], num_bands=3)
    bad = IMAGES.clone()
    bad[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="`images` contains NaN"):
        spectral_shapley(_linear(), bad, LABELS, num_bands=3)


def test_images_too_small_for_the_bands():
    images = torch.rand(4, 1, 8, 8)
    with pytest.raises(ValueError, match="8x8 pixels is too small for 8"):
        spectral_shapley(_linear(size=8), images, LABELS, num_bands=8)


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        (torch.tensor([0, 1, 3, 1]), ValueError, r"labels.*\[0, 3\)"),
        (torch.tensor([0, -1, 2, 1]), ValueError, r"labels.*\[0, 3\)"),
        (torch.tensor([0, 1, 2]), ValueError, r"`labels` must have shape \[N\] = \[4\]"),
        (torch.nn.functional.one_hot(LABELS, 3), ValueError, "one-hot"),
        (LABELS.float(), TypeError, "labels.*integer"),
        (LABELS.bool(), TypeError, "labels.*integer"),
        ([0, 1, 2, 1], TypeError, "labels.*integer"),
    ],
)
def test_bad_labels(labels, error, match):
    with pytest.raises(error, match=match):
        spectral_shapley(_linear(), IMAGES, labels, num_bands=3)


@pytest.mark.parametrize("num_bands", [1, 0, -2])
def test_too_few_bands(num_bands):
    with pytest.raises(ValueError, match="num_bands"):
        spectral_shapley(_linear(), IMAGES, LABELS, num_bands=num_bands)


def test_exact_enumeration_beyond_the_budget():
    with pytest.raises(ValueError, match=r"2\^4 = 16 coalitions.*max_coalitions=10"):
        coalition_values(_linear(), IMAGES, LABELS, num_bands=4, max_coalitions=10)


@pytest.mark.parametrize(
    ("option", "bad", "match"),
    [
        ("fill", "mean", "fill"),
        ("value", "logit", "value"),
        ("band_shape", "diamond", "band_shape"),
        ("band_edges", "quadratic", "band_edges"),
        ("band_edges", (0.0, 0.5, 1.0), "band_edges"),
        ("band_edges", (0.0, 0.7, 0.4, 1.0), "band_edges"),
        ("normalization", ((0.5, 0.5), (0.2, 0.2)), "normalization"),  # two channels for a one-channel image
        ("normalization", ((0.5,), (0.0,)), "normalization"),
        ("normalization", (0.5,), "normalization"),
        ("normalization", ("a", "b"), "normalization"),
        ("chunk_size", 0, "chunk_size"),
        ("logits", torch.zeros(3, 3), "`logits` argument"),
    ],
)
def test_bad_options(option, bad, match):
    with pytest.raises(ValueError, match=match):
        spectral_shapley(_linear(), IMAGES, LABELS, num_bands=3, **{option: bad})


def test_permute_needs_two_images():
    with pytest.raises(ValueError, match="at least 2 images"):
        spectral_shapley(_linear(), IMAGES[:1], LABELS[:1], num_bands=3, fill="permute")


def test_coalitions_of_wrong_width():
    with pytest.raises(ValueError, match="coalitions"):
        coalition_values(_linear(), IMAGES, LABELS, num_bands=3, coalitions=torch.ones(2, 4))


@pytest.mark.parametrize(
    ("how", "error", "match"),
    [
        (lambda z: z[:, 0], ValueError, "output_transform"),  # [B] instead of [B, K]
        (lambda z: z[:, :1], ValueError, r"classes>=2"),
        (lambda z: z.argmax(1, keepdim=True).expand(-1, 3), TypeError, "floating-point"),
        (lambda z: z * float("nan"), ValueError, "NaN or infinite"),
        (lambda z: z.clone().index_fill_(1, torch.tensor([1]), float("inf")), ValueError, "NaN or infinite"),
        (lambda z: (z, z), TypeError, "output_transform"),
    ],
)
def test_bad_model_outputs(how, error, match):
    with pytest.raises(error, match=match):
        spectral_shapley(_Returns(how), IMAGES, LABELS, num_bands=3)


def test_dict_output_needs_output_transform_and_then_works():
    model = _Returns(lambda z: {"logits": z, "features": z.detach()})
    with pytest.raises(TypeError, match="output_transform"):
        spectral_shapley(model, IMAGES, LABELS, num_bands=3)
    result = spectral_shapley(model, IMAGES, LABELS, num_bands=3, output_transform=lambda out: out["logits"])
    plain = spectral_shapley(model.inner, IMAGES, LABELS, num_bands=3)
    torch.testing.assert_close(result.phi, plain.phi)


def test_plain_callable_model():
    linear = _linear()
    result = spectral_shapley(lambda x: linear(x), IMAGES, LABELS, num_bands=3)
    torch.testing.assert_close(result.phi, spectral_shapley(linear, IMAGES, LABELS, num_bands=3).phi)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5))
        self.frozen = nn.BatchNorm2d(4)  # deliberately left in eval mode inside a training model
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, self.body[1].training, torch.is_grad_enabled()))
        return self.head(self.frozen(self.body(x)))


@pytest.mark.parametrize("fail", [False, True])
def test_model_state_is_untouched(fail):
    net = _Net().train()
    net.frozen.eval()
    net(torch.rand(8, 1, 16, 16))  # give the running statistics non-default values
    net.seen.clear()
    modes = {name: m.training for name, m in net.named_modules()}
    state = {k: v.clone() for k, v in net.state_dict().items()}
    labels = torch.tensor([0, 1, 2, 9]) if fail else LABELS  # 9 is out of range: raises after the first forward
    try:
        values = coalition_values(net, IMAGES, labels, num_bands=3, fill="permute")
    except ValueError:
        assert fail
    else:
        assert not fail and not values.requires_grad
        # Dropout is off during the call: the same call again gives the same values.
        torch.testing.assert_close(coalition_values(net, IMAGES, labels, num_bands=3, fill="permute"), values)
    assert net.seen and all(seen == (False, False, False) for seen in net.seen), "model must run in eval, no grad"
    assert {name: m.training for name, m in net.named_modules()} == modes
    for key, tensor in net.state_dict().items():
        assert torch.equal(tensor, state[key]), f"{key} changed"
    assert all(p.grad is None for p in net.parameters())
