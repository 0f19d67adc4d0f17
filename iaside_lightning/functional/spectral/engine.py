"""The one-call entry point: coalition values of a model on a batch, and spectral Shapley values from them."""

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any, Literal, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.spectral.bands import BandEdges, BandShape, band_images, band_layout, band_masks
from iaside_lightning.functional.spectral.coalitions import Fill, coalition_chunks, coalition_matrix, fill_images
from iaside_lightning.functional.spectral.engine_checks import (
    check_chunk_size_and_seed,
    check_donors,
    check_enumerable,
    check_inputs,
    warn_batch_statistics,
)
from iaside_lightning.functional.checks import check_label_range, check_logits, parse_normalization
from iaside_lightning.functional.model_mode import evaluation_mode
from iaside_lightning.functional.spectral.estimators import Estimator, estimate_shapley, estimate_statistics, resolve_estimator
from iaside_lightning.functional.spectral.result import SpectralShapleyResult, compute_result
from iaside_lightning.functional.spectral.shapley import ShapleyStatistics, shapley_statistics
from iaside_lightning.functional.spectral.values import Value, sample_values

__all__ = ["coalition_values", "spectral_shapley", "spectral_shapley_statistics"]

Autocast = Literal["bfloat16", "float16"]
AUTOCAST_DTYPES = ("bfloat16", "float16")

#: Largest number of images in one forward pass chosen automatically (``chunk_size=None``).
DEFAULT_FORWARD_IMAGES = 256
#: Largest size in bytes of one chunk of coalition images chosen automatically (bigger chunks cost page faults).
DEFAULT_CHUNK_BYTES = 32 * 2**20


def coalition_values(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
    num_bands: int = 8,
    band_shape: BandShape = "square",
    band_edges: BandEdges = "rings",
    fill: Fill = "permute",
    value: Value = "log_prob",
    normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
    logits: Optional[Tensor] = None,
    donors: Optional[Tensor] = None,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
    coalitions: Optional[Tensor] = None,
    chunk_size: Optional[int] = None,
    max_coalitions: int = 4096,
    seed: int = 0,
    autocast: Optional[Autocast] = None,
) -> Tensor:
    """Per-sample values ``v_i(S)`` of every coalition ``S`` of frequency bands.

    Arguments are those of :func:`spectral_shapley`, plus ``coalitions``: 0/1 indicators ``[N, M]`` of the
    coalitions to evaluate (default: all ``2^M`` of them, in the order of
    :func:`~iaside_lightning.functional.spectral.coalitions.coalition_matrix`).

    Returns:
        Float64 tensor ``[B, N]`` on the images' device.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))
        >>> v = coalition_values(model, torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]), num_bands=3)
        >>> v.shape
        torch.Size([4, 8])
    """
    check_inputs(images, labels, fill, value)
    labels = labels.to(torch.int64)  # any integer dtype; ``gather`` needs int64
    check_chunk_size_and_seed(chunk_size, seed)
    check_donors(donors, images, fill)
    warn_batch_statistics(model)
    masks = band_masks(images.shape[-2], images.shape[-1], num_bands, band_shape, band_edges).to(images.device)
    if coalitions is None:
        check_enumerable(num_bands, max_coalitions)
        coalitions = coalition_matrix(num_bands, device=images.device)
    elif coalitions.ndim != 2 or coalitions.shape[1] != num_bands:
        raise ValueError(f"`coalitions` must have shape [N, num_bands={num_bands}], got {tuple(coalitions.shape)}.")
    coalitions = coalitions.to(images.device)
    norm = parse_normalization(normalization, images)
    batch = images.shape[0]
    transform = output_transform if output_transform is not None else (lambda out: out)
    out = torch.empty(batch, coalitions.shape[0], dtype=torch.float64, device=images.device)
    todo = torch.ones(coalitions.shape[0], dtype=torch.bool, device=images.device)
    if logits is not None:
        full = check_logits(logits, batch, "`logits` argument")
        check_label_range(labels, full.shape[1])
        is_full = coalitions.bool().all(dim=1)
        out[:, is_full] = sample_values(full, labels, value)[:, None]
        todo &= ~is_full
    with evaluation_mode(model):
        pixels = _to_pixels(images, norm)
        bands = band_images(pixels, masks)
        donor_bands = None if donors is None else band_images(_to_pixels(donors.to(images.device), norm), masks)
        fills = fill_images(bands, masks, fill, seed, donor_bands)
        pending = coalitions[todo]
        size = chunk_size if chunk_size is not None else _auto_chunk_size(bands, pending.shape[0])
        columns = todo.nonzero().squeeze(1)
        layout = torch.channels_last if _is_channels_last(images) else torch.contiguous_format
        for rows, chunk in coalition_chunks(bands, fills, pending, size, norm, dtype=images.dtype):
            with _autocast(autocast, images.device):
                output = model(chunk.contiguous(memory_format=layout))
            result = check_logits(transform(output), chunk.shape[0], "model output on coalition images")
            if logits is not None and logits.shape[1] != result.shape[1]:
                raise ValueError(
                    f"`logits` has {logits.shape[1]} classes but the model outputs {result.shape[1]} classes on the "
                    "coalition images: pass the logits of this model on `images` (or `logits=None`)."
                )
            check_label_range(labels, result.shape[1])
            values = sample_values(result, labels.repeat(rows.stop - rows.start), value)
            out[:, columns[rows]] = values.reshape(-1, batch).T
    return out.clone()


