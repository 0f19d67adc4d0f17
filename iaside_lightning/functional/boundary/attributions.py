"""Integrated gradients, boundary-based integrated gradients (BIG) and boundary saliency.

BIG (Wang, Fredrikson and Datta, ICML 2022) is integrated gradients of the true-class logit from the nearest
boundary point ``x'`` (see :func:`~iaside_lightning.functional.boundary.search.boundary_search`) to the input ``x``:
``BIG(x) = (x - x') * integral_0^1 grad f_y(x' + a (x - x')) da``. The integral is Captum's
:class:`~captum.attr.IntegratedGradients` (trapezoid rule by default, the authors' choice), so completeness
``sum BIG = f_y(x) - f_y(x')`` holds up to the discretisation error.

Captum's ``"riemann_trapezoid"`` rule puts ``n`` points on ``[0, 1]`` (spacing ``1 / (n - 1)``) but weighs them
with step ``1 / n``, so its weights sum to ``(n - 1) / n``: with the authors' 10 steps every attribution would be
10% short and completeness would fail by 10% even for a linear model. :func:`integrated_gradients` divides by the
sum of Captum's weights for the chosen rule, which makes every rule exact for linear models (and leaves the others,
whose weights already sum to one, unchanged). Captum also applies its weights in float32, so float64 models get
attributions to about 1e-7 relative precision.
"""

from collections.abc import Callable
from typing import Any, Literal, Optional, Union

import numpy as np
from torch import Tensor

from iaside_lightning.functional.checks import check_images_and_labels, checked_logits
from iaside_lightning.functional.gradients import input_gradient
from iaside_lightning.functional.model_mode import evaluation_mode

__all__ = ["IntegrationMethod", "boundary_integrated_gradients", "boundary_saliency", "integrated_gradients"]

IntegrationMethod = Literal["riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle", "gausslegendre"]


