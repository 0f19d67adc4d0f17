"""The one-call entry point: coalition values of a model on a batch, and spectral Shapley values from them."""

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.checks import check_label_range, check_logits, parse_normalization
from iaside_lightning.functional.model_mode import evaluation_mode
from iaside_lightning.functional.spectral.bands import BandEdges, BandShape, band_images, band_masks
from iaside_lightning.functional.spectral.coalitions import CoalitionFill, CoalitionImages, coalition_matrix, fill_images
from iaside_lightning.functional.spectral.engine_checks import (
    check_donors,
    check_inputs,
    warn_batch_statistics,
)
from iaside_lightning.functional.spectral.estimators import Estimator, estimate_shapley, estimate_statistics
from iaside_lightning.functional.spectral.forward_plan import forward_plan
from iaside_lightning.functional.spectral.options import Autocast, SpectralOptions, document_options
from iaside_lightning.functional.spectral.per_sample import PerSampleRecorder
from iaside_lightning.functional.spectral.result import SpectralShapleyResult, compute_result
from iaside_lightning.functional.spectral.shapley import ShapleyStatistics, shapley_statistics
from iaside_lightning.functional.spectral.values import Value, sample_values

__all__ = ["coalition_values", "spectral_shapley", "spectral_shapley_statistics"]

_VALUE_OPTIONS = (
    "num_bands", "band_shape", "band_edges", "fill", "value", "normalization", "output_transform",
    "forward_batch_size", "chunk_size", "max_coalitions", "seed", "autocast",
)


@document_options(*_VALUE_OPTIONS)
def coalition_values(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
    num_bands: int = 8,
    band_shape: BandShape = "square",
    band_edges: BandEdges = "rings",
    fill: CoalitionFill = "permute",
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
    forward_batch_size: Optional[int] = None,
) -> Tensor:
    """Per-sample values ``v_i(S)`` of every coalition ``S`` of frequency bands.

    Args:
        model: classifier mapping ``[N, C, H, W]`` images to ``[N, K]`` logits (see ``output_transform``).
        images: float tensor ``[B, C, H, W]``, as the model expects it.
        labels: integer tensor ``[B]`` of true classes in ``[0, K)``.
        {options}
        logits: the model's logits on ``images`` if already computed; reused for the full coalition.
        donors: other images ``[D, C, H, W]`` that ``fill="permute"`` may also take absent bands from.
        coalitions: 0/1 indicators ``[N, M]`` of the coalitions to evaluate (default: all ``2^M`` of them, in the
            order of :func:`~iaside_lightning.functional.spectral.coalitions.coalition_matrix`).

    Returns:
        Float64 tensor ``[B, N]`` on the images' device.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10))
        >>> v = coalition_values(model, torch.rand(4, 3, 16, 16), torch.tensor([0, 1, 2, 3]), num_bands=3)
        >>> v.shape
        torch.Size([4, 8])
    """
    options = SpectralOptions(
        num_bands=num_bands,
        band_shape=band_shape,
        band_edges=band_edges,
        fill=fill,
        value=value,
        normalization=normalization,
        output_transform=output_transform,
        chunk_size=chunk_size,
        max_coalitions=max_coalitions,
        seed=seed,
        autocast=autocast,
        forward_batch_size=forward_batch_size,
        estimator="exact" if coalitions is None else "auto",
    )
    return _coalition_values(model, images, labels, options, coalitions, logits, donors)