def spectral_shapley(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
    num_bands: int = 8,
    band_shape: BandShape = "square",
    band_edges: BandEdges = "rings",
    fill: Fill = "permute",
    value: Value = "log_prob",
    normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None,
    logits: Optional[Tensor] = None,
    donors: Optional[Tensor] = None,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
    chunk_size: Optional[int] = None,
    max_coalitions: int = 4096,
    beta: float = 0.75,
    seed: int = 0,
    estimator: Estimator = "auto",
    autocast: Optional[Autocast] = None,
) -> SpectralShapleyResult:
    """I-ASIDE spectral Shapley values of a classifier on a batch of labelled images, exact or sampled.

    Each of ``M`` frequency bands of the 2-D spectrum is a player; coalition ``S`` is the image that keeps only the
    bands in ``S`` (absent bands replaced by ``fill``); its worth is the mean ``value`` of the true label. The model
    runs in eval mode under :func:`torch.inference_mode` and every module's mode is restored afterwards.

    Args:
        model: classifier mapping ``[N, C, H, W]`` images to ``[N, K]`` logits (see ``output_transform``).
        images: float tensor ``[B, C, H, W]``, as the model expects it (any H, W; 16/32/64-bit floats).
        labels: integer tensor ``[B]`` of true classes in ``[0, K)``.
        num_bands: number of bands ``M`` (exact enumeration evaluates 2^M coalitions per image).
        band_shape: ``"square"`` (``max(|f_y|, |f_x|)``, the paper's) or ``"circle"`` (radial frequency).
        band_edges: ``"rings"`` (the default: the paper's equal-width bands, made exact on the image's frequency
            grid so that every band holds the same number of frequency rings, give or take one at the low end),
            ``"linear"`` (the paper's ``r_k = k / M``; uneven on some sizes, e.g. 28x28), ``"log"`` or an
            increasing sequence of ``M + 1`` normalised radii from 0 to 1. See docs/method.md.
        fill: what replaces absent bands: ``"permute"`` (the default, as in the authors' code: the same band of
            another image of the batch, a seeded derangement), ``"zero"`` (ideal band-pass; a blank image is out of
            distribution and inflates band 0, see docs/method.md) or ``"noise"`` (Gaussian noise with the batch's
            power in that band).
        value: ``"log_prob"`` (natural log-probability of the label, the paper's), ``"prob"`` or ``"correct"``.
        normalization: per-channel ``(mean, std)`` the images were normalised with; bands are then cut in pixel
            space (the fill is applied there too).
        logits: the model's logits on ``images`` if already computed (e.g. in a validation step); reused for the
            full coalition.
        donors: other images ``[D, C, H, W]`` of the data set (normalised like ``images``) that ``fill="permute"``
            may also take absent bands from; needed when the batch holds a single image. Only for ``"permute"``.
        output_transform: maps the model output to logits, e.g. ``lambda out: out["logits"]``.
        chunk_size: coalitions per forward pass (``chunk_size * B`` images); default: as many as fit in
            256 images and 32 MiB of coalition images (larger chunks only add page faults on a CPU; see
            docs/benchmarks.md). Results do not depend on it unless the model normalises over the batch in eval
            mode (e.g. BatchNorm with ``track_running_stats=False``, which warns): its outputs, hence the results,
            then depend on ``chunk_size`` and on which images share a forward pass.
        max_coalitions: budget of coalitions evaluated per image: ``estimator="exact"`` refuses ``2^M`` above it,
            ``"auto"`` samples above it, the samplers spend at most this many.
        beta: decay of the band weights of the spectral robustness score.
        seed: seed of the ``"permute"`` derangement, the ``"noise"`` fill and the sampled coalitions. When
            combining sampled batches, give every batch (and process) its own seed: their errors are then
            independent and their variances add up.
        autocast: run the model's forward passes under ``torch.autocast`` to ``"bfloat16"`` or ``"float16"`` (for
            GPUs; values are still computed in float64 from the logits). Batches in ``channels_last`` layout pass
            their coalition images to the model in that layout too.
        estimator: ``"exact"`` (all ``2^M`` coalitions), ``"kernel"`` (KernelSHAP, consistent), ``"permutation"``
            (antithetic permutations, unbiased) or ``"auto"``: exact when ``2^M <= max_coalitions`` (so every call
            that enumerated before still does), else ``"kernel"``. See docs/estimators.md.

    Returns:
        :class:`~iaside_lightning.functional.spectral.result.SpectralShapleyResult` with ``phi``, ``stderr``,
        ``estimator_stderr``, ``psi``, ``srs``, ``srs_signed``, ``v_empty``, ``v_full`` and the band edges in cycles
        per pixel; sampled estimators leave ``coalition_values`` as ``None``.

    Raises:
        TypeError: if images, labels or the model output have the wrong type.
        ValueError: if a shape, an option or a value is invalid (e.g. ``logits`` with another class count than the
            model's output); the message says what to pass instead.

    Warns:
        UserWarning: if the model holds BatchNorm modules without running statistics (see ``chunk_size``).

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
        >>> images, labels = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
        >>> result = spectral_shapley(model, images, labels, num_bands=4)
        >>> result.phi.shape, result.band_edges.tolist(), result.band_rings.tolist()
        (torch.Size([4]), [0.0, 0.140625, 0.265625, 0.390625, 0.5], [5, 4, 4, 4])
        >>> bool(torch.isclose(result.phi.sum(), result.v_full - result.v_empty))  # efficiency
        True
    """
    stats = spectral_shapley_statistics(
        model,
        images,
        labels,
        num_bands=num_bands,
        estimator=estimator,
        max_coalitions=max_coalitions,
        seed=seed,
        band_shape=band_shape,
        band_edges=band_edges,
        fill=fill,
        value=value,
        normalization=normalization,
        logits=logits,
        donors=donors,
        output_transform=output_transform,
        chunk_size=chunk_size,
        autocast=autocast,
    )
    layout = band_layout(images.shape[-2], images.shape[-1], num_bands, band_shape, band_edges)
    return compute_result(stats, layout, beta)


