"""A label-free memorisation audit from band-limited coalition values.

A network fits a training label either through features it shares with other images of that class (they survive a
low-pass filter: a blurred digit is still a digit) or, once it memorises, through the idiosyncratic detail of that one
image. A mislabelled image can only be fitted the second way. Its *band-limited coalition values* show it: with only
the lowest frequency bands kept (the coalition ``{0, ..., k - 1}``, absent bands zeroed, i.e. an ideal low-pass),
the model predicts the image's true class again and the (noisy) label it memorised gets a low log-probability, while
after memorisation the full image's loss is near zero for clean and memorised samples alike.

:func:`memorization_scores` averages the low-pass loss ``-log p(y | low-pass_k(x))`` over the cut-offs ``k`` at
which most audited samples are still recognised: those where at least half of them keep ``p(y) >= 1/2``. Below
them the low-pass has erased the clean samples' class evidence too (a blob is no digit), and as long as fewer than
half the labels are wrong, the clean majority marks where that happens, without knowing which labels are wrong.
Higher means more likely memorised or mislabelled. See docs/memorization.md for the study behind this rule (it
replaced a plain mean over all cut-offs, which failed), the baselines it was compared with and where it fails.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.bands import BandEdges, BandShape
from iaside_lightning.functional.spectral.coalitions import CoalitionFill
from iaside_lightning.functional.spectral.engine import coalition_values
from iaside_lightning.functional.spectral.options import SpectralOptions, document_options

__all__ = [
    "MAJORITY",
    "MemorizationOptions",
    "MemorizationResult",
    "check_cutoffs",
    "lowpass_coalitions",
    "memorization_audit",
    "memorization_scores",
    "select_cutoffs",
]

#: A candidate cut-off joins the score when at least this share of the audited samples keep ``p(label) >= 1/2`` on it.
MAJORITY = 0.5


@dataclass(frozen=True)
class MemorizationResult:
    """Per-sample outputs of :func:`memorization_audit` (float64, on the images' device).

    Attributes:
        scores: ``[B]`` memorisation score: mean low-pass loss over the ``selected`` cut-offs (higher = more suspect).
        lowpass_values: ``[B, K]`` ``log p(y | x with only bands < k)`` for each cut-off ``k`` of ``cutoffs``.
        full_values: ``[B]`` ``log p(y | x)`` on the unmodified images (minus the usual per-sample loss).
        cutoffs: the candidate cut-offs ``k`` (number of lowest bands kept) of the columns of ``lowpass_values``.
        kept: ``[K]`` share of the samples whose label keeps ``p >= 1/2`` at each candidate cut-off.
        selected: the cut-offs the score averages: those where ``kept >= 1/2`` (:data:`MAJORITY`).
    """

    scores: Tensor
    lowpass_values: Tensor
    full_values: Tensor
    cutoffs: tuple[int, ...]
    kept: Tensor
    selected: tuple[int, ...]


def select_cutoffs(values: Tensor) -> tuple[Tensor, Tensor]:
    """The majority rule: which columns of per-sample values ``[B, K]`` (log-probabilities of the label, one column
    per cut-off) a score averages.

    Returns:
        ``(kept, chosen)``: ``kept`` ``[K]`` the share of samples with ``p >= 1/2`` per column, ``chosen`` ``[K]``
        Bool, ``kept >= MAJORITY``, or the columns with the largest ``kept`` when none reaches it.

    Example:
        >>> values = torch.log(torch.tensor([[0.1, 0.6, 0.9], [0.2, 0.3, 0.8]]))
        >>> kept, chosen = select_cutoffs(values)
        >>> kept.tolist(), chosen.tolist()
        ([0.0, 0.5, 1.0], [False, True, True])
    """
    kept = (values >= math.log(0.5)).to(torch.float64).mean(0)
    chosen = kept >= MAJORITY
    return kept, chosen if bool(chosen.any()) else kept == kept.max()


def lowpass_coalitions(num_bands: int, cutoffs: Sequence[int]) -> Tensor:
    """0/1 coalitions ``[K, M]`` keeping the ``k`` lowest bands, one row per cut-off ``k``.

    Example:
        >>> lowpass_coalitions(4, [1, 3]).tolist()
        [[1, 0, 0, 0], [1, 1, 1, 0]]
    """
    bands = torch.arange(num_bands)
    return torch.stack([(bands < k).to(torch.int64) for k in cutoffs])


def check_cutoffs(cutoffs: Optional[Sequence[int]], num_bands: int) -> tuple[int, ...]:
    """The cut-offs as a tuple (``None``: ``1 .. num_bands - 1``); a ``ValueError`` naming the argument otherwise.

    Example:
        >>> check_cutoffs(None, 4), check_cutoffs([2, 3], 4)
        ((1, 2, 3), (2, 3))
    """
    if isinstance(num_bands, bool) or not isinstance(num_bands, int) or num_bands < 2:
        raise ValueError(f"`num_bands` must be an integer >= 2, got {num_bands!r}.")
    if cutoffs is None:
        return tuple(range(1, num_bands))
    if isinstance(cutoffs, (str, bytes)) or not isinstance(cutoffs, Sequence) or len(cutoffs) == 0:
        raise ValueError(f"`cutoffs` must be a non-empty sequence of integers in [1, num_bands - 1], got {cutoffs!r}.")
    values = tuple(cutoffs)
    if any(isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < num_bands for k in values):
        raise ValueError(
            f"`cutoffs` must hold integers in [1, num_bands - 1 = {num_bands - 1}] (the number of lowest bands "
            f"kept), got {list(values)}; pass None for all of them."
        )
    if len(set(values)) != len(values):
        raise ValueError(f"`cutoffs` must not repeat a cut-off, got {list(values)}.")
    return values


@document_options("num_bands", "band_shape", "band_edges", "fill", "normalization", "output_transform", "seed")
@dataclass(frozen=True)
class MemorizationOptions:
    """The audit's options, validated once at construction (with the engine's messages for the spectral ones).

    Attributes:
        {options}
        cutoffs: candidate numbers of lowest bands kept, each in ``[1, num_bands - 1]``; the score averages the
            low-pass loss over those that keep a majority (see :func:`memorization_scores`). ``None`` (resolved at
            construction): all of ``1 .. num_bands - 1``.

    Example:
        >>> MemorizationOptions(num_bands=4).cutoffs
        (1, 2, 3)
    """

    num_bands: int = 8
    cutoffs: Optional[Sequence[int]] = None
    band_shape: BandShape = "square"
    band_edges: BandEdges = "rings"
    fill: CoalitionFill = "zero"
    normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None
    output_transform: Optional[Callable[[Any], Tensor]] = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "cutoffs", check_cutoffs(self.cutoffs, self.num_bands))
        SpectralOptions(**self._spectral())

    def _spectral(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "cutoffs"}


def memorization_audit(
    model: Callable[[Tensor], Any], images: Tensor, labels: Tensor, options: MemorizationOptions = MemorizationOptions()
) -> MemorizationResult:
    """Memorisation scores with the band-limited values behind them and the full images' log-probabilities.

    Costs ``len(options.cutoffs) + 1`` forward passes of the images (under :func:`torch.inference_mode`, the model
    in eval mode and every module's mode restored afterwards).

    Args:
        model: classifier mapping ``[N, C, H, W]`` images to ``[N, K]`` logits.
        images: ``[B, C, H, W]`` training images, as the model expects them.
        labels: ``[B]`` the labels the model was trained with (noisy or not: the audit needs no clean label).
        options: the validated options.

    Returns:
        :class:`MemorizationResult`.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16, 3))
        >>> images, labels = torch.rand(5, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1])
        >>> audit = memorization_audit(model, images, labels, MemorizationOptions(num_bands=4))
        >>> audit.scores.shape, audit.lowpass_values.shape, audit.cutoffs
        (torch.Size([5]), torch.Size([5, 3]), (1, 2, 3))
    """
    if not isinstance(options, MemorizationOptions):
        raise TypeError(f"`options` must be a MemorizationOptions, got {type(options).__name__}.")
    num_bands, cutoffs = options.num_bands, tuple(options.cutoffs)
    coalitions = torch.cat([lowpass_coalitions(num_bands, cutoffs), torch.ones(1, num_bands, dtype=torch.int64)])
    values = coalition_values(model, images, labels, coalitions=coalitions, **options._spectral())
    lowpass = values[:, :-1]
    kept, chosen = select_cutoffs(lowpass)
    return MemorizationResult(
        scores=-lowpass[:, chosen].mean(1),
        lowpass_values=lowpass,
        full_values=values[:, -1],
        cutoffs=cutoffs,
        kept=kept,
        selected=tuple(k for k, use in zip(cutoffs, chosen.tolist()) if use),
    )


@document_options("num_bands", "band_shape", "band_edges", "fill", "normalization", "output_transform", "seed")
def memorization_scores(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
    num_bands: int = 8,
    cutoffs: Optional[Sequence[int]] = None,
    band_shape: BandShape = "square",
    band_edges: BandEdges = "rings",
    fill: CoalitionFill = "zero",
    normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
    seed: int = 0,
) -> Tensor:
    """Label-free memorisation score of each training sample: higher = more likely memorised or mislabelled.

    The mean of ``-log p(y | x with only its k lowest frequency bands)`` (the bands of I-ASIDE, absent bands filled
    by ``fill``; zero fill = an ideal low-pass) over the cut-offs ``k`` at which at least half of the given samples
    keep ``p(y) >= 1/2`` (the one that keeps most if none does). It takes only the model, the images and the labels
    the model was trained with; nothing tells it which labels are wrong. The choice of cut-offs depends on the whole
    batch: score a representative set of training samples together (hundreds), not one image at a time. Rank the
    training set by it and inspect or drop the top (docs/memorization.md: how well it works, on what, and against
    which baselines).

    Args:
        model: classifier mapping ``[N, C, H, W]`` images to ``[N, K]`` logits.
        images: ``[B, C, H, W]`` training images, as the model expects them.
        labels: ``[B]`` the labels the model was trained with.
        {options}
        cutoffs: candidate numbers of lowest bands kept, each in ``[1, num_bands - 1]``; ``None``: all of them.

    Returns:
        Float64 tensor ``[B]`` on the images' device.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
        >>> scores = memorization_scores(model, torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,)))
        >>> scores.shape, scores.dtype
        (torch.Size([6]), torch.float64)
    """
    options = MemorizationOptions(
        num_bands=num_bands, cutoffs=cutoffs, band_shape=band_shape, band_edges=band_edges, fill=fill,
        normalization=normalization, output_transform=output_transform, seed=seed,
    )
    return memorization_audit(model, images, labels, options).scores