@document_options(*_VALUE_OPTIONS[:-2], "beta", "seed", "estimator", "autocast")
def spectral_shapley(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    *,
    num_bands: int = 8,
    band_shape: BandShape = "square",
    band_edges: BandEdges = "rings",
    fill: CoalitionFill = "permute",
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
    forward_batch_size: Optional[int] = None,
    per_sample: bool = False,
) -> SpectralShapleyResult:
    """I-ASIDE spectral Shapley values of a classifier on a batch of labelled images, exact or sampled.

    Each of ``M`` frequency bands of the 2-D spectrum is a player; coalition ``S`` is the image that keeps only the
    bands in ``S`` (absent bands replaced by ``fill``); its worth is the mean ``value`` of the true label. The model
    runs in eval mode under :func:`torch.inference_mode` and every module's mode is restored afterwards. The
    coalition images reach it in the forward batch size and memory layout it runs fastest with on this device,
    measured once per model and image shape (see ``forward_batch_size``).

    Args:
        model: classifier mapping ``[N, C, H, W]`` images to ``[N, K]`` logits (see ``output_transform``).
        images: float tensor ``[B, C, H, W]``, as the model expects it (any H, W; 16/32/64-bit floats).
        labels: integer tensor ``[B]`` of true classes in ``[0, K)``.
        {options}
        logits: the model's logits on ``images`` if already computed (e.g. in a validation step); reused for the
            full coalition.
        donors: other images ``[D, C, H, W]`` of the data set (normalised like ``images``) that ``fill="permute"``
            may also take absent bands from; needed when the batch holds a single image. Only for ``"permute"``.
        per_sample: also return each sample's Shapley values ``phi_per_sample`` ``[B, M]``, coalition values
            ``values_per_sample`` ``[B, N]`` and the 0/1 ``coalitions`` ``[N, M]`` of those columns (no extra model
            evaluations; memory ``B x N`` float64).

    Returns:
        :class:`~iaside_lightning.functional.spectral.result.SpectralShapleyResult` with ``phi``, ``stderr``,
        ``estimator_stderr``, ``psi``, ``srs``, ``srs_signed``, ``v_empty``, ``v_full`` and the band edges in cycles
        per pixel; sampled estimators leave ``coalition_values`` as ``None``. The per-sample fields are ``None``
        unless ``per_sample=True``.

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
        >>> result.phi.shape, result.band_frequencies.tolist(), result.band_rings.tolist()
        (torch.Size([4]), [0.0, 0.140625, 0.265625, 0.390625, 0.5], [5, 4, 4, 4])
        >>> bool(torch.isclose(result.phi.sum(), result.v_full - result.v_empty))  # efficiency
        True
        >>> per = spectral_shapley(model, images, labels, num_bands=4, per_sample=True)
        >>> per.phi_per_sample.shape, per.values_per_sample.shape, per.coalitions.shape
        (torch.Size([8, 4]), torch.Size([8, 16]), torch.Size([16, 4]))
        >>> bool(torch.allclose(per.phi_per_sample.mean(0), per.phi))
        True
    """
    options = SpectralOptions(
        num_bands=num_bands,
        band_shape=band_shape,
        band_edges=band_edges,
        fill=fill,
        value=value,
        normalization=normalization,
        output_transform=output_transform,
        chunk_size=chunk_size,
        max_coalitions=max_coalitions,
        estimator=estimator,
        beta=beta,
        seed=seed,
        autocast=autocast,
        forward_batch_size=forward_batch_size,
    )
    if not isinstance(per_sample, bool):
        raise TypeError(f"`per_sample` must be True or False, got {per_sample!r}.")
    recorder = PerSampleRecorder() if per_sample else None
    stats = spectral_shapley_statistics(model, images, labels, options, logits=logits, donors=donors, recorder=recorder)
    result = compute_result(stats, options.layout(images.shape[-2], images.shape[-1]), options.beta)
    return result if recorder is None else recorder.attach(result)


def spectral_shapley_statistics(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    options: SpectralOptions,
    *,
    logits: Optional[Tensor] = None,
    donors: Optional[Tensor] = None,
    recorder: Optional[PerSampleRecorder] = None,
) -> ShapleyStatistics:
    """Summable statistics of one batch (exact or sampled), to add over batches and pass to ``compute_result``.

    Args:
        model: the classifier, as in :func:`spectral_shapley`.
        images: ``[B, C, H, W]`` images.
        labels: ``[B]`` integer labels.
        options: the validated options (their ``seed`` is this batch's).
        logits: the model's logits on ``images``, reused for the full coalition.
        donors: extra ``"permute"`` donors, as in :func:`spectral_shapley`.
        recorder: keeps the per-sample Shapley values, coalition values and coalitions of the batch when given.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32, 3))
        >>> images, labels = torch.rand(2, 1, 32, 32), torch.tensor([0, 2])
        >>> options = SpectralOptions(num_bands=12, estimator="kernel", max_coalitions=300)
        >>> stats = spectral_shapley_statistics(model, images, labels, options)
        >>> stats.phi_sum.shape, stats.value_sum.shape, stats.estimator_cov_sum.shape
        (torch.Size([12]), torch.Size([2]), torch.Size([12, 12]))
    """
    if not isinstance(options, SpectralOptions):
        raise TypeError(f"`options` must be a SpectralOptions, got {type(options).__name__}.")
    chosen = options.resolved_estimator
    if chosen == "exact":
        values = _coalition_values(model, images, labels, options, None, logits, donors)
        if recorder is not None:
            recorder.record_exact(values)
        return shapley_statistics(values)

    def oracle(coalitions: Tensor) -> Tensor:
        return _coalition_values(model, images, labels, options, coalitions, logits, donors)

    watched = oracle if recorder is None else recorder.watch(oracle)
    estimate = estimate_shapley(watched, options.num_bands, chosen, options.max_coalitions, options.seed)
    if recorder is not None:
        recorder.record_estimate(estimate)
    return estimate_statistics(estimate)


