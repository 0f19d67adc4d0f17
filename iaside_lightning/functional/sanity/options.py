"""``DiffROAROptions``: the DiffROAR options, validated once and handed down typed.

The public entry points (:func:`~iaside_lightning.evaluation.diffroar`,
:func:`~iaside_lightning.evaluation.diffroar_proxy` and :class:`~iaside_lightning.callbacks.DiffROARCallback`) keep
flat keyword arguments, for users and for LightningCLI, build one ``DiffROAROptions`` from them and pass it on to
:func:`~iaside_lightning.evaluation.retrained_diffroar.diffroar_with_options` and
:func:`~iaside_lightning.functional.sanity.diffroar_proxy.diffroar_proxy_with_options`, which do not check them
again. Each option is documented once, in :data:`DIFFROAR_OPTION_DOCS`; :data:`document_options` writes those lines
into the entry points' docstrings.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from iaside_lightning.functional.checks import check_positive_int, check_seed
from iaside_lightning.functional.option_docs import option_documenter
from iaside_lightning.functional.sanity.unmasking import MaskFill, Per, check_mask_fill, check_per

__all__ = ["DEFAULT_LEVELS", "DIFFROAR_OPTION_DOCS", "DiffROAROptions", "check_levels", "document_options"]

#: Fractions unmasked ``k`` by default: coarser than the paper's ``{0.05, 0.1, 0.2, ..., 1.0}``, to save fits.
DEFAULT_LEVELS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0)

#: One description per DiffROAR option, the only one: entry points take theirs through :data:`document_options`.
DIFFROAR_OPTION_DOCS: dict[str, str] = {
    "levels": "strictly increasing fractions unmasked ``k`` in ``[0, 1]`` (any sequence; kept as a tuple of floats).",
    "repeats": "fits per level and side (the std over them is reported).",
    "per": "rank ``\"coordinate\"`` values (the paper's) or whole ``\"pixel\"`` s.",
    "fill": (
        "value of masked coordinates: ``\"mean\"`` (per-channel mean of the training images; of the evaluated "
        "images for the proxy), a number or a per-channel tensor ``[C]``."
    ),
    "metric": (
        "key of the accuracy the retrained models log at each validation epoch; ``PredPower`` is its best value."
    ),
    "trainer_kwargs": (
        ":class:`~lightning.pytorch.Trainer` arguments of the retraining fits over "
        ":data:`~iaside_lightning.evaluation.retraining.TRAINER_DEFAULTS` (CPU, one device, 10 epochs, no logger, "
        "checkpoint, progress bar or sanity check); ``callbacks`` (a list) are added to every fit. Kept as a copy; "
        "``None``: the defaults."
    ),
    "batch_size": "batch size of the retraining's dataloaders, of the proxy's forward passes and of the attributions.",
    "seed": "base seed of the fits (run ``r`` uses ``seed + r``) and of random attributions.",
    "progress": "print a line per retraining fit.",
}

#: ``@document_options(*names)`` writes the :data:`DIFFROAR_OPTION_DOCS` entries of ``names`` into a docstring's
#: ``{options}`` line (see :func:`~iaside_lightning.functional.option_docs.option_documenter`).
document_options = option_documenter(DIFFROAR_OPTION_DOCS)


@document_options(*DIFFROAR_OPTION_DOCS)
@dataclass(frozen=True, eq=False)
class DiffROAROptions:
    """How DiffROAR unmasks, retrains and reports, checked at construction (frozen: build a new one to change it).

    The proxy reads ``levels``, ``per``, ``fill`` and ``batch_size`` only.

    Attributes:
        {options}

    Raises:
        TypeError: if ``metric``, ``trainer_kwargs``, ``seed``, ``repeats``, ``batch_size`` or ``progress`` has the
            wrong type, or ``fill`` is neither ``"mean"``, a number nor a tensor.
        ValueError: if ``levels``, ``repeats``, ``per``, ``fill``, ``metric`` or ``batch_size`` has an invalid value.

    Example:
        >>> options = DiffROAROptions(levels=[0.1, 0.5], per="pixel", fill=0.0)
        >>> options.levels, options.repeats, options.trainer_kwargs
        ((0.1, 0.5), 2, {})
        >>> DiffROAROptions(levels=(0.5, 0.1))
        Traceback (most recent call last):
        ...
        ValueError: `levels` must be strictly increasing fractions unmasked in [0, 1], e.g. (0.1, 0.5), got (0.5, 0.1).
    """

    levels: Sequence[float] = DEFAULT_LEVELS
    repeats: int = 2
    per: Per = "coordinate"
    fill: MaskFill = "mean"
    metric: str = "val/acc"
    trainer_kwargs: Optional[Mapping[str, Any]] = None
    batch_size: int = 128
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", check_levels(self.levels))
        check_positive_int(self.repeats, "repeats")
        check_per(self.per)
        check_mask_fill(self.fill)
        if not isinstance(self.metric, str):
            raise TypeError(
                f"`metric` must be the key the model logs its validation accuracy under, got {self.metric!r}."
            )
        if not self.metric:
            raise ValueError("`metric` is empty; pass the key the model logs its validation accuracy under.")
        if self.trainer_kwargs is not None and not isinstance(self.trainer_kwargs, Mapping):
            raise TypeError(
                f"`trainer_kwargs` must be a dict of Trainer arguments, got {type(self.trainer_kwargs).__name__}."
            )
        object.__setattr__(self, "trainer_kwargs", dict(self.trainer_kwargs or {}))
        check_positive_int(self.batch_size, "batch_size")
        check_seed(self.seed)
        object.__setattr__(self, "seed", int(self.seed))
        if not isinstance(self.progress, bool):
            raise TypeError(f"`progress` must be True or False, got {self.progress!r}.")


def check_levels(levels: Sequence[float], name: str = "levels") -> tuple[float, ...]:
    """``levels`` as a tuple of floats; a clear error naming ``name`` unless they increase strictly within
    ``[0, 1]``.

    Example:
        >>> check_levels([0, 0.5, 1])
        (0.0, 0.5, 1.0)
    """
    try:
        grid = () if isinstance(levels, str) else tuple(float(k) for k in levels)
    except (TypeError, ValueError):
        grid = ()
    if not grid or not all(0 <= k <= 1 for k in grid) or any(a >= b for a, b in zip(grid, grid[1:])):
        raise ValueError(
            f"`{name}` must be strictly increasing fractions unmasked in [0, 1], e.g. (0.1, 0.5), got {levels!r}."
        )
    return grid