def spectral_shapley_statistics(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
    num_bands: int = 8,
    estimator: Estimator = "auto",
    max_coalitions: int = 4096,
    seed: int = 0,
    **options: Any,
) -> ShapleyStatistics:
    """Summable statistics of one batch (exact or sampled), to add over batches and pass to ``compute_result``.

    ``num_bands``, ``estimator``, ``max_coalitions`` and ``seed`` are those of :func:`spectral_shapley`; ``options``
    are the other keyword arguments of :func:`coalition_values` (``fill``, ``logits``, ``chunk_size``, ...).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32, 3))
        >>> images, labels = torch.rand(2, 1, 32, 32), torch.tensor([0, 2])
        >>> stats = spectral_shapley_statistics(model, images, labels, estimator="kernel", max_coalitions=300,
        ...                                     num_bands=12)
        >>> stats.phi_sum.shape, stats.value_sum.shape, stats.estimator_cov_sum.shape
        (torch.Size([12]), torch.Size([2]), torch.Size([12, 12]))
    """
    chosen = resolve_estimator(estimator, num_bands, max_coalitions)
    check_chunk_size_and_seed(options.get("chunk_size"), seed)
    options.update(num_bands=num_bands, seed=seed)
    if chosen == "exact":
        return shapley_statistics(coalition_values(model, images, labels, max_coalitions=max_coalitions, **options))

    def oracle(coalitions: Tensor) -> Tensor:
        return coalition_values(model, images, labels, coalitions=coalitions, **options)

    return estimate_statistics(estimate_shapley(oracle, num_bands, chosen, max_coalitions, seed))


def _to_pixels(images: Tensor, norm: Optional[tuple[Tensor, Tensor]]) -> Tensor:
    """Undo the per-channel normalisation (bands are cut in pixel space)."""
    return images if norm is None else images.to(norm[0].dtype) * norm[1][:, None, None] + norm[0][:, None, None]


def _is_channels_last(images: Tensor) -> bool:
    """Whether the batch arrived in ``channels_last`` layout (coalition images are then passed the same way)."""
    return images.shape[1] > 1 and images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()


def _autocast(dtype: Optional[str], device: torch.device) -> Any:
    """``torch.autocast`` to ``dtype`` on ``device``, or a no-op context for ``None``."""
    if dtype is None:
        return nullcontext()
    if dtype not in AUTOCAST_DTYPES:
        raise ValueError(f"`autocast` must be None, 'bfloat16' or 'float16', got {dtype!r}.")
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))


def _auto_chunk_size(bands: Tensor, num_coalitions: int) -> int:
    batch = bands.shape[1]
    image_bytes = bands[0].numel() * bands.element_size()
    by_images = DEFAULT_FORWARD_IMAGES // batch
    by_bytes = DEFAULT_CHUNK_BYTES // max(image_bytes, 1)
    return max(1, min(num_coalitions, by_images, by_bytes))