def integrated_gradients(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    baselines: Union[Tensor, float] = 0.0,
    *,
    steps: int = 10,
    method: IntegrationMethod = "riemann_trapezoid",
    output_transform: Optional[Callable[[Any], Tensor]] = None,
    return_delta: bool = False,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """Integrated gradients of the true-class logit from ``baselines`` to ``images`` (Captum), in eval mode.

    Each module's mode is restored afterwards, parameters' ``.grad`` are untouched, and the call works inside
    ``torch.no_grad``/``torch.inference_mode`` blocks (e.g. in a Lightning validation hook).

    Args:
        model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits.
        images: model inputs ``[N, C, H, W]``.
        labels: true classes ``[N]``.
        baselines: a number or a tensor of the images' shape (per-sample baselines).
        steps: points of the path integral (the authors of BIG use 10).
        method: Captum's integration rule.
        output_transform: maps the model output to logits.
        return_delta: also return the completeness error ``sum(attr) - (f_y(x) - f_y(baseline))`` per sample.

    Returns:
        Attributions with the images' shape (detached), and with ``return_delta`` the ``[N]`` completeness errors.

    Raises:
        TypeError: for wrongly typed images, labels or baselines.
        ValueError: for a wrong shape or ``steps < 2``.

    Example:
        >>> import torch
        >>> linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> x, y = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 1])
        >>> attr, delta = integrated_gradients(linear, x, y, 0.0, return_delta=True)
        >>> bool(delta.abs().max() < 1e-5)  # exact for a linear model
        True
    """
    from captum.attr import IntegratedGradients  # deferred: importing Captum takes about a second

    try:  # a private Captum module (present up to 0.9 at least): the fallback reproduces its step sizes
        from captum.attr._utils.approximation_methods import approximation_parameters
    except ImportError:
        approximation_parameters = _approximation_parameters

    check_images_and_labels(images, labels)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"`steps` must be an integer >= 2 (points on the integration path), got {steps!r}.")
    if isinstance(baselines, Tensor) and baselines.shape != images.shape:
        raise ValueError(f"`baselines` must be a number or a tensor of shape {tuple(images.shape)}, got {tuple(baselines.shape)}.")
    if not isinstance(baselines, (Tensor, int, float)) or isinstance(baselines, bool):
        raise TypeError(f"`baselines` must be a number or a tensor, got {type(baselines).__name__}.")
    def forward(inputs: Tensor) -> Tensor:
        return checked_logits(model, inputs, targets.repeat(len(inputs) // len(targets)), output_transform)

    with evaluation_mode(model, gradients=True):  # clones made here are plain tensors even under inference mode
        inputs = images.detach().clone()
        targets = labels.detach().to(images.device).clone()
        base = baselines.detach().clone().to(inputs) if isinstance(baselines, Tensor) else float(baselines)
        attr, delta = IntegratedGradients(forward).attribute(
            inputs, baselines=base, target=targets, n_steps=steps, method=method, return_convergence_delta=True
        )
    step_sizes, _ = approximation_parameters(method)
    total_weight = sum(step_sizes(steps))  # (steps - 1) / steps for Captum's trapezoid rule, see the module docstring
    gap = attr.detach().flatten(1).sum(1) - delta.detach()  # f_y(x) - f_y(baseline)
    attr = attr.detach() / total_weight
    delta = attr.flatten(1).sum(1) - gap
    return (attr, delta) if return_delta else attr


def boundary_integrated_gradients(
    model: Callable[[Tensor], Any],
    images: Tensor,
    labels: Tensor,
    boundary_points: Tensor,
    *,
    steps: int = 10,
    method: IntegrationMethod = "riemann_trapezoid",
    output_transform: Optional[Callable[[Any], Tensor]] = None,
    return_delta: bool = False,
) -> Union[Tensor, tuple[Tensor, Tensor]]:
    """BIG: integrated gradients from the boundary points ``x'`` to the inputs ``x``.

    Pass ``boundary_search(...).points``; where no boundary point was found the point equals the input, and the
    attribution is zero.

    Args:
        model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits.
        images: model inputs ``[N, C, H, W]``.
        labels: true classes ``[N]``.
        boundary_points: ``[N, C, H, W]`` points on (or just past) the decision boundary.
        steps: points of the path integral (the authors use 10).
        method: Captum's integration rule.
        output_transform: maps the model output to logits.
        return_delta: also return the per-sample completeness error.

    Returns:
        Attributions with the images' shape, and with ``return_delta`` the ``[N]`` completeness errors.

    Example:
        >>> import torch
        >>> from iaside_lightning.functional.boundary.search import boundary_search
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        >>> x = torch.rand(4, 1, 4, 4)
        >>> y = model(x).argmax(1)
        >>> search = boundary_search(model, x, y, epsilons=[1.0, 8.0], steps=10, bisection_steps=10)
        >>> big = boundary_integrated_gradients(model, x, y, search.points)
        >>> big.shape
        torch.Size([4, 1, 4, 4])
    """
    if not isinstance(boundary_points, Tensor):
        raise TypeError(f"`boundary_points` must be a tensor (e.g. boundary_search(...).points), got {type(boundary_points).__name__}.")
    return integrated_gradients(
        model, images, labels, boundary_points, steps=steps, method=method, output_transform=output_transform,
        return_delta=return_delta,
    )


def boundary_saliency(
    model: Callable[[Tensor], Any],
    boundary_points: Tensor,
    labels: Tensor,
    *,
    times_input: bool = False,
    images: Optional[Tensor] = None,
    output_transform: Optional[Callable[[Any], Tensor]] = None,
) -> Tensor:
    """BSM: the gradient of the true-class logit at the boundary point (optionally times the input).

    Args:
        model: classifier mapping ``[N, C, H, W]`` inputs to ``[N, K]`` logits.
        boundary_points: ``[N, C, H, W]`` boundary points.
        labels: true classes ``[N]``.
        times_input: multiply the gradient by ``images`` (gradient x input style).
        images: the inputs, needed with ``times_input``.
        output_transform: maps the model output to logits.

    Returns:
        ``grad f_y(x')`` (times ``x``), with the points' shape.

    Example:
        >>> import torch
        >>> linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
        >>> points, y = torch.rand(2, 1, 2, 2), torch.tensor([1, 0])
        >>> torch.allclose(boundary_saliency(linear, points, y).flatten(1), linear[1].weight[y])
        True
    """
    saliency = input_gradient(model, boundary_points, labels, output_transform=output_transform)
    if not times_input:
        return saliency
    if not isinstance(images, Tensor) or images.shape != boundary_points.shape:
        raise ValueError("`times_input=True` needs `images`, a tensor of the boundary points' shape.")
    return saliency * images.to(saliency)


def _approximation_parameters(method: str) -> tuple[Callable[[int], list[float]], None]:
    """Captum's step sizes for ``method`` (``captum.attr._utils.approximation_methods``), for a Captum without that
    private module: Riemann weights ``1 / n`` (halved at both ends for the trapezoid rule), Gauss-Legendre weights on
    ``[0, 1]``. Only the step sizes are used here, so the point builder is ``None``."""
    if method == "gausslegendre":
        return (lambda n: list(0.5 * np.polynomial.legendre.leggauss(n)[1])), None
    if method not in ("riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"):
        raise ValueError(f"`method` must be one of {IntegrationMethod.__args__}, got {method!r}.")

    def step_sizes(n: int) -> list[float]:
        deltas = [1 / n] * n
        if method == "riemann_trapezoid":
            deltas[0] /= 2
            deltas[-1] /= 2
        return deltas

    return step_sizes, None