def _coalition_values(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    options: SpectralOptions,
    coalitions: Optional[Tensor],
    logits: Optional[Tensor],
    donors: Optional[Tensor],
) -> Tensor:
    """:func:`coalition_values` with validated options."""
    check_inputs(images, labels, options.fill, options.value)
    labels = labels.to(torch.int64)  # any integer dtype; ``gather`` needs int64
    check_donors(donors, images, options.fill)
    warn_batch_statistics(model)
    num_bands, value = options.num_bands, options.value
    masks = band_masks(images.shape[-2], images.shape[-1], num_bands, options.band_shape, options.band_edges)
    masks = masks.to(images.device)
    if coalitions is None:  # only with options whose resolved estimator is "exact": enumerable, checked when built
        coalitions = coalition_matrix(num_bands, device=images.device)
    elif coalitions.ndim != 2 or coalitions.shape[1] != num_bands:
        raise ValueError(f"`coalitions` must have shape [N, num_bands={num_bands}], got {tuple(coalitions.shape)}.")
    coalitions = coalitions.to(images.device)
    norm = parse_normalization(options.normalization, images)
    batch = images.shape[0]
    transform = options.output_transform if options.output_transform is not None else (lambda out: out)
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
        fills = fill_images(bands, masks, options.fill, options.seed, donor_bands)
        stream = CoalitionImages(bands, fills, coalitions[todo], norm, dtype=images.dtype)
        columns = todo.nonzero().squeeze(1)

        def run(chunk: Tensor) -> Any:
            with _autocast(options.autocast, images.device):
                return model(chunk)

        plan = forward_plan(
            model,
            lambda probe: run(stream.take(0, probe.batch_size, probe.channels_last)),
            images.shape[1:],
            images.dtype,
            images.device,
            stream.total,
            _forward_batch_size(options, batch),
            options.autocast,
        )
        for start in range(0, stream.total, plan.batch_size):
            count = min(plan.batch_size, stream.total - start)
            output = run(stream.take(start, count, plan.channels_last))
            result = check_logits(transform(output), count, "model output on coalition images")
            if logits is not None and logits.shape[1] != result.shape[1]:
                raise ValueError(
                    f"`logits` has {logits.shape[1]} classes but the model outputs {result.shape[1]} classes on the "
                    "coalition images: pass the logits of this model on `images` (or `logits=None`)."
                )
            check_label_range(labels, result.shape[1])
            pairs = torch.arange(start, start + count, device=images.device)
            image, coalition = pairs // stream.num_coalitions, pairs % stream.num_coalitions
            out[image, columns[coalition]] = sample_values(result, labels[image], value)
    return out.clone()  # a normal tensor, usable outside inference mode


def _to_pixels(images: Tensor, norm: Optional[tuple[Tensor, Tensor]]) -> Tensor:
    """Undo the per-channel normalisation (bands are cut in pixel space)."""
    return images if norm is None else images.to(norm[0].dtype) * norm[1][:, None, None] + norm[0][:, None, None]


def _autocast(dtype: Optional[str], device: torch.device) -> Any:
    """``torch.autocast`` to ``dtype`` on ``device``, or a no-op context for ``None``."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, dtype))


def _forward_batch_size(options: SpectralOptions, batch: int) -> Optional[int]:
    """Images per forward pass fixed by the options (``forward_batch_size``, or the older ``chunk_size * B``)."""
    if options.forward_batch_size is not None:
        return options.forward_batch_size
    return None if options.chunk_size is None else options.chunk_size * batch
