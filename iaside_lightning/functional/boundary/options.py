"""The boundary sub-system's options: one frozen, validated object, built once at the public boundary.

:class:`BoundarySearchOptions` holds what :func:`~iaside_lightning.functional.boundary.search.boundary_search`
needs; :class:`BoundaryGeometryOptions` adds the integration steps of
:func:`~iaside_lightning.functional.boundary.geometry.boundary_geometry`. Both validate in ``__post_init__``, so an
instance is always valid: :func:`dataclasses.replace` (and :meth:`BoundaryGeometryOptions.from_preset`) validate the
changed copy again. The public functions, the :class:`~iaside_lightning.callbacks.BoundaryMonitor` callback and
LightningCLI configs keep flat keyword arguments; each builds the object once and hands it down. Each option is
documented once, in :data:`BOUNDARY_OPTION_DOCS`; :data:`document_options` writes those lines into the entry points'
docstrings.
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Optional

from iaside_lightning.functional.attacks import Bounds, Norm, check_attack_options, check_bounds
from iaside_lightning.functional.checks import check_non_negative_int, check_seed
from iaside_lightning.functional.option_docs import option_documenter

__all__ = [
    "BOUNDARY_OPTION_DOCS",
    "BOUNDARY_PRESETS",
    "PAPER_EPSILONS",
    "BoundaryGeometryOptions",
    "BoundarySearchOptions",
    "Preset",
    "SEARCH_OPTIONS",
    "document_options",
]

#: The authors' L2 epsilon ladder (in the model's input space).
PAPER_EPSILONS: tuple[float, ...] = (36 / 255, 64 / 255, 0.3, 0.5, 0.7, 0.9, 1.1)

Preset = Literal["fast", "paper"]

#: One description per boundary option, the only one: entry points take theirs through :data:`document_options`.
BOUNDARY_OPTION_DOCS: dict[str, str] = {
    "preset": (
        "``\"fast\"`` (4 L2 epsilons x 8 steps with early stop, bisection, 10 IG steps: for training time) or "
        "``\"paper\"`` (the authors' settings, for offline evaluation); see :data:`~iaside_lightning.functional."
        "boundary.options.BOUNDARY_PRESETS`. The search and IG options left ``None`` take the preset's value."
    ),
    "epsilons": "ascending attack radii in model-input units (a list is kept as a tuple of floats).",
    "norm": "``\"l2\"`` or ``\"linf\"``.",
    "steps": "PGD steps per epsilon.",
    "step_size_factor": "PGD step length as a multiple of ``epsilon / steps``.",
    "random_start": "start each PGD run from a random point of the ball.",
    "bisection_steps": "bisection steps onto the boundary (0: none; each costs one forward pass).",
    "bounds": "``(low, high)`` box of valid model inputs, scalars or per-channel sequences; ``None``: no box.",
    "seed": "seed of the attacks' random starts (each epsilon gets its own stream).",
    "ig_steps": "integration points of IG and BIG, ``>= 2``.",
}

#: ``@document_options(*names)`` writes the :data:`BOUNDARY_OPTION_DOCS` entries of ``names`` into a docstring's
#: ``{options}`` line (see :func:`~iaside_lightning.functional.option_docs.option_documenter`).
document_options = option_documenter(BOUNDARY_OPTION_DOCS)

#: The options of a boundary search (the fields of :class:`BoundarySearchOptions`).
SEARCH_OPTIONS = ("epsilons", "norm", "steps", "step_size_factor", "random_start", "bisection_steps", "bounds", "seed")


@document_options(*SEARCH_OPTIONS)
@dataclass(frozen=True)
class BoundarySearchOptions:
    """Validated options of a boundary search; the defaults are the paper's preset.

    Attributes:
        {options}

    Raises:
        ValueError: naming the first invalid option and what to pass instead.
        TypeError: if ``random_start`` is not a bool, or ``seed``, ``steps`` or ``bisection_steps`` not an integer.

    Example:
        >>> options = BoundarySearchOptions(epsilons=[0.5, 1], steps=10)
        >>> options.epsilons, options.norm
        ((0.5, 1.0), 'l2')
        >>> BoundarySearchOptions(epsilons=[1.0, 0.5])
        Traceback (most recent call last):
        ...
        ValueError: `epsilons` must be a non-empty, strictly ascending sequence of positive radii, got [1.0, 0.5].
    """

    epsilons: Sequence[float] = PAPER_EPSILONS
    norm: Norm = "l2"
    steps: int = 40
    step_size_factor: float = 2.0
    random_start: bool = True
    bisection_steps: int = 0
    bounds: Optional[Bounds] = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "epsilons", _ladder(self.epsilons))
        check_attack_options(self.epsilons[0], self.norm, self.steps)
        check_non_negative_int(self.bisection_steps, "bisection_steps")
        factor = self.step_size_factor
        if isinstance(factor, bool) or not (isinstance(factor, (int, float)) and factor > 0):
            raise ValueError(
                f"`step_size_factor` must be a positive number (step = factor * epsilon / steps), got {factor!r}."
            )
        if self.bounds is not None:
            check_bounds(self.bounds)
            object.__setattr__(self, "bounds", tuple(self.bounds))
        if not isinstance(self.random_start, bool):
            raise TypeError(f"`random_start` must be True or False, got {self.random_start!r}.")
        check_seed(self.seed)


@document_options("ig_steps")
@dataclass(frozen=True)
class BoundaryGeometryOptions(BoundarySearchOptions):
    """:class:`BoundarySearchOptions` plus the integration points of IG and BIG.

    Attributes:
        {options}

    Example:
        >>> options = BoundaryGeometryOptions.from_preset("fast", steps=4)
        >>> options.steps, options.epsilons, options.random_start, options.ig_steps
        (4, (1.0, 2.0, 4.0, 8.0), False, 10)
    """

    ig_steps: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.ig_steps, bool) or not isinstance(self.ig_steps, int) or self.ig_steps < 2:
            raise ValueError(
                f"`ig_steps` must be an integer >= 2 (points on the integration path), got {self.ig_steps!r}."
            )

    @classmethod
    def from_preset(
        cls,
        preset: Preset = "fast",
        *,
        epsilons: Optional[Sequence[float]] = None,
        norm: Optional[Norm] = None,
        steps: Optional[int] = None,
        random_start: Optional[bool] = None,
        bisection_steps: Optional[int] = None,
        ig_steps: Optional[int] = None,
        bounds: Optional[Bounds] = None,
        seed: int = 0,
    ) -> "BoundaryGeometryOptions":
        """The preset (:data:`BOUNDARY_PRESETS`) with the options given (not None) on top, validated once.

        Raises:
            ValueError: for an unknown preset or an invalid option, naming it.
        """
        if preset not in BOUNDARY_PRESETS:
            raise ValueError(f"`preset` must be one of {sorted(BOUNDARY_PRESETS)}, got {preset!r}.")
        given = {
            "epsilons": epsilons, "norm": norm, "steps": steps, "random_start": random_start,
            "bisection_steps": bisection_steps, "ig_steps": ig_steps, "bounds": bounds,
        }
        overrides = {name: value for name, value in given.items() if value is not None}
        return dataclasses.replace(BOUNDARY_PRESETS[preset], seed=seed, **overrides)


def _ladder(epsilons: Sequence[float]) -> tuple[float, ...]:
    """``epsilons`` as a tuple of floats, checked: non-empty, positive, strictly ascending."""
    try:
        ladder = tuple(float(e) for e in epsilons) if isinstance(epsilons, (list, tuple)) else ()
    except (TypeError, ValueError):
        ladder = ()
    if not ladder or any(not e > 0 for e in ladder) or any(b <= a for a, b in zip(ladder, ladder[1:])):
        raise ValueError(
            f"`epsilons` must be a non-empty, strictly ascending sequence of positive radii, got {epsilons!r}."
        )
    return ladder


#: Search and attribution settings. "paper": the authors' defaults (L2 ladder up to 1.1, 40 steps, about 290
#: forward+backward passes per image at worst). "fast": for tracking during training, L2 epsilons 1, 2, 4, 8 x 8
#: steps with per-sample early stop, 8 bisection steps and 10 IG steps (at most ~60 passes per image, typically ~35);
#: its ladder suits standardised inputs of a few hundred to a few thousand values, such as MNIST-sized images. The
#: fast preset starts PGD at ``x`` itself: a random start adds an isotropic offset of up to ``epsilon`` to
#: ``x - x'``, which lowers ``cos_gradient_boundary`` the more, the larger the epsilon a sample needs (on BlockMNIST
#: it hid the alignment of robust models), and adds epoch-to-epoch noise.
BOUNDARY_PRESETS: dict[str, BoundaryGeometryOptions] = {
    "paper": BoundaryGeometryOptions(),
    "fast": BoundaryGeometryOptions(epsilons=(1.0, 2.0, 4.0, 8.0), steps=8, random_start=False, bisection_steps=8),
}
