"""``SpectralOptions``: the I-ASIDE options, validated once and handed down typed.

The public entry points (:func:`~iaside_lightning.functional.spectral.engine.spectral_shapley`,
:func:`~iaside_lightning.functional.spectral.engine.coalition_values`,
:class:`~iaside_lightning.metrics.SpectralImportance` and
:class:`~iaside_lightning.callbacks.SpectralRobustnessMonitor`) keep flat keyword arguments, for users and for
LightningCLI, build one ``SpectralOptions`` from them and pass it on. Each option is documented once, in
:data:`OPTION_DOCS`; :func:`document_options` writes those lines into the entry points' docstrings.
"""

from collections.abc import Callable, Sequence
import warnings
from dataclasses import dataclass, replace
from typing import Any, Literal, Optional

import torch
from torch import Tensor

from iaside_lightning.functional.checks import check_normalization, check_positive_int, check_seed
from iaside_lightning.functional.option_docs import option_documenter
from iaside_lightning.functional.spectral.bands import BandEdges, BandLayout, BandShape, band_layout
from iaside_lightning.functional.spectral.bands import band_edges as make_band_edges
from iaside_lightning.functional.spectral.coalitions import FILLS, CoalitionFill
from iaside_lightning.functional.spectral.engine_checks import caller_stacklevel, check_enumerable
from iaside_lightning.functional.spectral.estimators import Estimator, minimum_budget, resolve_estimator
from iaside_lightning.functional.spectral.values import VALUES, Value

__all__ = ["AUTOCAST_DTYPES", "Autocast", "OPTION_DOCS", "SpectralOptions", "document_options"]

Autocast = Literal["bfloat16", "float16"]
AUTOCAST_DTYPES = ("bfloat16", "float16")

#: One description per option, the only one: entry points take theirs through :func:`document_options`.
OPTION_DOCS: dict[str, str] = {
    "num_bands": "number of frequency bands ``M`` (exact enumeration evaluates ``2^M`` coalitions per image).",
    "band_shape": "``\"square\"`` (``max(|f_y|, |f_x|)``, the paper's) or ``\"circle\"`` (radial frequency).",
    "band_edges": (
        "how the bands are cut, as a spec on the normalised radius: ``\"rings\"`` (the default: the paper's "
        "equal-width bands made exact on the image's frequency grid, so that every band holds the same number of "
        "frequency rings, give or take one at the low end), ``\"linear\"`` (the paper's ``r_k = k / M``; uneven "
        "on some sizes, e.g. 28x28), ``\"log\"`` or an increasing sequence of ``M + 1`` normalised radii from 0 "
        "to 1. Results report the edges as cut in cycles per pixel instead (``SpectralShapleyResult.band_frequencies``). See docs/method.md."
    ),
    "fill": (
        "what replaces absent bands: ``\"permute\"`` (the default, as in the authors' code: the same band of "
        "another image of the batch, a seeded derangement; a one-image batch takes it from ``donors`` or, in the "
        "metric and the monitor, from the previous batch), ``\"zero\"`` (ideal band-pass; a blank image is out of "
        "distribution and inflates band 0, see docs/method.md) or ``\"noise\"`` (Gaussian noise with the batch's "
        "power in that band)."
    ),
    "value": "coalition worth: ``\"log_prob\"`` (natural log-probability of the label, the paper's), ``\"prob\"`` or ``\"correct\"``.",
    "normalization": (
        "per-channel ``(mean, std)`` the images were normalised with; bands are then cut in pixel space (the fill "
        "is applied there too)."
    ),
    "output_transform": "maps the model output to ``[N, K]`` logits, e.g. ``lambda out: out[\"logits\"]``.",
    "forward_batch_size": (
        "coalition images per forward pass, whatever the number of images analysed; default (``None``): tuned once "
        "per model, image shape and device by timing a few forward passes (both input layouts, five batch sizes) "
        "once the model has run enough images, and cached, see "
        ":mod:`~iaside_lightning.functional.spectral.forward_plan`. Results "
        "depend on it only to float tolerance, unless the model normalises over the batch in eval mode (e.g. "
        "BatchNorm with ``track_running_stats=False``, which warns); pass a number for bitwise-repeatable runs."
    ),
    "chunk_size": (
        "deprecated: ``chunk_size * B`` images per forward pass; use ``forward_batch_size`` (images per forward "
        "pass, independent of the batch)."
    ),
    "max_coalitions": (
        "budget of coalitions evaluated per image: ``estimator=\"exact\"`` refuses ``2^M`` above it, ``\"auto\"`` "
        "samples above it, the samplers spend at most this many."
    ),
    "estimator": (
        "``\"exact\"`` (all ``2^M`` coalitions), ``\"kernel\"`` (KernelSHAP, consistent), ``\"permutation\"`` "
        "(antithetic permutations, unbiased) or ``\"auto\"``: exact when ``2^M <= max_coalitions``, else "
        "``\"kernel\"``. See docs/estimators.md."
    ),
    "beta": "decay of the band weights of the spectral robustness score, in ``(0, 1)``.",
    "seed": (
        "seed of the ``\"permute\"`` derangement, the ``\"noise\"`` fill and the sampled coalitions (the metric "
        "and the monitor give batch ``i`` of process ``r`` the seed ``seed + i + 1_000_003 * r``)."
    ),
    "autocast": (
        "run the model's forward passes under ``torch.autocast`` to ``\"bfloat16\"`` or ``\"float16\"`` (for "
        "GPUs; values are still computed in float64 from the logits)."
    ),
}

#: ``@document_options(*names)`` writes the :data:`OPTION_DOCS` entries of ``names`` into a docstring's
#: ``{options}`` line (see :func:`~iaside_lightning.functional.option_docs.option_documenter`).
document_options = option_documenter(OPTION_DOCS)


@dataclass(frozen=True)
class SpectralOptions:
    """The I-ASIDE options of one analysis, checked when built (every field is documented in :data:`OPTION_DOCS`).

    Raises:
        ValueError: naming the option and the fix, for any invalid value or combination (e.g. a ``max_coalitions``
            budget below the minimum of the estimator that runs).
        TypeError: if ``seed``, ``chunk_size`` or ``forward_batch_size`` is not an integer.

    Example:
        >>> options = SpectralOptions(num_bands=4, fill="zero")
        >>> options.resolved_estimator, options.layout(16, 16).rings.tolist()
        ('exact', [3, 2, 2, 2])
        >>> SpectralOptions(num_bands=4, beta=1.5)
        Traceback (most recent call last):
        ...
        ValueError: `beta` must lie in (0, 1), got 1.5.
    """

    num_bands: int = 8
    band_shape: BandShape = "square"
    band_edges: BandEdges = "rings"
    fill: CoalitionFill = "permute"
    value: Value = "log_prob"
    normalization: Optional[tuple[Sequence[float], Sequence[float]]] = None
    output_transform: Optional[Callable[[Any], Tensor]] = None
    chunk_size: Optional[int] = None
    max_coalitions: int = 4096
    estimator: Estimator = "auto"
    beta: float = 0.75
    seed: int = 0
    autocast: Optional[Autocast] = None
    forward_batch_size: Optional[int] = None

    def __post_init__(self) -> None:
        if self.band_shape not in ("square", "circle"):
            raise ValueError(f"`band_shape` must be 'square' or 'circle', got {self.band_shape!r}.")
        # Validates num_bands and the edges; "rings" depends on the image size and is cut per image size.
        make_band_edges(self.num_bands, "linear" if isinstance(self.band_edges, str) and self.band_edges == "rings" else self.band_edges)
        if self.fill not in FILLS:
            raise ValueError(f"`fill` must be one of {FILLS}, got {self.fill!r}.")
        if self.value not in VALUES:
            raise ValueError(f"`value` must be one of {VALUES}, got {self.value!r}.")
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not 0.0 < self.beta < 1.0:
            raise ValueError(f"`beta` must lie in (0, 1), got {self.beta!r}.")
        if self.autocast is not None and self.autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"`autocast` must be None or one of {AUTOCAST_DTYPES}, got {self.autocast!r}.")
        if self.output_transform is not None and not callable(self.output_transform):
            raise ValueError(f"`output_transform` must be callable or None, got {self.output_transform!r}.")
        if self.chunk_size is not None:
            check_positive_int(self.chunk_size, "chunk_size")
            if self.forward_batch_size is not None:
                raise ValueError("Pass `forward_batch_size` alone: `chunk_size` is its deprecated, batch-dependent form.")
            warnings.warn(
                "`chunk_size` (coalitions per forward pass) is deprecated: pass `forward_batch_size`, the images per "
                "forward pass (`chunk_size * B` for the same batching), or leave it None to let the engine tune it.",
                DeprecationWarning,
                stacklevel=caller_stacklevel(),
            )
        if self.forward_batch_size is not None:
            check_positive_int(self.forward_batch_size, "forward_batch_size")
        check_seed(self.seed)
        check_normalization(self.normalization)
        chosen = resolve_estimator(self.estimator, self.num_bands, self.max_coalitions)
        if chosen == "exact":
            check_enumerable(self.num_bands, self.max_coalitions)
        minimum = minimum_budget(chosen, self.num_bands)
        if self.max_coalitions < minimum:
            named = f"estimator={chosen!r}" + (" (from estimator='auto')" if self.estimator == "auto" else "")
            raise ValueError(
                f"{named} with num_bands={self.num_bands} needs `max_coalitions` >= {minimum} coalitions per image, "
                f"got {self.max_coalitions}. Raise `max_coalitions` or use fewer bands."
            )

    @property
    def resolved_estimator(self) -> str:
        """The estimator that runs: ``"exact"``, ``"kernel"`` or ``"permutation"`` (``"auto"`` resolved)."""
        return resolve_estimator(self.estimator, self.num_bands, self.max_coalitions)

    def layout(self, height: int, width: int) -> BandLayout:
        """Masks, edges and sizes of the bands of ``height x width`` images under these options."""
        return band_layout(height, width, self.num_bands, self.band_shape, self.band_edges)

    def with_seed(self, seed: int) -> "SpectralOptions":
        """The same options with another ``seed`` (e.g. a batch's own)."""
        return replace(self, seed=seed)

    def state_settings(self) -> dict[str, Any]:
        """The options that give summed statistics their meaning: statistics add up only if these agree."""
        normalization = check_normalization(self.normalization)
        edges = self.band_edges
        return {
            "num_bands": self.num_bands,
            "fill": self.fill,
            "value": self.value,
            "band_shape": self.band_shape,
            "band_edges": edges if isinstance(edges, str) else torch.as_tensor(edges, dtype=torch.float64).tolist(),
            "estimator": self.resolved_estimator,
            "normalization": None if normalization is None else [v.tolist() for v in normalization],
        }
